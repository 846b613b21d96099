import Glibc

/// The clocks, in nanoseconds: clock_gettime through the vDSO (no system
/// call), so an auth path may read them.
package enum SystemClock {
    /// CLOCK_MONOTONIC: for durations, deadlines and budgets.
    package static func monotonicNanoseconds() -> UInt64 { read(CLOCK_MONOTONIC) }

    /// CLOCK_REALTIME: for timestamps.
    package static func realtimeNanoseconds() -> UInt64 { read(CLOCK_REALTIME) }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Sleeps for `duration` (resumed after a signal).
    package static func sleep(_ duration: Duration) {
        guard duration > .zero else { return }
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && Glibc.errno == EINTR { request = remaining }
    }

    /// A deadline `duration` from now, in monotonic nanoseconds.
    package static func deadline(after duration: Duration) -> UInt64 {
        monotonicNanoseconds() &+ UInt64(max(duration.nanoseconds, 0))
    }

    /// What is left until `deadline` (zero once passed).
    package static func remaining(until deadline: UInt64) -> Duration {
        let now = monotonicNanoseconds()
        return .nanoseconds(Int64(clamping: deadline > now ? deadline - now : 0))
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }

    /// Whole milliseconds, rounded up (poll's unit: a 0.5 ms wait must not become 0).
    package var roundedUpMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return .max }
        return scaled + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }

    /// "20ms", "1s", "250us", "500ns": how durations are shown.
    package var shortDescription: String {
        let nanoseconds = self.nanoseconds
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        if nanoseconds % 1_000 == 0 { return "\(nanoseconds / 1_000)us" }
        return "\(nanoseconds)ns"
    }
}
