/// What one scenario measured, merged over its rounds; every writer reads this.
public struct ScenarioResult: Sendable {
    public var name: String
    /// "tcp", "udp" or "unix" (what the scenario's traffic went over), or "none".
    public var transport: String
    /// Samples in the distribution: calls, or auth decisions.
    public var count: UInt64
    /// Time the samples took, summed over rounds, in seconds.
    public var seconds: Double
    /// What `rate` counts per second: "calls/s", "events/s" or "decisions/s".
    public var rateUnit: String
    public var rate: Double
    /// nil when the scenario reports only a summary (the C client prints percentiles, not samples).
    public var latency: LatencyDistribution?
    /// What the table and JSON show: the distribution's, or the median over interleaved rounds.
    public var summary: PercentileSummary
    /// Batching: events sent, and the collector's own count of them.
    public var events: UInt64?
    public var collectorEvents: UInt64?
    /// The auth path: design, condition and what happened to the decisions and events.
    public var authPath: AuthPathOutcome?
    /// Against the C client on the same transport, in the same run.
    public var comparedToC: Comparison?
    /// What a reader must know to read the row right (bounds applied, conditions skipped).
    public var notes: [String] = []

    public struct Comparison: Sendable {
        public var p50Ratio: Double
        public var rateRatio: Double
    }

    public init(name: String, transport: String, rateUnit: String, latency: LatencyDistribution, seconds: Double) {
        self.name = name
        self.transport = transport
        self.count = latency.count
        self.seconds = seconds
        self.rateUnit = rateUnit
        self.rate = seconds > 0 ? Double(latency.count) / seconds : 0
        self.latency = latency
        self.summary = latency.summary
    }

    public init(name: String, transport: String, rateUnit: String, count: UInt64, seconds: Double, summary: PercentileSummary) {
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
public struct AuthPathOutcome: Sendable {
    public var design: String
    public var condition: String
    /// Requests the scenario was asked to decide; `count` may be lower when a bound stopped it.
    public var requested: UInt64
    public var overBudget: UInt64
    /// Events the collector acknowledged.
    public var delivered: UInt64
    /// Events never acknowledged: dropped at a full queue, failed calls, or still queued at the end.
    public var dropped: UInt64
}

/// Everything one subcommand run produced.
public struct LatencyReport: Sendable {
    public var subcommand: String
    public var quick: Bool
    public var results: [ScenarioResult] = []
    /// Lines printed under the table: what was skipped and why, how the run was bounded.
    public var notes: [String] = []
    /// Failed checks (a collector count that does not match): the command exits non-zero.
    public var errors: [String] = []
    /// The auth path's budget, drawn on the chart.
    public var budgetMicroseconds: Double?

    public init(subcommand: String, quick: Bool) {
        self.subcommand = subcommand
        self.quick = quick
    }
}
