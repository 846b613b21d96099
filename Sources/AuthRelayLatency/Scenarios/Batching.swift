import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// `authrelay latency batching`: events/s and per-call latency against batch
/// size (version 2 REPORT_BATCH) and for classic one-way batched calls (NULL
/// result routine, zero timeout, flushed by a normal call), every round checked
/// against the collector's own count (GET_STATS).
package enum BatchingBenchmark {
    package struct Options: Sendable {
        /// Events per scenario (over all rounds).
        package var events = 200_000
        package var batchSizes = [1, 8, 64, 512]
        package var rounds = 5
        package var transports: [RPCTransport] = [.tcp, .local]
        /// One-way calls between two flushes.
        package var flushEvery = 512
        package var collectors: [RPCEndpoint] = []
        /// The collector to start; nil: `CollectorProgram.standard(in:)`.
        package var program: CollectorProgram?
        package var callTimeout: Duration = .seconds(5)
        /// Where grpc-collector and grpc-reporter are; nil: no gRPC rows (--no-grpc).
        package var grpc: GRPCPeers.Lookup?
        package var quick = false

        package init() {}

        package static var quick: Options {
            var options = Options()
            options.events = 8_192
            options.rounds = 2
            options.quick = true
            return options
        }
    }

    package static func run(_ options: Options, executables: Executables, progress: Progress) throws(LatencyError) -> LatencyReport {
        var report = LatencyReport(subcommand: "batching", quick: options.quick)
        if options.transports.contains(.udp) || options.collectors.contains(where: { $0.transport == .udp }) {
            throw LatencyError("batching runs over stream transports (tcp, unix): a batch of 512 events does not fit a UDP datagram, and one-way calls need a stream")
        }
        if let bad = options.batchSizes.first(where: { !(1...Event.maxBatchEvents).contains($0) }) {
            throw LatencyError("batch size \(bad) is outside 1...\(Event.maxBatchEvents), the protocol's bound")
        }
        var collector: CollectorSupervisor?
        defer { collector?.stop() }
        let (started, endpoints, note) = try CollectorSupervisor.startOrUse(
            options.collectors, program: options.program, transports: options.transports, executables: executables)
        collector = started
        report.notes.append(note)

        var scenarios: [InterleavedScenario] = []
        for endpoint in endpoints {
            let counter = try CollectorCounter(endpoint: endpoint, timeout: options.callTimeout)
            let transport = TransportsBenchmark.label(endpoint.transport)
            for size in options.batchSizes {
                let caller = BatchCaller(endpoint: endpoint, batchSize: size, totalEvents: options.events,
                                         timeout: options.callTimeout, counter: counter)
                try caller.warmUp()
                scenarios.append(InterleavedScenario(
                    name: "batch-\(size)-\(transport)", transport: transport, units: (options.events + size - 1) / size,
                    rateUnit: "events/s") { (calls) throws(LatencyError) in try caller.round(calls: calls) })
            }
            let oneWay = OneWayCaller(endpoint: endpoint, flushEvery: options.flushEvery, timeout: options.callTimeout, counter: counter)
            try oneWay.warmUp()
            scenarios.append(InterleavedScenario(
                name: "oneway-\(transport)", transport: transport, units: options.events,
                rateUnit: "events/s") { (calls) throws(LatencyError) in try oneWay.round(calls: calls) })
        }
        let directory = try TemporaryDirectory(prefix: "authrelay-latency-batching")
        let transports = [RPCTransport.tcp, .local].filter { transport in endpoints.contains { $0.transport == transport } }
        var grpcCollectors: [String: GRPCCollector] = [:]
        defer { grpcCollectors.values.forEach { $0.stop() } }
        if let grpc = options.grpc {
            if let peers = grpc.peers {
                for transport in transports {
                    for size in options.batchSizes {
                        let name = "grpc-stream-\(size)-\(TransportsBenchmark.label(transport))"
                        let collector = try GRPCCollector(peers, directory: directory, tag: name)
                        grpcCollectors[name] = collector
                        scenarios.append(grpcStreamScenario(name, peers, collector, transport, size, options, directory))
                    }
                }
                report.notes.append("grpc-stream: grpc-reporter --mode stream (one ReportBatches stream, a BatchAck per batch) run per round, one grpc-collector per row (its own count, read at its exit, is the collector column), from \(peers.directory); \(GRPCReporter.percentileNote)")
            } else {
                report.notes.append(grpc.missingNote)
            }
        }
        let link = try SharedMemoryLink(variant: "futex", spin: .zero, directory: directory)
        defer { link.stop() }
        for size in options.batchSizes {
            scenarios.append(sharedMemoryScenario(link, size, options))
        }
        report.notes.append(SharedMemoryLink.note + "; batching runs the futex variant, the collector column is the consumer's own count")

        report.results = try Interleaver.run(scenarios, rounds: options.rounds, progress: progress)
        report.notes.append(Interleaver.summaryNote)
        for index in report.results.indices {
            guard let collector = grpcCollectors.removeValue(forKey: report.results[index].name) else { continue }
            report.results[index].collectorEvents = collector.stop()
        }
        for result in report.results where result.collectorEvents != result.events {
            report.errors.append("\(result.name): sent \(result.events ?? 0) events, the collector counted \(result.collectorEvents.map { String($0) } ?? "none")")
        }
        report.notes.append("\(options.events) events per scenario in \(options.rounds) interleaved rounds; count = calls, rate = events/s; each round checked against the collector's GET_STATS")
        report.notes.append("oneway: version 1 calls with no reply (NULL result routine, zero timeout), flushed by a NULL call every \(options.flushEvery) events; latency = the buffered call, flush time is in the rate")
        return report
    }

    /// `batch` events a hand-off through the shared-memory ring, the events shared out over the rounds.
    private static func sharedMemoryScenario(_ link: SharedMemoryLink, _ size: Int, _ options: Options) -> InterleavedScenario {
        var sent = 0
        return InterleavedScenario(name: "shm-batch-\(size)", transport: "shm", units: (options.events + size - 1) / size,
                                   rateUnit: "events/s") { (calls) throws(LatencyError) in
            let outcome = try link.round(calls: calls, batch: size, eventLimit: options.events - sent)
            sent += Int(outcome.events)
            return outcome
        }
    }

    /// grpc-reporter --mode stream --batch `size`, one run per round, the events shared out over the rounds.
    private static func grpcStreamScenario(_ name: String, _ peers: GRPCPeers, _ collector: GRPCCollector, _ transport: RPCTransport,
                                           _ size: Int, _ options: Options, _ directory: TemporaryDirectory) -> InterleavedScenario {
        let reporter = GRPCReporter(peers, directory: directory, target: collector.target(transport))
        var sent = 0
        return InterleavedScenario(name: name, transport: TransportsBenchmark.label(transport), units: (options.events + size - 1) / size,
                                   rateUnit: "events/s") { (calls) throws(LatencyError) in
            let events = min(calls * size, options.events - sent)
            guard events > 0 else { return RoundOutcome(latency: LatencyDistribution(), calls: 0, events: 0, seconds: 0) }
            let outcome = try reporter.round(events: events, batch: size)
            sent += events
            return outcome
        }.percentiles(from: GRPCReporter.percentileSource)
    }
}

