import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// End-to-end events/s into the collector: AuthRelay's EventSender beside the
/// plain C client (`legacy-reporter -B 512 -D S`: one synchronous
/// AR2_REPORT_BATCH of 512 events per call, through the rpcgen stubs), against
/// the same collector, in interleaved rounds (A, B, then B, A, ...).
///
/// Both count acknowledged events per wall time from the first event to the
/// last acknowledgement, connected before the clock starts. The Swift side: one
/// producer thread submits the round's events flat out into a queue that holds
/// them all (capacity and byte bound set for it), so nothing is dropped for
/// lack of room and the sender thread is the bottleneck; the clock stops when
/// the sender's acknowledged count reaches the submitted one (read every
/// 0.5 ms). The events are built before the clock starts, one distinct event
/// per submit (an agent's events share no storage); the C client fills its
/// events inside its timing. Every round is checked against the collector's
/// own GET_STATS count.
enum SenderThroughput {
    /// What one round of one client did.
    private struct Round {
        var acknowledged: UInt64
        var dropped: UInt64
        var seconds: Double
        var collectorEvents: UInt64
        var collectorBatches: UInt64
        /// EventSender: how long the producer took to submit the round's events.
        var submitSeconds: Double?
        var rate: Double { seconds > 0 ? Double(acknowledged) / seconds : 0 }
    }

    private enum Client: CaseIterable {
        case sender, senderSpool, c

        func name(_ transport: String) -> String {
            switch self {
            case .sender: "sender-\(transport)"
            case .senderSpool: "sender-\(transport)-spool"
            case .c: "c-batch512-\(transport)"
            }
        }
    }

    /// `events`: one per submit of a round (`options.events` of them).
    static func run(_ options: SenderBenchmark.Options, collector: SenderCollector, events: [Event],
                    executables: Executables, progress: Progress) throws(LatencyError) -> (results: [ScenarioResult], notes: [String], errors: [String]) {
        var notes: [String] = []
        var errors: [String] = []
        var clients = Client.allCases.filter { $0 != .senderSpool || options.spoolModes.contains(true) }
        if !options.spoolModes.contains(false) { clients.removeAll { $0 == .sender } }
        if !executables.has(LegacyReporter.name) {
            clients.removeAll { $0 == .c }
            notes.append("C client skipped: \(executables.path(LegacyReporter.name)) not found (build the legacy-reporter product)")
        }
        let directory = try TemporaryDirectory(prefix: "authrelay-latency-sender")
        var results: [ScenarioResult] = []
        for transport in collector.transports(options.transports) {
            let label = TransportsBenchmark.label(transport)
            let endpoint = try collector.endpoint(transport)
            let stats = try CollectorStatsReader(endpoint: endpoint)
            var rounds = [[Round]](repeating: [], count: clients.count)
            for round in 0..<options.rounds {
                for offset in clients.indices {
                    let index = (round + offset) % clients.count
                    progress.update("end-to-end round \(round + 1)/\(options.rounds), \(clients[index].name(label))")
                    switch clients[index] {
                    case .sender:
                        rounds[index].append(try senderRound(endpoint, events: events, stats: stats, spool: false))
                    case .senderSpool:
                        rounds[index].append(try senderRound(endpoint, events: events, stats: stats, spool: true))
                    case .c:
                        rounds[index].append(try cRound(endpoint, length: options.cRoundLength, executables: executables,
                                                        directory: directory, stats: stats, run: round))
                    }
                }
            }
            var transportResults = clients.indices.map { result(clients[$0].name(label), label, rounds[$0]) }
            for (index, client) in clients.enumerated() {
                for round in rounds[index] where round.collectorEvents != round.acknowledged {
                    errors.append("\(client.name(label)): \(round.acknowledged) events acknowledged, the collector counted \(round.collectorEvents)")
                }
            }
            if let c = clients.firstIndex(of: .c) {
                let cRates = rounds[c].map(\.rate)
                for index in clients.indices where index != c {
                    let senderRates = rounds[index].map(\.rate)
                    let ratio = median(senderRates) / max(median(cRates), 1)
                    transportResults[index].comparedToC = .init(p50Ratio: 0, rateRatio: ratio)
                    let paired = zip(senderRates, cRates).map { fixed($0 / max($1, 1), 2) }.joined(separator: ", ")
                    transportResults[index].notes.append("rate_vs_c: median events/s over the C client's median; round by round: \(paired)")
                }
            }
            results += transportResults
        }
        notes.append("end-to-end: \(options.rounds) interleaved rounds per client and transport; EventSender: \(options.events) events per round from one producer flat out, queue capacity \(options.events + 1) (+1 for the warm-up event), -spool: through the spool (written, then sent from memory or read back); C: legacy-reporter -B 512 -D \(fixed(Time.seconds(options.cRoundLength), 3)); rate = median of the rounds' acknowledged events/s; count = the collector's batches")
        notes.append("end-to-end rows measure throughput only: their percentile columns and p50_vs_c are 0 (not measured)")
        return (results, notes, errors)
    }

