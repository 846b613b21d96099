import SystemSupport

/// The two clocks events use, in nanoseconds: clock_gettime through the vDSO,
/// no system call, so the auth path may read them.
public enum Timestamps {
    /// CLOCK_MONOTONIC: for durations and budgets.
    public static func monotonic() -> UInt64 { SystemClock.monotonicNanoseconds() }

    /// CLOCK_REALTIME: for event timestamps.
    public static func realtime() -> UInt64 { SystemClock.realtimeNanoseconds() }
}
