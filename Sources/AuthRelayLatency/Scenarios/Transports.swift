import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// `authrelay latency transports`: the round trip of one event per call over
/// ONC RPC on tcp, udp and unix, beside a raw ping-pong floor and the plain C
/// client on the same transports, all interleaved in one run.
package enum TransportsBenchmark {
    package struct Options: Sendable {
        /// Calls per scenario (over all rounds).
        package var count = 100_000
        package var rounds = 10
        /// Unrecorded calls per Swift client before the first round (connect, page in).
        package var warmup = 1_000
        package var transports: [RPCTransport] = [.tcp, .udp, .local]
        /// Existing collectors to use instead of starting one (one per transport).
        package var collectors: [RPCEndpoint] = []
        /// The collector to start; nil: `CollectorProgram.standard(in:)`.
        package var program: CollectorProgram?
        package var callTimeout: Duration = .seconds(5)
        /// Where grpc-collector and grpc-reporter are; nil: no gRPC rows (--no-grpc).
        package var grpc: GRPCPeers.Lookup?
        package var quick = false

        package init() {}

        /// What `--quick` runs: a few seconds in all.
        package static var quick: Options {
            var options = Options()
            options.count = 2_000
            options.rounds = 4
            options.warmup = 200
            options.quick = true
            return options
        }
    }

    package static func run(_ options: Options, executables: Executables, progress: Progress) throws(LatencyError) -> LatencyReport {
        var report = LatencyReport(subcommand: "transports", quick: options.quick)
        let directory = try TemporaryDirectory(prefix: "authrelay-latency-transports")
        var collector: CollectorSupervisor?
        defer { collector?.stop() }

        let (started, endpoints, note) = try CollectorSupervisor.startOrUse(
            options.collectors, program: options.program, transports: options.transports, executables: executables)
        collector = started
        report.notes.append(note)

        var scenarios: [InterleavedScenario] = []
        var cleanups: [() -> Void] = []
        defer { cleanups.forEach { $0() } }
        for endpoint in endpoints {
            scenarios.append(try swiftScenario(endpoint, options))
        }
        if executables.has(LegacyReporter.name) {
            for endpoint in endpoints {
                let reporter = LegacyReporter(executables: executables, directory: directory, endpoint: endpoint)
                scenarios.append(InterleavedScenario(name: "c-rpc-\(label(endpoint.transport))", transport: label(endpoint.transport),
                                                     units: options.count, rateUnit: "calls/s") { (units) throws(LatencyError) in
                    try reporter.round(calls: units)
                })
            }
        } else {
            report.notes.append("C client skipped: \(executables.path(LegacyReporter.name)) not found (build the legacy-reporter product)")
        }
        let payload = BenchmarkEvent.encodedSize
        for transport in [RPCTransport.tcp, .local] where endpoints.contains(where: { $0.transport == transport }) {
            let server = try EchoServer(unixPath: transport == .local ? directory.file("echo.sock") : nil, payloadSize: payload)
            let client = try PingPongClient(server.address, payloadSize: payload)
            cleanups.append { server.stop() }
            scenarios.append(rawScenario(transport, client, count: options.count))
        }
        report.notes.append("raw floor: \(payload)-byte ping-pong (the size of the encoded event), echoed by a thread of this process")
        if let grpc = options.grpc {
            if let peers = grpc.peers {
                let collector = try GRPCCollector(peers, directory: directory, tag: "grpc-collector")
                cleanups.append { collector.stop() }
                for transport in [RPCTransport.tcp, .local] where endpoints.contains(where: { $0.transport == transport }) {
                    let reporter = GRPCReporter(peers, directory: directory, target: collector.target(transport))
                    scenarios.append(InterleavedScenario(name: "grpc-unary-\(label(transport))", transport: label(transport),
                                                         units: options.count, rateUnit: "calls/s") { (units) throws(LatencyError) in
                        try reporter.round(events: units)
                    }.percentiles(from: GRPCReporter.percentileSource))
                }
                report.notes.append("grpc-unary: grpc-reporter --mode unary (one ReportEvent per event: protobuf over HTTP/2) run per round against one grpc-collector, from \(peers.directory); \(GRPCReporter.percentileNote)")
            } else {
                report.notes.append(grpc.missingNote)
            }
        }
        for (variant, spin) in SharedMemoryLink.variants {
            let link = try SharedMemoryLink(variant: variant, spin: spin, directory: directory)
            cleanups.append { link.stop() }
            scenarios.append(InterleavedScenario(name: "shm-\(variant)", transport: "shm", units: options.count,
                                                 rateUnit: "calls/s") { (units) throws(LatencyError) in
                try link.round(calls: units, batch: 1)
            })
        }
        report.notes.append(SharedMemoryLink.note)

        report.results = try Interleaver.run(scenarios, rounds: options.rounds, progress: progress)
        report.notes.append(Interleaver.summaryNote)
        compareWithC(&report.results)
        report.notes.append("\(options.count) calls per scenario in \(min(options.rounds, options.count)) interleaved rounds; ratios are against c-rpc on the same transport in this run")
        return report
    }

    static func label(_ transport: RPCTransport) -> String {
        transport == .local ? "unix" : transport.rawValue
    }

    /// CollectorClient.report(event): version 1 REPORT_EVENT, one clnt_call per event.
    private static func swiftScenario(_ endpoint: RPCEndpoint, _ options: Options) throws(LatencyError) -> InterleavedScenario {
        let caller = EventCaller(client: CollectorClient(endpoint: endpoint, timeout: options.callTimeout, connectTimeout: .seconds(2)))
        do {
            try caller.call(count: options.warmup, record: false)
        } catch {
            throw LatencyError("transport \(label(endpoint.transport)) is not available at \(endpoint): \(error)")
        }
        return InterleavedScenario(name: "swift-rpc-\(label(endpoint.transport))", transport: label(endpoint.transport),
                                   units: options.count, rateUnit: "calls/s") { (units) throws(LatencyError) in
            try caller.call(count: units, record: true)
        }
    }

    private static func rawScenario(_ transport: RPCTransport, _ client: PingPongClient, count: Int) -> InterleavedScenario {
        InterleavedScenario(name: "raw-\(label(transport))", transport: label(transport), units: count, rateUnit: "calls/s") { (units) throws(LatencyError) in
            for _ in 0..<100 { try client.roundTrip() }  // warm the path again after the other scenarios
            var latency = LatencyDistribution()
            let start = Timestamps.monotonic()
            for _ in 0..<units {
                let before = Timestamps.monotonic()
                try client.roundTrip()
                latency.record(nanoseconds: Timestamps.monotonic() - before)
            }
            return RoundOutcome(latency: latency, calls: UInt64(units), events: UInt64(units), seconds: Time.seconds(since: start))
        }
    }

    /// Adds "vs C" ratios to every scenario that has a C client on its transport.
    static func compareWithC(_ results: inout [ScenarioResult]) {
        for index in results.indices where !results[index].name.hasPrefix("c-") {
            guard let c = results.first(where: { $0.name == "c-rpc-\(results[index].transport)" }),
                  c.summary.p50 > 0, c.rate > 0 else { continue }
            results[index].comparedToC = .init(p50Ratio: results[index].summary.p50 / c.summary.p50,
                                               rateRatio: results[index].rate / c.rate)
        }
    }
}

