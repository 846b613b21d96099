import AuthRelayProtocol
import CAuthRelayRPC
import Glibc
import Logging
import ONCRPC

/// The collector: version 1 REPORT_EVENT, version 2 REPORT_BATCH and GET_STATS,
/// de-duplication per (agent id, boot id), loss records, and the sink.
///
/// Runs on the RPC server's thread; not thread-safe.
public final class CollectorService {
    public let configuration: CollectorConfiguration
    /// The collector's own counters (GET_STATS adds the server's).
    public private(set) var statistics = CollectorStats()
    /// The server's view, set once the server exists: open connections and calls it refused.
    public var serverCounters: () -> (connections: Int, rejectedCalls: UInt64) = { (0, 0) }

    /// The largest call a valid reporter can send: RPC header with the largest
    /// credential and verifier (2 x 408 + 24), the batch header (156) and 512
    /// events of the largest size (52 fixed + 3 x 4 length words + 4096 + 4096 + 64).
    public static let maxRecordSize = 840 + 156 + Int(AR_BATCH_MAX) * (64 + 4096 + 4096 + 64)

    private let logger: Logger
    private let state: StateStore
    private let sink: EventSink
    private var sequences: SequenceTracker
    private var checkpointNeeded = false
    private var eventsSinceCheckpoint: UInt64 = 0

    /// Takes the data directory, opens the sink, and recovers the highest
    /// sequences from the checkpoint and the output written after it.
    public init(configuration: CollectorConfiguration, logger: Logger) throws(CollectorStartError) {
        self.configuration = configuration
        self.logger = logger
        state = try StateStore(directory: configuration.dataDirectory)
        sequences = SequenceTracker(capacity: configuration.maxAgents)
        do {
            switch configuration.sink {
            case .null:
                sink = NullSink()
            case .jsonLines(let path):
                sink = try JSONLinesSink(path: path == "-" ? nil : path, policy: configuration.fsync,
                                         rotateBytes: configuration.rotateBytes, keepFiles: configuration.keepFiles, logger: logger)
            }
        } catch {
            throw .output(error)
        }
        statistics.startedNanoseconds = Timestamps.realtime()
        try recover()
        (sink as? JSONLinesSink)?.onRotate = { [unowned self] in self.checkpoint() }
        checkpoint()
    }

    /// Version 1 and version 2 of the configured program.
    public var programs: [RPCProgram] {
        [
            RPCProgram(program: configuration.program, version: 1, procedures: [
                .null(),
                RPCProcedure(AuthRelayProgram.reportEventV1, argument: AuthRelayProgram.event, ar_event.self,
                             result: AuthRelayProgram.ack, ar_ack.self) { [unowned self] in reportEvent($0, $1, $2) },
            ]),
            RPCProgram(program: configuration.program, version: 2, procedures: [
                .null(),
                RPCProcedure(AuthRelayProgram.reportBatchV2, argument: AuthRelayProgram.eventBatch, ar_event_batch.self,
                             result: AuthRelayProgram.batchAck, ar_batch_ack.self,
                             incremental: { BatchDecoder() }) { [unowned self] in reportBatch($0, $1, $2) },
                RPCProcedure(AuthRelayProgram.getStatsV2, result: AuthRelayProgram.stats, ar_stats.self) { [unowned self] in
                    $1.pointee = currentStatistics.wire
                    return .result
                },
            ]),
        ]
    }

    /// GET_STATS: the collector's counters with the server's connections and refusals.
    public var currentStatistics: CollectorStats {
        var current = statistics
        let server = serverCounters()
        current.connections = UInt32(clamping: server.connections)
        current.rejected += server.rejectedCalls
        current.agents = UInt32(clamping: sequences.count)
        return current
    }

    /// Periodic work (the server calls it every tick): pending syncs and the checkpoint.
    public func tick() {
        sink.tick()
        if checkpointNeeded { checkpoint() }
    }

    /// Flushes the sink, writes the last checkpoint and releases the data directory.
    public func close() {
        checkpoint()
        sink.close()
    }

