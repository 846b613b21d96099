import AuthRelayHarness
import AuthRelayProtocol

/// What one scenario did in one round.
struct RoundOutcome {
    /// Per-call latencies; nil when the scenario only reports a summary (the C client).
    var latency: LatencyDistribution?
    var summary: PercentileSummary?
    var calls: UInt64
    var events: UInt64
    /// Time the round's calls took, measured around the call loop.
    var seconds: Double
    /// The collector's own count of the round's events, when it can be asked.
    var collectorEvents: UInt64?
}

extension InterleavedScenario {
    /// A scenario whose percentiles come from a child's own summary line each round.
    func percentiles(from source: String) -> InterleavedScenario {
        var scenario = self
        scenario.percentilesFrom = source
        return scenario
    }
}

/// A scenario that runs in slices: `round(units)` does `units` units of work (calls).
struct InterleavedScenario {
    let name: String
    let transport: String
    /// Units (calls) over all rounds.
    let units: Int
    /// What the result's rate counts: "calls/s" or "events/s".
    let rateUnit: String
    let round: (_ units: Int) throws(LatencyError) -> RoundOutcome
    /// Where the table's percentiles come from, when a child reports them (nil: this process's histograms).
    var percentilesFrom: String?

    init(name: String, transport: String, units: Int, rateUnit: String,
         round: @escaping (_ units: Int) throws(LatencyError) -> RoundOutcome) {
        self.name = name
        self.transport = transport
        self.units = units
        self.rateUnit = rateUnit
        self.round = round
    }
}

/// Runs scenarios in interleaved rounds (A, B, C, A, B, C, ...), each round
/// starting one scenario later. On a noisy 2-core VM a disturbance hits whole
/// rounds, so each figure is the median over rounds of that round's figure
/// (percentiles from the round's HdrHistogram, or the C client's own summary;
/// the rate of the round), max is the largest of all, and count is the total.
/// The .hgrm files and the chart show the merged histogram, noise included.
enum Interleaver {
    static let summaryNote = "figures are medians over rounds of each round's percentiles and rate (max: over all calls); .hgrm and .svg show all calls merged"

    static func run(_ scenarios: [InterleavedScenario], rounds: Int, progress: Progress) throws(LatencyError) -> [ScenarioResult] {
        let rounds = max(1, min(rounds, scenarios.map(\.units).min() ?? 1))
        var merged = [RoundOutcome](repeating: RoundOutcome(calls: 0, events: 0, seconds: 0), count: scenarios.count)
        var summaries = [[PercentileSummary]](repeating: [], count: scenarios.count)
        var rates = [[Double]](repeating: [], count: scenarios.count)
        for round in 0..<rounds {
            for offset in scenarios.indices {
                let index = (round + offset) % scenarios.count
                // Share the units over the rounds: the first `units % rounds` rounds take one more.
                let units = scenarios[index].units
                let share = units / rounds + (round < units % rounds ? 1 : 0)
                progress.update("round \(round + 1)/\(rounds), \(scenarios[index].name)")
                let outcome = try scenarios[index].round(share)
                merge(outcome, into: &merged[index])
                if let summary = outcome.summary ?? outcome.latency?.summary { summaries[index].append(summary) }
                let perRound = scenarios[index].rateUnit == "events/s" ? outcome.events : outcome.calls
                if outcome.seconds > 0 { rates[index].append(Double(perRound) / outcome.seconds) }
            }
        }
        return scenarios.indices.map { index in
            var result = ScenarioResult(name: scenarios[index].name, transport: scenarios[index].transport,
                                        rateUnit: scenarios[index].rateUnit, count: merged[index].calls,
                                        seconds: merged[index].seconds, summary: .medianOfRounds(summaries[index]))
            result.latency = merged[index].latency
            result.percentilesFrom = scenarios[index].percentilesFrom
            result.rate = median(rates[index])
            result.events = merged[index].events
            result.collectorEvents = merged[index].collectorEvents
            return result
        }
    }

    private static func merge(_ outcome: RoundOutcome, into total: inout RoundOutcome) {
        if let latency = outcome.latency {
            if total.latency == nil { total.latency = LatencyDistribution() }
            total.latency!.add(latency)
        }
        total.calls += outcome.calls
        total.events += outcome.events
        total.seconds += outcome.seconds
        if let counted = outcome.collectorEvents {
            total.collectorEvents = (total.collectorEvents ?? 0) + counted
        }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// A round's timed calls of `batch` events each, `eventLimit` events in all at
/// most (the last call may be partial): `call(count)` makes one and returns its
/// latency in ns.
enum TimedBatches {
    static func run(calls: Int, batch: Int, eventLimit: Int,
                    _ call: (Int) throws(LatencyError) -> UInt64) throws(LatencyError) -> (latency: LatencyDistribution, events: Int, seconds: Double) {
        var latency = LatencyDistribution()
        var sent = 0
        let start = Timestamps.monotonic()
        for _ in 0..<calls {
            let count = min(batch, eventLimit - sent)
            guard count > 0 else { break }
            latency.record(nanoseconds: try call(count))
            sent += count
        }
        return (latency, sent, Time.seconds(since: start))
    }
}
