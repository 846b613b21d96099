import AuthRelay
import AuthRelayProtocol
import Glibc
import SystemSupport

/// Sleeping and formatting helpers; the clocks themselves are AuthRelay's `Timestamps`.
enum Time {
    static func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    static func sleep(_ duration: Duration) {
        sleep(nanoseconds: UInt64(max(duration.nanoseconds, 0)))
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `deadline` (ns).
    static func sleep(untilMonotonic deadline: UInt64) {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }

    static func seconds(since start: UInt64) -> Double {
        Double(Timestamps.monotonic() - start) / 1e9
    }
}

/// Formats a number with a fixed count of decimals (String(format:) needs Foundation).
func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale: UInt64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let rounded = UInt64((abs(value) * Double(scale)).rounded())
    let whole = rounded / scale
    var fraction = String(rounded % scale)
    fraction = String(repeating: "0", count: max(0, decimals - fraction.count)) + fraction
    let sign = value < 0 && rounded > 0 ? "-" : ""
    return decimals == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
}