    // MARK: Handlers

    private func reportBatch(_ request: RPCRequest, _ batch: UnsafePointer<ar_event_batch>, _ ack: UnsafeMutablePointer<ar_batch_ack>) -> RPCReply {
        injectDelay()
        let count = Int(batch.pointee.events.events_len)
        statistics.events += UInt64(count)
        guard isAuthorized(request) else {
            statistics.rejected += 1
            ack.pointee.status = AR_STATUS_UNAUTHORIZED
            return .result
        }
        let header = batch.pointee.header
        let first = UInt64(header.first_seq)
        // The highest sequence this batch accounts for; a batch with no events
        // (sent only to report drops) accounts for the ones before first_seq.
        let (last, overflow) = (first &- 1).addingReportingOverflow(UInt64(count))
        guard first > 0, !overflow, Self.isContiguous(batch.pointee.events.events_val, count: count, from: first) else {
            statistics.rejected += 1
            ack.pointee.status = AR_STATUS_REJECTED
            return .result
        }
        let events = batch.pointee.events.events_val
        let key = AgentKey(agentID: String(xdr: header.agent_id), bootID: String(xdr: header.boot_id))
        let highest = sequences.highest(key)
        guard count == 0 || last > highest else {
            statistics.batches += 1
            statistics.duplicates += UInt64(count)
            ack.pointee = BatchAck(status: .ok, accepted: 0, duplicates: UInt32(count), highestSequence: highest).wire
            return .result
        }
        let duplicates = count > 0 && first <= highest ? Int(highest - first + 1) : 0
        var losses: [LossRecord] = []
        var dropReport: SequenceTracker.DropReport?
        if first > highest {
            // Counted once: a retry of this batch starts at or below the new highest,
            // or (with no events) repeats the drop report recorded last.
            if first > highest + 1 { losses.append(.sequenceGap(first: highest + 1, last: first - 1)) }
            let report = SequenceTracker.DropReport(beforeSequence: first, count: UInt64(header.dropped))
            if header.dropped > 0, sequences.lastDropReport(key) != report {
                losses.append(.agentDropped(count: UInt64(header.dropped), beforeSequence: first))
                dropReport = report
            }
        }
        guard count > 0 || !losses.isEmpty else {
            statistics.batches += 1
            ack.pointee = BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: highest).wire
            return .result
        }
        let context = ReportContext(agentID: header.agent_id, bootID: header.boot_id,
                                    receivedNanoseconds: Timestamps.realtime(), peer: request.peer)
        do {
            try sink.write(events: UnsafeBufferPointer(start: events.map { $0 + duplicates }, count: count - duplicates),
                           losses: losses, context: context)
        } catch {
            statistics.sinkErrors += 1
            logger.error("batch not stored: \(error)", metadata: ["agent_id": "\(key.agentID)", "first_seq": "\(first)"])
            ack.pointee = BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: highest).wire
            return .result
        }
        sequences.record(key, highest: max(last, highest), dropReport: dropReport)
        let written = UInt64(count - duplicates)
        statistics.batches += 1
        statistics.written += written
        statistics.duplicates += UInt64(duplicates)
        for loss in losses {
            switch loss {
            case .agentDropped(let dropped, _): statistics.reportedDropped += dropped
            case .sequenceGap(let gapFirst, let gapLast): statistics.gapEvents += gapLast - gapFirst + 1
            }
        }
        if !losses.isEmpty {
            logger.notice("events lost", metadata: ["agent_id": "\(key.agentID)", "boot_id": "\(key.bootID)", "losses": "\(losses)"])
        }
        noteWritten(written)
        ack.pointee = BatchAck(status: .ok, accepted: UInt32(written), duplicates: UInt32(duplicates),
                               highestSequence: max(last, highest)).wire
        return .result
    }

    private func reportEvent(_ request: RPCRequest, _ event: UnsafePointer<ar_event>, _ ack: UnsafeMutablePointer<ar_ack>) -> RPCReply {
        injectDelay()
        statistics.events += 1
        statistics.legacyEvents += 1
        ack.pointee.seq = event.pointee.seq
        guard isAuthorized(request) else {
            statistics.rejected += 1
            ack.pointee.status = AR_STATUS_UNAUTHORIZED
            return .result
        }
        // Version 1 has no agent or boot id: nothing to de-duplicate by; written as "legacy".
        let context = ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: Timestamps.realtime(), peer: request.peer)
        do {
            try sink.writeLegacy(event, context: context)
        } catch {
            statistics.sinkErrors += 1
            logger.error("event not stored: \(error)")
            ack.pointee.status = AR_STATUS_SINK_ERROR
            return .result
        }
        statistics.written += 1
        ack.pointee.status = AR_STATUS_OK
        return .result
    }

    /// Without --allow-uid anyone who reaches a listener may report. With it,
    /// only unix socket callers whose kernel-reported uid is listed: an AUTH_SYS
    /// uid over TCP or UDP is only the caller's claim.
    private func isAuthorized(_ request: RPCRequest) -> Bool {
        guard !configuration.allowedUIDs.isEmpty else { return true }
        guard let peer = request.peer else { return false }
        return configuration.allowedUIDs.contains(peer.uid)
    }

    /// The protocol says events follow first_seq by one.
    private static func isContiguous(_ events: UnsafePointer<ar_event>?, count: Int, from first: UInt64) -> Bool {
        guard count > 0 else { return true }
        guard let events else { return false }
        var expected = first
        for index in 0..<count {
            guard UInt64(events[index].seq) == expected else { return false }
            expected &+= 1
        }
        return true
    }

    // MARK: State

    private func noteWritten(_ events: UInt64) {
        checkpointNeeded = true
        eventsSinceCheckpoint += events
        if eventsSinceCheckpoint >= configuration.checkpointEveryEvents { checkpoint() }
    }

    /// Writes the highest sequences with the sink position they describe. The
    /// sink is synced first (per its policy) so the checkpoint never names data
    /// that a power failure could take back.
    private func checkpoint() {
        do {
            try sink.sync()
            let agents = sequences.snapshot.map {
                StateStore.Checkpoint.Agent(agent_id: $0.key.agentID, boot_id: $0.key.bootID, highest_seq: $0.highest,
                                            drop_report_before_seq: $0.dropReport?.beforeSequence,
                                            drop_report_count: $0.dropReport?.count)
            }
            try state.save(StateStore.Checkpoint(position: sink.position, agents: agents), durable: configuration.fsync != .never)
            checkpointNeeded = false
            eventsSinceCheckpoint = 0
        } catch {
            logger.error("checkpoint not written: \(error)")
        }
    }

    private func recover() throws(CollectorStartError) {
        let checkpoint = try state.load()
        for agent in checkpoint?.agents ?? [] {
            let report = agent.drop_report_before_seq.flatMap { before in
                agent.drop_report_count.map { SequenceTracker.DropReport(beforeSequence: before, count: $0) }
            }
            sequences.record(AgentKey(agentID: agent.agent_id, bootID: agent.boot_id), highest: agent.highest_seq, dropReport: report)
        }
        var replayedBytes: Int64 = 0
        if let path = (sink as? JSONLinesSink)?.path {
            do {
                replayedBytes = try SinkReplay.replay(files: JSONLinesSink.files(of: path), from: checkpoint?.position, logger: logger) { line in
                    if let (key, sequence) = line.handledKey { sequences.record(key, highest: sequence, dropReport: line.dropReport) }
                }
            } catch {
                throw .output(error)
            }
        }
        logger.info("state recovered", metadata: [
            "agents": "\(sequences.count)", "checkpoint": "\(checkpoint != nil)", "output bytes read": "\(replayedBytes)",
        ])
    }

    private func injectDelay() {
        guard let delay = configuration.injectedDelay else { return }
        let (seconds, attoseconds) = delay.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