/// One Swift client sending the benchmark event, one version 1 call each, timing each call.
final class EventCaller {
    private let client: CollectorClient
    private var index: UInt64 = 0

    init(client: CollectorClient) {
        self.client = client
    }

    @discardableResult
    func call(count: Int, record: Bool) throws(LatencyError) -> RoundOutcome {
        var latency = LatencyDistribution()
        let start = Timestamps.monotonic()
        for _ in 0..<count {
            let event = BenchmarkEvent.make(index: index, sequence: index + 1)
            index += 1
            let before = Timestamps.monotonic()
            let ack: Ack
            do {
                ack = try client.report(event)
            } catch {
                throw LatencyError("REPORT_EVENT to \(client.endpoint) failed: \(error)")
            }
            let after = Timestamps.monotonic()
            guard ack.status == .ok else {
                throw LatencyError("collector at \(client.endpoint) answered \(ack.status) to REPORT_EVENT")
            }
            if record { latency.record(nanoseconds: after - before) }
        }
        return RoundOutcome(latency: latency, calls: UInt64(count), events: UInt64(count), seconds: Time.seconds(since: start))
    }
}

extension TransportsBenchmark {
    /// `authrelay latency calls` (hidden): `count` version 1 REPORT_EVENT calls of
    /// the benchmark event, one CollectorClient.report(event) each, and nothing
    /// else per call (no clock, no histogram): the Swift half of the client
    /// instruction counts in Benchmarks/instructions.sh, whose other half is
    /// legacy-reporter's one stub call per event. Returns the calls answered OK.
    package static func calls(to endpoint: RPCEndpoint, count: Int, timeout: Duration = .seconds(5)) throws(LatencyError) -> Int {
        let client = CollectorClient(endpoint: endpoint, timeout: timeout, connectTimeout: .seconds(2))
        for index in 0..<UInt64(count) {
            let event = BenchmarkEvent.make(index: index, sequence: index + 1)
            let ack: Ack
            do {
                ack = try client.report(event)
            } catch {
                throw LatencyError("REPORT_EVENT to \(endpoint) failed: \(error)")
            }
            guard ack.status == .ok else {
                throw LatencyError("collector at \(endpoint) answered \(ack.status) to REPORT_EVENT")
            }
        }
        return count
    }
}
