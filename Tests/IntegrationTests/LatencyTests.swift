import AuthRelayHarness
import SystemSupport
import Testing

/// `authrelay latency` in its short CI mode, run as a child process: every
/// scenario present, percentiles ordered, counts as asked, and the auth-path
/// claim: with the collector stopped, the queued design keeps every decision
/// within budget while the naive design does not. The gRPC rows have their
/// own suite (LatencyGRPCTests, run when the peers are built); these run with
/// --no-grpc, the shared-memory rows always.
@Suite("authrelay latency", .serialized, .timeLimit(.minutes(3)))
struct LatencyTests {
    @Test("transports: Swift RPC, C client, raw and shared-memory floors on every transport, interleaved")
    func transports() throws {
        let (scenarios, errors, output) = try runLatency(["transports", "--quick", "--count", "600", "--rounds", "3", "--no-grpc"])
        let expected = ["swift-rpc-tcp", "swift-rpc-udp", "swift-rpc-unix", "c-rpc-tcp", "c-rpc-udp", "c-rpc-unix", "raw-tcp", "raw-unix",
                        "shm-futex", "shm-spin"]
        #expect(Set(scenarios.map(\.name)) == Set(expected), "\(output)")
        #expect(errors.isEmpty)
        expectSane(scenarios, output)
        for scenario in scenarios {
            #expect(scenario.integer("count") == 600, "\(scenario.name): count \(scenario.integer("count") ?? -1), asked 600")
        }
        for name in ["swift-rpc-tcp", "raw-unix"] {
            #expect(scenarios.first { $0.name == name }?.number("p50_vs_c") != nil, "\(name) has no ratio against the C client")
        }
        #expect(!output.contains("gRPC rows skipped"), "--no-grpc asks for no note\n\(output)")
    }

    @Test("without the gRPC peers: no gRPC rows, one note saying how to build them, the shared-memory rows still run")
    func grpcPeersMissing() throws {
        let nowhere = try TemporaryDirectory(prefix: "authrelay-no-grpc-peers")
        let (scenarios, errors, output) = try runLatency(["transports", "--quick", "--count", "100", "--rounds", "1", "--transports", "unix"],
                                                         environment: [GRPCPeers.environmentVariable: nowhere.path])
        #expect(errors.isEmpty)
        #expect(!scenarios.contains { $0.name.hasPrefix("grpc-") }, "\(output)")
        #expect(Set(scenarios.map(\.name)).isSuperset(of: ["shm-futex", "shm-spin"]), "\(output)")
        let notes = output.split(separator: "\n").filter { $0.contains("gRPC rows skipped") }
        #expect(notes.count == 1, "\(output)")
        #expect(notes.first?.contains(GRPCPeers.buildCommand) == true, "\(output)")
    }

    @Test("the shared-memory peer ends with the run and leaves no ring file behind")
    func sharedMemoryCleanUp() throws {
        let before = try ringFiles()
        _ = try runLatency(["transports", "--quick", "--count", "100", "--rounds", "1", "--transports", "unix", "--no-grpc"])
        #expect(try ringFiles().subtracting(before).isEmpty)
    }

    private func ringFiles() throws -> Set<String> {
        guard let folder = SharedMemory.standardDirectory else { return [] }
        return Set(try FileSystem.listDirectory(folder).filter { $0.hasPrefix("authrelay-latency-") })
    }

    @Test("batching: every batch size and one-way calls, each matching the collector's count")
    func batching() throws {
        let events = 2048
        let (scenarios, errors, output) = try runLatency(["batching", "--quick", "--events", "\(events)", "--rounds", "2", "--no-grpc"])
        var expectedCalls: [String: Int] = [:]
        for transport in ["tcp", "unix"] {
            for size in [1, 8, 64, 512] { expectedCalls["batch-\(size)-\(transport)"] = (events + size - 1) / size }
            expectedCalls["oneway-\(transport)"] = events
        }
        for size in [1, 8, 64, 512] { expectedCalls["shm-batch-\(size)"] = (events + size - 1) / size }
        #expect(Set(scenarios.map(\.name)) == Set(expectedCalls.keys), "\(output)")
        #expect(errors.isEmpty, "\(errors)")
        expectSane(scenarios, output)
        for scenario in scenarios {
            #expect(scenario.integer("count") == expectedCalls[scenario.name], "\(scenario.name): calls \(scenario.integer("count") ?? -1)")
            #expect(scenario.integer("events") == events, "\(scenario.name): events \(scenario.integer("events") ?? -1), asked \(events)")
            #expect(scenario.integer("collector_events") == events, "\(scenario.name): the collector counted \(scenario.integer("collector_events") ?? -1)")
        }
    }

    @Test("authpath: three designs under four conditions; a stopped collector never reaches the queued design's decisions")
    func authPath() throws {
        let requests = 400
        let (scenarios, errors, output) = try runLatency(["authpath", "--quick", "--requests", "\(requests)", "--no-grpc"])
        let designs = ["none", "queued", "naive"]
        let conditions = ["healthy", "slow", "stopped", "absent"]
        let expected = Set(designs.flatMap { design in conditions.map { "\(design)-\($0)" } })
        #expect(Set(scenarios.map(\.name)) == expected, "\(output)")
        #expect(errors.isEmpty)
        expectSane(scenarios, output)
        func scenario(_ name: String) throws -> LatencyScenario {
            try #require(scenarios.first { $0.name == name }, "\(name) missing\n\(output)")
        }
        for scenario in scenarios {
            for key in ["over_budget", "delivered", "dropped", "requested"] {
                #expect(scenario.integer(key) != nil, "\(scenario.name): no \(key)")
            }
            let bounded = scenario.name == "naive-slow" || scenario.name == "naive-stopped"
            let count = scenario.integer("count") ?? -1
            if bounded {
                #expect(count >= 1 && count <= requests, "\(scenario.name): count \(count)")
            } else {
                #expect(count == requests, "\(scenario.name): count \(count), asked \(requests)")
            }
        }
        let queuedStopped = try scenario("queued-stopped")
        let naiveStopped = try scenario("naive-stopped")
        #expect(queuedStopped.integer("over_budget") == 0, "queued design over budget with a stopped collector\n\(output)")
        #expect((naiveStopped.integer("over_budget") ?? 0) > 0, "naive design within budget with a stopped collector?\n\(output)")
        let queuedHealthy = try scenario("queued-healthy")
        #expect(queuedHealthy.integer("delivered") == requests && queuedHealthy.integer("dropped") == 0, "\(output)")
    }
}
