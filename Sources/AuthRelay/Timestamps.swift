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
    /// "20ms", "1s", "1.5s", "250us": how durations are shown and accepted on the command line.
    public var shortDescription: String {
        let nanoseconds = self.nanoseconds
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        if nanoseconds % 1_000 == 0 { return "\(nanoseconds / 1_000)us" }
        return "\(nanoseconds)ns"
    }

    /// Reads "20ms", "1s", "1.5s", "250us", "500ns", "2m" (a bare number is milliseconds).
    public init?(parsing text: String) {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9)]
        var number = Substring(text)
        var scale = 1e6
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        self = .nanoseconds(Int64(value * scale))
    }

    /// The duration in whole nanoseconds.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