    private static func result(_ name: String, _ transport: String, _ rounds: [Round]) -> ScenarioResult {
        let zero = PercentileSummary(p50: 0, p90: 0, p99: 0, p999: 0, max: 0)
        var result = ScenarioResult(name: name, transport: transport, rateUnit: "events/s",
                                    count: rounds.reduce(0) { $0 + $1.collectorBatches },
                                    seconds: rounds.reduce(0) { $0 + $1.seconds }, summary: zero)
        result.rate = median(rounds.map(\.rate))
        result.events = rounds.reduce(0) { $0 + $1.acknowledged }
        result.collectorEvents = rounds.reduce(0) { $0 + $1.collectorEvents }
        let dropped = rounds.reduce(0) { $0 + $1.dropped }
        let perRound = rounds.map { TableWriter.grouped($0.rate) }.joined(separator: ", ")
        result.notes.append("events/s by round: \(perRound); dropped \(dropped)")
        let submitting = rounds.compactMap(\.submitSeconds)
        if !submitting.isEmpty {
            let share = median(zip(submitting, rounds.map(\.seconds)).map { $0 / $1 })
            result.notes.append("the producer's flat-out submits took a median \(fixed(median(submitting) * 1000, 1)) ms of a round (\(fixed(share * 100, 0))%); the sender thread, the collector and the producer share 2 CPUs then")
        }
        return result
    }

    /// One EventSender round: connect, submit `events` flat out, wait for the last acknowledgement.
    private static func senderRound(_ endpoint: RPCEndpoint, events: [Event], stats: CollectorStatsReader,
                                    spool spooled: Bool) throws(LatencyError) -> Round {
        let spool = spooled ? try SenderBenchmark.spoolDirectory() : nil
        defer { if let spool { FileSystem.removeTree(spool) } }
        let sender = SenderBenchmark.makeSender(endpoint: endpoint, agentID: "authrelay-latency-throughput", spool: spool) { configuration in
            configuration.capacity = events.count + 1
            configuration.maxQueuedBytes = 1 << 40  // the capacity is the bound here
        }
        try SenderBenchmark.warmUp(sender, endpoint: endpoint)
        let before = try stats.read()
        let start = Timestamps.monotonic()
        for event in events {
            sender.submit(event)
        }
        let submitSeconds = Time.seconds(since: start)
        let target = UInt64(events.count) + 1  // and the warm-up event
        let deadline = start + 300_000_000_000
        while true {
            let now = sender.stats
            if now.acknowledged + now.dropped + now.rejected >= target { break }
            if Timestamps.monotonic() > deadline {
                sender.close(drainTimeout: .zero)
                throw LatencyError("EventSender to \(endpoint): \(now.acknowledged - 1) of \(events.count) events acknowledged after 300 s (\(now.lastError ?? "no error"))")
            }
            SystemClock.sleep(.microseconds(500))
        }
        let seconds = Time.seconds(since: start)
        let report = sender.close(drainTimeout: .seconds(1))
        let after = try stats.read()
        return Round(acknowledged: report.stats.acknowledged - 1,
                     dropped: report.stats.dropped + report.stats.evicted + report.stats.rejected + report.undelivered,
                     seconds: seconds, collectorEvents: after.events - before.events,
                     collectorBatches: after.batches - before.batches, submitSeconds: submitSeconds)
    }

    /// One `legacy-reporter -B 512 -D S` run, read from its summary line.
    private static func cRound(_ endpoint: RPCEndpoint, length: Duration, executables: Executables, directory: TemporaryDirectory,
                               stats: CollectorStatsReader, run: Int) throws(LatencyError) -> Round {
        let arguments = LegacyReporter.addressArguments(endpoint) + ["-B", "512", "-D", fixed(Time.seconds(length), 3), "-T", "5000"]
        let before = try stats.read()
        let child = try ChildProcess(executables.path(LegacyReporter.name), arguments,
                                     outputIn: directory, tag: "reporter-\(endpoint.transport.rawValue)-\(run)")
        guard let ended = child.wait(timeout: length + .seconds(60)) else {
            child.stop()
            throw LatencyError("\(LegacyReporter.name) \(arguments.joined(separator: " ")) did not finish in time")
        }
        let fields = LegacyReporter.summaryFields(child.stdout)
        guard ended == .exited(0), let events = fields["events"].flatMap(UInt64.init), let elapsed = fields["seconds"].flatMap(Double.init) else {
            throw LatencyError("\(LegacyReporter.name) \(arguments.joined(separator: " ")) failed (\(ended)):\n\(child.stdout)\(child.stderr)")
        }
        let after = try stats.read()
        // Status 0: every call was acknowledged (without -k the first failure ends the run).
        return Round(acknowledged: events, dropped: 0, seconds: elapsed,
                     collectorEvents: after.events - before.events, collectorBatches: after.batches - before.batches)
    }
}

/// The collector's own counters (GET_STATS, version 2): events and batches received.
final class CollectorStatsReader {
    private let client: CollectorClient

    init(endpoint: RPCEndpoint) throws(LatencyError) {
        client = CollectorClient(endpoint: endpoint, timeout: .seconds(5))
        _ = try read()
    }

    func read() throws(LatencyError) -> CollectorStats {
        do {
            return try client.stats()
        } catch {
            throw LatencyError("cannot read the collector's counters at \(client.endpoint) (GET_STATS, version 2): \(error)")
        }
    }
}
