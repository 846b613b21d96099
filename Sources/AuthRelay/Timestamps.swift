import Glibc

/// The two clocks events use, in nanoseconds: clock_gettime through the vDSO,
/// no system call, so the auth path may read them.
public enum Timestamps {
    /// CLOCK_MONOTONIC: for durations and budgets.
    public static func monotonic() -> UInt64 { read(CLOCK_MONOTONIC) }

    /// CLOCK_REALTIME: for event timestamps.
    public static func realtime() -> UInt64 { read(CLOCK_REALTIME) }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