/// The collector's own count of events received (GET_STATS, version 2).
final class CollectorCounter {
    private let client: CollectorClient

    init(endpoint: RPCEndpoint, timeout: Duration) throws(LatencyError) {
        client = CollectorClient(endpoint: endpoint, timeout: timeout)
        _ = try events()
    }

    func events() throws(LatencyError) -> UInt64 {
        do {
            return try client.stats().events
        } catch {
            throw LatencyError("cannot read the collector's count at \(client.endpoint) (GET_STATS, version 2): \(error)")
        }
    }
}

/// Version 2 REPORT_BATCH calls of `batchSize` events, numbered on from 1 under
/// one boot id, until `totalEvents` are sent (the last call may be partial).
final class BatchCaller {
    private let client: CollectorClient
    private let batchSize: Int
    private let totalEvents: Int
    private let counter: CollectorCounter
    private let bootID = EventSender.randomBootID()
    private var events: [Event]
    private var sent = 0

    init(endpoint: RPCEndpoint, batchSize: Int, totalEvents: Int, timeout: Duration, counter: CollectorCounter) {
        client = CollectorClient(endpoint: endpoint, timeout: timeout)
        self.batchSize = batchSize
        self.totalEvents = totalEvents
        self.counter = counter
        events = (0..<UInt64(batchSize)).map { BenchmarkEvent.make(index: $0, sequence: $0 + 1) }
    }

