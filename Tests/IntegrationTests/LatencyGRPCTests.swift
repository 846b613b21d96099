import AuthRelayHarness
import TestSupport
import Testing

/// The gRPC peers as `authrelay latency` finds them from the built programs
/// ($AUTHRELAY_GRPC_PEERS, next to them, or Benchmarks/GRPCPeers/.build/release
/// above them). CI builds them once; a developer's `swift test` may not have them.
let grpcPeerLookup = GRPCPeers.find(beside: BuiltPrograms.executables)
let grpcPeersMissingReason: String? = grpcPeerLookup.peers == nil
    ? "grpc-collector and grpc-reporter are not built (\(GRPCPeers.buildCommand); CI builds them once)" : nil

/// `authrelay latency` with grpc-collector and grpc-reporter as separate
/// processes: their rows in transports, batching and authpath beside the ONC
/// RPC ones, and the auth-path claim asked of gRPC: a synchronous gRPC call in
/// the decision blows the budget when the server stops, as clnt_call does.
@Suite("authrelay latency with the gRPC peers", .serialized, .timeLimit(.minutes(4)),
       .enabled(if: grpcPeersMissingReason == nil, Comment(rawValue: grpcPeersMissingReason ?? "")))
struct LatencyGRPCTests {
    private var peerArguments: [String] { ["--grpc-peers", grpcPeerLookup.peers?.directory ?? "-"] }

    @Test("transports: unary gRPC on tcp and unix, interleaved with ONC RPC, compared with the C client")
    func transports() throws {
        let (scenarios, errors, output) = try runLatency(["transports", "--quick", "--count", "400", "--rounds", "2",
                                                          "--transports", "tcp,unix"] + peerArguments)
        #expect(errors.isEmpty)
        expectSane(scenarios, output)
        for name in ["grpc-unary-tcp", "grpc-unary-unix"] {
            let scenario = try #require(scenarios.first { $0.name == name }, "\(name) missing\n\(output)")
            #expect(scenario.integer("count") == 400, "\(name): count \(scenario.integer("count") ?? -1)")
            #expect(scenario.string("percentiles_from") == "grpc-reporter summaries")
            #expect(scenario.number("p50_vs_c") != nil, "\(name) has no ratio against the C client")
        }
        #expect(Set(scenarios.map(\.name)).isSuperset(of: ["swift-rpc-tcp", "c-rpc-unix", "shm-futex"]), "\(output)")
    }

    @Test("batching: gRPC streams of 1, 8, 64 and 512 events, each row matching its grpc-collector's own count")
    func batching() throws {
        let events = 1024
        let (scenarios, errors, output) = try runLatency(["batching", "--quick", "--events", "\(events)", "--rounds", "2"] + peerArguments)
        #expect(errors.isEmpty, "\(errors)")
        expectSane(scenarios, output)
        for transport in ["tcp", "unix"] {
            for size in [1, 8, 64, 512] {
                let name = "grpc-stream-\(size)-\(transport)"
                let scenario = try #require(scenarios.first { $0.name == name }, "\(name) missing\n\(output)")
                #expect(scenario.integer("count") == (events + size - 1) / size, "\(name): calls \(scenario.integer("count") ?? -1)")
                #expect(scenario.integer("events") == events, "\(name): events \(scenario.integer("events") ?? -1)")
                #expect(scenario.integer("collector_events") == events, "\(name): grpc-collector counted \(scenario.integer("collector_events") ?? -1)")
            }
        }
    }

    @Test("authpath: the naive gRPC design under four conditions; a stopped server reaches its decisions, not the queued design's")
    func authPath() throws {
        let requests = 200
        let (scenarios, errors, output) = try runLatency(["authpath", "--quick", "--requests", "\(requests)"] + peerArguments)
        #expect(errors.isEmpty)
        expectSane(scenarios, output)
        func scenario(_ name: String) throws -> LatencyScenario {
            try #require(scenarios.first { $0.name == name }, "\(name) missing\n\(output)")
        }
        for condition in ["healthy", "slow", "stopped", "absent"] {
            let row = try scenario("grpc-naive-\(condition)")
            let count = row.integer("count") ?? -1
            #expect(count >= 1 && count <= requests, "grpc-naive-\(condition): count \(count)")
            #expect(row.string("design") == "grpc-naive")
        }
        let stopped = try scenario("grpc-naive-stopped")
        #expect((stopped.integer("over_budget") ?? 0) > 0, "naive gRPC within budget with a stopped server?\n\(output)")
        #expect((stopped.integer("dropped") ?? 0) > 0, "\(output)")
        #expect(try scenario("grpc-naive-healthy").integer("dropped") == 0, "\(output)")
        #expect(try scenario("grpc-naive-absent").integer("delivered") == 0, "\(output)")
        #expect(try scenario("queued-stopped").integer("over_budget") == 0, "\(output)")
    }
}
