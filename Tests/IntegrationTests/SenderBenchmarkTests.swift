import Testing

/// `authrelay latency sender --quick`, run as a child process: every scenario
/// present, percentiles ordered, and the counts add up (no timing assertions).
@Suite("authrelay latency sender", .serialized, .timeLimit(.minutes(3)))
struct SenderBenchmarkTests {
    static let producers = [1, 2]
    static let conditions = ["healthy", "stopped", "absent"]
    /// `--quick`: timed submits per producer thread and scenario.
    static let quickSubmits = 20_000

    @Test("submit cost under three collector conditions and end-to-end beside the C client, counts consistent")
    func quickRun() throws {
        let (scenarios, errors, output) = try runLatency(["sender", "--quick"])
        let submitNames = Self.producers.flatMap { producers in Self.conditions.map { "submit-\(producers)p-\($0)" } }
        let endToEndNames = ["sender-unix", "sender-tcp", "c-batch512-unix", "c-batch512-tcp"]
        #expect(Set(scenarios.map(\.name)) == Set(["clock-pair"] + submitNames + endToEndNames), "\(output)")
        #expect(errors.isEmpty, "\(errors)")
        expectSane(scenarios, output)

        let clock = try #require(scenarios.first { $0.name == "clock-pair" }, "\(output)")
        #expect((clock.integer("count") ?? 0) > 0)

        for producers in Self.producers {
            for condition in Self.conditions {
                let name = "submit-\(producers)p-\(condition)"
                let scenario = try #require(scenarios.first { $0.name == name }, "\(name) missing\n\(output)")
                let requested = Self.quickSubmits * producers
                #expect(scenario.integer("count") == requested, "\(name): count \(scenario.integer("count") ?? -1), asked \(requested)")
                #expect(scenario.integer("requested") == requested, "\(name): requested \(scenario.integer("requested") ?? -1)")
                let delivered = scenario.integer("delivered") ?? -1
                let dropped = scenario.integer("dropped") ?? -1
                #expect(delivered >= 0 && dropped >= 0 && delivered + dropped == requested,
                        "\(name): delivered \(delivered) + dropped \(dropped) != \(requested)")
                let overBudget = scenario.integer("over_budget") ?? -1
                #expect(overBudget >= 0 && overBudget <= requested, "\(name): over_budget \(overBudget)")
                #expect(scenario.fields["condition"] as? String == condition, "\(name): condition \(scenario.fields["condition"] ?? "none")")
                if condition == "absent" {
                    #expect(delivered == 0, "\(name): \(delivered) events delivered with no collector")
                } else {
                    #expect(delivered > 0, "\(name): nothing delivered once the collector was there\n\(output)")
                }
            }
        }

        for name in endToEndNames {
            let scenario = try #require(scenarios.first { $0.name == name }, "\(name) missing\n\(output)")
            let events = scenario.integer("events") ?? 0
            let batches = scenario.integer("count") ?? 0
            #expect(events > 0 && batches > 0, "\(name): events \(events), batches \(batches)")
            #expect(scenario.integer("collector_events") == events, "\(name): the collector counted \(scenario.integer("collector_events") ?? -1) of \(events)")
            #expect(events <= batches * 512, "\(name): \(events) events in \(batches) batches of at most 512")
            #expect(scenario.fields["rate_unit"] as? String == "events/s", "\(name): rate_unit")
        }
        for name in ["sender-unix", "sender-tcp"] {
            let ratio = scenarios.first { $0.name == name }?.number("rate_vs_c") ?? 0
            #expect(ratio > 0, "\(name) has no ratio against the C client\n\(output)")
        }
    }
}
