/// What one scenario measured, merged over its rounds; every writer reads this.
struct ScenarioResult: Sendable {
    var name: String
    /// "tcp", "udp" or "unix" (what the scenario's traffic went over), or "none".
    var transport: String
    /// Samples in the distribution: calls, or auth decisions.
    var count: UInt64
    /// Time the samples took, summed over rounds, in seconds.
    var seconds: Double
    /// What `rate` counts per second: "calls/s", "events/s" or "decisions/s".
    var rateUnit: String
    var rate: Double
    /// nil when the scenario reports only a summary (the C client prints percentiles, not samples).
    var latency: LatencyDistribution?
    /// What the table and JSON show: the distribution's, or the median over interleaved rounds.
    var summary: PercentileSummary
    /// Where `summary` comes from when not from `latency` per round (a child's own summaries).
    var percentilesFrom: String?
    /// Batching: events sent, and the collector's own count of them.
    var events: UInt64?
    var collectorEvents: UInt64?
    /// The auth path: design, condition and what happened to the decisions and events.
    var authPath: AuthPathOutcome?
    /// Against the C client on the same transport, in the same run.
    var comparedToC: Comparison?
    /// What a reader must know to read the row right (bounds applied, conditions skipped).
    var notes: [String] = []

    struct Comparison: Sendable {
        var p50Ratio: Double
        var rateRatio: Double
    }

    init(name: String, transport: String, rateUnit: String, latency: LatencyDistribution, seconds: Double) {
        self.name = name
        self.transport = transport
        self.count = latency.count
        self.seconds = seconds
        self.rateUnit = rateUnit
        self.rate = seconds > 0 ? Double(latency.count) / seconds : 0
        self.latency = latency
        self.summary = latency.summary
    }

    init(name: String, transport: String, rateUnit: String, count: UInt64, seconds: Double, summary: PercentileSummary) {
        self.name = name
        self.transport = transport
        self.count = count
        self.seconds = seconds
        self.rateUnit = rateUnit
        self.rate = seconds > 0 ? Double(count) / seconds : 0
        self.latency = nil
        self.summary = summary
    }
}

/// The auth path's own figures for one design under one collector condition.
struct AuthPathOutcome: Sendable {
    var design: String
    var condition: String
    /// Requests the scenario was asked to decide; `count` may be lower when a bound stopped it.
    var requested: UInt64
    var overBudget: UInt64
    /// Events the collector acknowledged.
    var delivered: UInt64
    /// Events never acknowledged: dropped at a full queue, failed calls, or still queued at the end.
    var dropped: UInt64
}

/// Everything one subcommand run produced.
package struct LatencyReport: Sendable {
    var subcommand: String
    var quick: Bool
    var results: [ScenarioResult] = []
    /// Lines printed under the table: what was skipped and why, how the run was bounded.
    var notes: [String] = []
    /// Failed checks (a collector count that does not match): the command exits non-zero.
    package var errors: [String] = []
    /// The auth path's budget, drawn on the chart.
    var budgetMicroseconds: Double?

    init(subcommand: String, quick: Bool) {
        self.subcommand = subcommand
        self.quick = quick
    }
}
