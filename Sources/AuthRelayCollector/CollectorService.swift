import AuthRelayProtocol
import Logging
import ONCRPC

/// The collector: version 1 REPORT_EVENT, version 2 REPORT_BATCH and GET_STATS
/// (ReportHandlers.swift), de-duplication and loss records (`CollectorCore`),
/// the sink, and the state that survives a restart (`StateStore`).
///
/// Runs on the RPC server's thread; not thread-safe.
public final class CollectorService {
    public let configuration: CollectorConfiguration
    /// The collector's own counters (GET_STATS adds the server's).
    public var statistics: CollectorStats { core.statistics }
    /// The server's view, set once the server exists: open connections and calls it refused.
    public var serverCounters: () -> (connections: Int, rejectedCalls: UInt64) = { (0, 0) }

    /// The largest call a valid reporter can send: RPC header with the largest
    /// credential and verifier (2 x 408 + 24), the batch header (156) and 512
    /// events of the largest size (52 fixed + 3 x 4 length words + 4096 + 4096 + 64).
    public static let maxRecordSize = 840 + 156 + Event.maxBatchEvents * (64 + 4096 + 4096 + 64)

    private let logger: Logger
    private let state: StateStore
    private let sink: any EventSink
    private let core: CollectorCore
    /// The RPC procedures, made at the first `programs`.
    private lazy var handlers = ReportHandlers(core: core, injectedDelay: configuration.injectedDelay) { [unowned self] in
        if core.eventsSinceCheckpoint >= configuration.checkpointEveryEvents { checkpoint() }
    }

    /// Takes the data directory, opens the sink, and recovers the highest
    /// sequences from the checkpoint and the output written after it.
    public init(configuration: CollectorConfiguration, logger: Logger) throws(CollectorStartError) {
        self.configuration = configuration
        self.logger = logger
        state = try StateStore(directory: configuration.dataDirectory)
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
        core = CollectorCore(sink: sink, allowedUIDs: configuration.allowedUIDs, maxAgents: configuration.maxAgents, logger: logger)
        try recover()
        (sink as? JSONLinesSink)?.onRotate = { [unowned self] in self.checkpoint() }
        checkpoint()
    }

    /// Version 1 and version 2 of the configured program.
    public var programs: [RPCProgram] {
        handlers.programs(configuration.program) { [unowned self] in currentStatistics }
    }

    /// GET_STATS: the collector's counters with the server's connections and refusals.
    public var currentStatistics: CollectorStats {
        var current = core.statistics
        let server = serverCounters()
        current.connections = UInt32(clamping: server.connections)
        current.rejected += server.rejectedCalls
        current.agents = UInt32(clamping: core.agentCount)
        return current
    }

    /// Periodic work (the server calls it every tick): pending syncs and the checkpoint.
    public func tick() {
        sink.tick()
        if core.checkpointNeeded { checkpoint() }
    }

    /// Flushes the sink, writes the last checkpoint and releases the data directory.
    public func close() {
        checkpoint()
        sink.close()
    }

    // MARK: State

    /// Writes the highest sequences with the sink position they describe. The
    /// sink is synced first (per its policy) so the checkpoint never names data
    /// that a power failure could take back.
    private func checkpoint() {
        do {
            try sink.sync()
            let agents = core.snapshot.map {
                StateStore.Checkpoint.Agent(agent_id: $0.key.agentID, boot_id: $0.key.bootID, highest_seq: $0.highest,
                                            drop_report_before_seq: $0.dropReport?.beforeSequence,
                                            drop_report_count: $0.dropReport?.count)
            }
            try state.save(StateStore.Checkpoint(position: sink.position, agents: agents), durable: configuration.fsync != .never)
            core.checkpointWritten()
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
            core.restore(AgentKey(agentID: agent.agent_id, bootID: agent.boot_id), highest: agent.highest_seq, dropReport: report)
        }
        var replayedBytes: Int64 = 0
        if let path = (sink as? JSONLinesSink)?.path {
            do {
                replayedBytes = try SinkReplay.replay(files: JSONLinesSink.files(of: path), from: checkpoint?.position, logger: logger) { line in
                    if let handled = line.handled { core.restore(handled.key, highest: handled.highest, dropReport: handled.dropReport) }
                }
            } catch {
                throw .output(error)
            }
        }
        logger.info("state recovered", metadata: [
            "agents": "\(core.agentCount)", "checkpoint": "\(checkpoint != nil)", "output bytes read": "\(replayedBytes)",
        ])
    }
}
