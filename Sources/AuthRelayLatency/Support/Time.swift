import AuthRelayProtocol
import SystemSupport

/// Elapsed time; the clocks themselves are `Timestamps` (and SystemClock for sleeping).
enum Time {
    static func seconds(since start: UInt64) -> Double {
        Double(Timestamps.monotonic() - start) / 1e9
    }

    /// `duration` in seconds, for figures and notes.
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.nanoseconds) / 1e9
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
