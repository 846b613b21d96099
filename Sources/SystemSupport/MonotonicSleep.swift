import Glibc

extension SystemClock {
    /// Sleeps until CLOCK_MONOTONIC reaches `deadline` (ns): an absolute
    /// deadline, so a paced loop does not drift by its own wake-up lateness
    /// (clock_nanosleep with TIMER_ABSTIME; resumed after a signal).
    package static func sleep(untilMonotonic deadline: UInt64) {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        // clock_nanosleep returns the error number instead of setting errno.
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }
}