    /// A few unrecorded batches under another boot id: connect and page in before round 1.
    func warmUp() throws(LatencyError) {
        let warmID = EventSender.randomBootID()
        for call in 0..<UInt64(10) {
            _ = try send(firstSequence: call * UInt64(batchSize) + 1, count: batchSize, bootID: warmID)
        }
    }

    func round(calls: Int) throws(LatencyError) -> RoundOutcome {
        let before = try counter.events()
        let timed = try TimedBatches.run(calls: calls, batch: batchSize, eventLimit: totalEvents - sent) { (count) throws(LatencyError) in
            defer { sent += count }
            return try send(firstSequence: UInt64(sent + 1), count: count, bootID: bootID)
        }
        let counted = try counter.events() - before
        return RoundOutcome(latency: timed.latency, calls: timed.latency.count, events: UInt64(timed.events), seconds: timed.seconds,
                            collectorEvents: counted)
    }

    /// One call; returns its latency in ns.
    private func send(firstSequence: UInt64, count: Int, bootID: String) throws(LatencyError) -> UInt64 {
        for offset in 0..<count { events[offset].sequence = firstSequence + UInt64(offset) }
        let batch = EventBatch(
            header: BatchHeader(agentID: "authrelay-latency", bootID: bootID, firstSequence: firstSequence),
            events: count == batchSize ? events : Array(events.prefix(count)))
        let before = Timestamps.monotonic()
        let ack: BatchAck
        do {
            ack = try client.report(batch)
        } catch {
            throw LatencyError("REPORT_BATCH of \(count) events to \(client.endpoint) failed: \(error)")
        }
        let elapsed = Timestamps.monotonic() - before
        guard ack.status == .ok else {
            throw LatencyError("collector at \(client.endpoint) answered \(ack.status) to a batch of \(count)")
        }
        return elapsed
    }
}

/// Classic one-way batching: version 1 REPORT_EVENT with a NULL result routine
/// and a zero timeout (libtirpc buffers it), flushed by a NULL call.
final class OneWayCaller {
    private let client: CollectorClient
    private let flushEvery: Int
    private let counter: CollectorCounter
    private var events: [Event]
    private var sent: UInt64 = 0

    init(endpoint: RPCEndpoint, flushEvery: Int, timeout: Duration, counter: CollectorCounter) {
        client = CollectorClient(endpoint: endpoint, timeout: timeout)
        self.flushEvery = max(1, flushEvery)
        self.counter = counter
        events = (0..<UInt64(512)).map { BenchmarkEvent.make(index: $0, sequence: $0 + 1) }
    }

    func warmUp() throws(LatencyError) {
        _ = try send(count: 1024, record: false)
    }

    func round(calls: Int) throws(LatencyError) -> RoundOutcome {
        let before = try counter.events()
        let (latency, seconds) = try send(count: calls, record: true)
        let counted = try counter.events() - before
        return RoundOutcome(latency: latency, calls: UInt64(calls), events: UInt64(calls), seconds: seconds, collectorEvents: counted)
    }

    private func send(count: Int, record: Bool) throws(LatencyError) -> (LatencyDistribution, Double) {
        var latency = LatencyDistribution()
        let start = Timestamps.monotonic()
        do {
            for call in 0..<count {
                let slot = Int(sent % UInt64(events.count))
                sent += 1
                events[slot].sequence = sent
                let before = Timestamps.monotonic()
                try client.reportOneWay(events[slot])
                if record { latency.record(nanoseconds: Timestamps.monotonic() - before) }
                if (call + 1) % flushEvery == 0 { try client.flushOneWay() }
            }
            try client.flushOneWay()
        } catch {
            throw LatencyError("one-way REPORT_EVENT to \(client.endpoint) failed: \(error)")
        }
        return (latency, Time.seconds(since: start))
    }
}
