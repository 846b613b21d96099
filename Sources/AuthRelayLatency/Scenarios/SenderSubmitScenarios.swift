import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// The submit cost with 1 and 2 producer threads under each collector
/// condition, without the spool and with it, in interleaved rounds (each round
/// starts one scenario later), one new EventSender with the default
/// configuration per scenario and round (and a fresh spool directory).
enum SenderSubmitScenarios {
    private struct Scenario {
        let producers: Int
        let condition: CollectorCondition
        let spool: Bool
        var name: String { "submit-\(producers)p-\(condition.rawValue)\(spool ? "-spool" : "")" }
    }

    /// One scenario's figures summed over its rounds.
    private struct Totals {
        var latency = LatencyDistribution()
        var seconds = 0.0
        var submitted: UInt64 = 0
        var droppedAtSubmit: UInt64 = 0
        /// Acknowledged by the collector (the warm-up event not counted).
        var delivered: UInt64 = 0
        /// Queued, but not acknowledged when the sender closed (or rejected).
        var undelivered: UInt64 = 0
        var unbalanced: [String] = []
    }

    static func run(_ options: SenderBenchmark.Options, collector: SenderCollector, events: [Event],
                    progress: Progress) throws(LatencyError) -> (results: [ScenarioResult], notes: [String], errors: [String]) {
        var notes: [String] = []
        let conditions = options.conditions.filter { condition in
            guard collector.canRun(condition) else {
                notes.append("submit \(condition.rawValue): skipped, it needs a collector this run starts (not --collector)")
                return false
            }
            return true
        }
        let scenarios = options.producerCounts.flatMap { producers in
            conditions.flatMap { condition in options.spoolModes.map { Scenario(producers: producers, condition: condition, spool: $0) } }
        }
        guard !scenarios.isEmpty else { return ([], notes, []) }
        let rounds = max(1, min(options.submitRounds, options.submits))
        var totals = [Totals](repeating: Totals(), count: scenarios.count)
        for round in 0..<rounds {
            for offset in scenarios.indices {
                let index = (round + offset) % scenarios.count
                let share = options.submits / rounds + (round < options.submits % rounds ? 1 : 0)
                progress.update("submit round \(round + 1)/\(rounds), \(scenarios[index].name)")
                try runOne(scenarios[index], submits: share, options, collector, events, into: &totals[index])
            }
        }
        let transport = TransportsBenchmark.label(try collector.submitEndpoint().transport)
        let results = scenarios.indices.map { index in
            result(scenarios[index], totals[index], transport: transport, budget: options.submitGoalNanoseconds)
        }
        let errors = scenarios.indices.flatMap { index in totals[index].unbalanced.map { "\(scenarios[index].name): \($0)" } }
        return (results, notes, errors)
    }

    private static func runOne(_ scenario: Scenario, submits: Int, _ options: SenderBenchmark.Options,
                               _ collector: SenderCollector, _ events: [Event], into totals: inout Totals) throws(LatencyError) {
        let condition = scenario.condition
        collector.beforeSender(condition)
        let endpoint = try collector.submitEndpoint()
        let spool = scenario.spool ? try SenderBenchmark.spoolDirectory() : nil
        defer { if let spool { FileSystem.removeTree(spool) } }
        let sender = SenderBenchmark.makeSender(endpoint: endpoint, agentID: "authrelay-latency-submit", spool: spool) { _ in }
        var warmUpEvents: UInt64 = 0
        if condition != .absent {
            try SenderBenchmark.warmUp(sender, endpoint: endpoint)
            warmUpEvents = 1
        }
        collector.beforeProducers(condition)
        let run = SubmitCostRun(submits: submits, producers: scenario.producers, rate: options.rate, events: events)
        let outcome = run.run(sender)
        collector.afterProducers(condition)
        let report = sender.close(drainTimeout: condition == .absent ? .milliseconds(500) : options.drainTimeout)
        try collector.afterSender(condition)

        let stats = report.stats
        let submitted = UInt64(submits * scenario.producers)
        totals.latency.add(outcome.latency)
        totals.seconds += outcome.seconds
        totals.submitted += submitted
        totals.droppedAtSubmit += outcome.dropped
        totals.delivered += stats.acknowledged - warmUpEvents
        totals.undelivered += report.undelivered + stats.rejected + stats.evicted
        if !report.isBalanced || stats.submitted != submitted + warmUpEvents || stats.dropped != outcome.dropped {
            totals.unbalanced.append("sender stats do not add up: submitted \(stats.submitted) (timed \(submitted) + warm-up \(warmUpEvents)), acknowledged \(stats.acknowledged), dropped \(stats.dropped) (producers saw \(outcome.dropped)), undelivered \(report.undelivered)")
        }
    }

    private static func result(_ scenario: Scenario, _ totals: Totals, transport: String, budget: UInt64) -> ScenarioResult {
        var result = ScenarioResult(name: scenario.name, transport: transport, rateUnit: "submits/s",
                                    latency: totals.latency, seconds: totals.seconds)
        let never = totals.submitted > totals.delivered ? totals.submitted - totals.delivered : 0
        result.authPath = AuthPathOutcome(
            design: "submit-\(scenario.producers)-producer\(scenario.producers == 1 ? "" : "s")\(scenario.spool ? "-spool" : "")",
            condition: scenario.condition.rawValue, requested: totals.submitted,
            overBudget: totals.latency.count(above: budget), delivered: totals.delivered, dropped: never)
        let histogram = totals.latency.histogram
        result.notes.append("ns: p50 \(histogram.valueAtPercentile(50)), p99 \(histogram.valueAtPercentile(99)), p99.9 \(histogram.valueAtPercentile(99.9)), max \(histogram.maxRecorded)")
        result.notes.append("submitted \(totals.submitted): queued \(totals.submitted - totals.droppedAtSubmit), dropped at submit \(totals.droppedAtSubmit); acknowledged \(totals.delivered), queued but not acknowledged at close \(totals.undelivered)")
        return result
    }
}
