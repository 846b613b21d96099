import GRPCCore
import GRPCPeerSupport
import Histogram

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a run counted and measured. One task at a time updates it (the run's
/// loop, or the stream's request producer, which runs while the loop waits),
/// hence @unchecked Sendable.
final class Tally: @unchecked Sendable {
    /// Acknowledged calls (unary, authpath-naive) or batches (stream), and their events.
    var calls: UInt64 = 0
    var events: UInt64 = 0
    /// Failed calls; `timeouts` of them ran out of their --timeout.
    var errors: UInt64 = 0
    var timeouts: UInt64 = 0
    /// Monotonic ns: when the first call could start, and when the last one ended.
    var start: UInt64 = 0
    var end: UInt64 = 0
    /// Nanoseconds, 3 significant digits, up to one hour: the layout of `authrelay latency`.
    var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    private var shown = 0
    static let maxShown = 10

    func record(nanoseconds: UInt64) {
        histogram.record(min(nanoseconds, 3_600_000_000_000))
    }

    func succeeded(events count: Int) {
        calls += 1
        events += UInt64(count)
    }

    /// A failed call; `what` names its events ("seq 5", "seq 9..16"). The first
    /// 10 go to stderr, as legacy-reporter shows them; the rest are only counted.
    func failed(_ what: String, _ message: String, timeout: Bool) {
        errors += 1
        if timeout { timeouts += 1 }
        if shown < Self.maxShown {
            note(program, "\(what): \(message)")
        } else if shown == Self.maxShown {
            note(program, "further errors are counted, not shown")
        }
        shown += 1
    }

    /// legacy-reporter's -L line, with timeouts= before errors=.
    func summaryLine() -> String {
        let seconds = end > start ? Double(end - start) / 1e9 : 0
        func us(_ percentile: Double) -> String {
            histogram.totalCount == 0 ? "0.0" : fixed(Double(histogram.valueAtPercentile(percentile)) / 1000, 1)
        }
        let maxUs = histogram.totalCount == 0 ? "0.0" : fixed(Double(histogram.maxRecorded) / 1000, 1)
        return "\(program): calls=\(calls) events=\(events) seconds=\(fixed(seconds, 6))"
            + " calls_per_s=\(fixed(seconds > 0 ? Double(calls) / seconds : 0, 0))"
            + " events_per_s=\(fixed(seconds > 0 ? Double(events) / seconds : 0, 0))"
            + " p50_us=\(us(50)) p90_us=\(us(90)) p99_us=\(us(99)) p999_us=\(us(99.9)) max_us=\(maxUs)"
            + " timeouts=\(timeouts) errors=\(errors)"
    }

    /// The HdrHistogram percentile distribution, values in microseconds.
    func writeHgrm(to path: String) -> Bool {
        var text = ""
        histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
        guard let file = fopen(path, "w") else { return false }
        let ok = fputs(text, file) >= 0
        return fclose(file) == 0 && ok
    }
}

/// Whether an error is a call that ran out of its deadline.
func isTimeout(_ error: any Error) -> Bool {
    (error as? RPCError)?.code == .deadlineExceeded
}

/// An error as one line for stderr.
func describe(_ error: any Error) -> String {
    if let rpc = error as? RPCError {
        var text = "\(rpc.code): \(rpc.message)"
        if let cause = rpc.cause { text += " (\(cause))" }
        return text.split(separator: "\n").joined(separator: " ")
    }
    return String(describing: error).split(separator: "\n").joined(separator: " ")
}

/// Requests or calls on a fixed schedule: number i is due at start + i / rate.
/// Sleeps until 100 µs before, then spins, as `authrelay latency`'s PacedArrivals.
struct Pacer: Sendable {
    let start: UInt64
    let interval: UInt64

    init(rate: Double) {
        interval = UInt64(max(1, 1e9 / max(rate, 1e-3)))
        start = Clock.monotonicNanoseconds() + 1_000_000
    }

    func arrival(of index: UInt64) -> UInt64 { start &+ index &* interval }

    /// Waits until number `index` is due; returns when it was due.
    func wait(for index: UInt64) async -> UInt64 {
        let due = arrival(of: index)
        let now = Clock.monotonicNanoseconds()
        if now + 200_000 < due { try? await Task.sleep(nanoseconds: due - 100_000 - now) }
        while Clock.monotonicNanoseconds() < due {}
        return due
    }
}
