import Histogram
import SystemSupport

/// Measured latencies: an HdrHistogram of nanoseconds, 3 significant digits,
/// from 1 ns to one hour, so percentiles come from the histogram, never from
/// sorting samples. Rounds of the same scenario merge with `add`.
struct LatencyDistribution: Sendable {
    /// One hour in nanoseconds: longer values are recorded as one hour.
    static let highestNanoseconds: UInt64 = 3_600_000_000_000

    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: highestNanoseconds, numberOfSignificantValueDigits: .three)

    init() {}

    var count: UInt64 { histogram.totalCount }

    mutating func record(nanoseconds: UInt64) {
        histogram.record(min(nanoseconds, Self.highestNanoseconds))
    }

    mutating func add(_ other: LatencyDistribution) {
        histogram.add(other.histogram)
    }

    /// Merges a histogram recorded elsewhere (the agent's decision stats) with the same layout.
    mutating func add(_ other: Histogram<UInt64>) {
        histogram.add(other)
    }

    /// The value at `percentile` (0...100), in microseconds. 100 is the exact maximum.
    func microseconds(atPercentile percentile: Double) -> Double {
        Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    /// The usual summary: p50, p90, p99, p99.9 and max.
    var summary: PercentileSummary {
        PercentileSummary(
            p50: microseconds(atPercentile: 50), p90: microseconds(atPercentile: 90),
            p99: microseconds(atPercentile: 99), p999: microseconds(atPercentile: 99.9),
            max: Double(histogram.maxRecorded) / 1000)
    }

    /// How many recorded values are above `nanoseconds`.
    func count(above nanoseconds: UInt64) -> UInt64 {
        guard count > 0, histogram.maxRecorded > nanoseconds else { return 0 }
        return histogram.count(within: (nanoseconds + 1)...max(nanoseconds + 1, histogram.max))
    }
}

/// The five numbers every table and JSON object shows, in microseconds.
struct PercentileSummary: Sendable, Equatable {
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double

    init(p50: Double, p90: Double, p99: Double, p999: Double, max: Double) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
    }

    /// Per-percentile medians across rounds, and the largest max: how interleaved
    /// rounds are summed up (the C client reports only a summary per round).
    static func medianOfRounds(_ rounds: [PercentileSummary]) -> PercentileSummary {
        var merged = PercentileSummary(
            p50: median(rounds.map(\.p50)), p90: median(rounds.map(\.p90)), p99: median(rounds.map(\.p99)),
            p999: median(rounds.map(\.p999)), max: rounds.map(\.max).max() ?? 0)
        // Medians of different rounds can cross: keep the summary ordered.
        merged.p90 = Swift.max(merged.p90, merged.p50)
        merged.p99 = Swift.max(merged.p99, merged.p90)
        merged.p999 = Swift.max(merged.p999, merged.p99)
        merged.max = Swift.max(merged.max, merged.p999)
        return merged
    }
}

extension LatencyDistribution {
    /// Rebuilds a distribution from the text of an .hgrm percentile file
    /// (HdrHistogram's outputPercentileDistribution, values in µs): each
    /// line's increase of the total count is recorded at that line's value.
    /// Percentiles at the file's steps come out as in the original; between
    /// steps a value moves up to the next step. nil when no line parses.
    init?(hgrm text: String) {
        self.init()
        var total: UInt64 = 0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let words = line.split(separator: " ")
            guard words.count >= 3, let microseconds = Double(words[0]), Double(words[1]) != nil,
                  let cumulative = UInt64(words[2]), cumulative >= total else { continue }
            if cumulative > total {
                _ = histogram.record(min(UInt64((microseconds * 1000).rounded()), Self.highestNanoseconds), count: cumulative - total)
                total = cumulative
            }
        }
        if total == 0 { return nil }
    }
}
