import AuthRelayHarness
import SystemSupport
import TestSupport
import Testing

/// `authrelay latency authpath --source fanotify` on real opens in a temporary
/// directory (root only): every scenario present, and with the collector
/// stopped the queued design keeps every decision within budget while the
/// naive design, which reports before it answers, does not.
@Suite("authrelay latency on fanotify", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: fanotifyUnavailableReason == nil, Comment(rawValue: fanotifyUnavailableReason ?? "")))
struct LatencyFanotifyTests {
    @Test("authpath --source fanotify: three designs under four conditions on real opens")
    func authPathOnFanotify() throws {
        let watched = try TemporaryDirectory(prefix: "authrelay-latency-fanotify")
        defer { watched.remove() }
        let (scenarios, errors, output) = try runLatency(["authpath", "--quick", "--source", "fanotify", "--watch", watched.path])
        let designs = ["none", "queued", "naive"]
        let conditions = ["healthy", "slow", "stopped", "absent"]
        let expected = Set(designs.flatMap { design in conditions.map { "\(design)-\($0)" } })
        #expect(Set(scenarios.map(\.name)) == expected, "\(output)")
        #expect(errors.isEmpty)
        expectSane(scenarios, output)
        for scenario in scenarios {
            #expect((scenario.integer("count") ?? 0) >= 1, "\(scenario.name): no decisions\n\(output)")
            for key in ["over_budget", "delivered", "dropped"] {
                #expect(scenario.integer(key) != nil, "\(scenario.name): no \(key)")
            }
        }
        let queuedStopped = try #require(scenarios.first { $0.name == "queued-stopped" }, "\(output)")
        let naiveStopped = try #require(scenarios.first { $0.name == "naive-stopped" }, "\(output)")
        #expect(queuedStopped.integer("over_budget") == 0, "queued design over budget with a stopped collector\n\(output)")
        #expect((naiveStopped.integer("over_budget") ?? 0) > 0, "naive design within budget with a stopped collector?\n\(output)")
        // The files the run created in the watched directory are gone.
        let left = try FileSystem.listDirectory(watched.path)
        #expect(left.isEmpty, "left in the watched directory: \(left)")
    }
}
