import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The collector: version 1 REPORT_EVENT, version 2 REPORT_BATCH and GET_STATS,
/// version 3 REPORT_BATCH, GET_STATS and REPORT_BOOT_END (ReportHandlers.swift),
/// de-duplication and loss records (`CollectorCore`), the sink, and the state
/// that survives a restart (`StateStore`).
///
/// The RPC server's thread decodes and hands reports to the writer thread
/// (`CollectorWriter`), which owns the sink and runs the core under its lock;
/// GET_STATS reads the core under that lock too. Start the writer with
/// `start()` before serving; `close()` answers what is queued and stops it.
public final class CollectorService {
    public let configuration: CollectorConfiguration
    /// The collector's own counters (GET_STATS adds the server's).
    public var statistics: CollectorStats { core.statistics }
    /// What the RPC server counts that GET_STATS reports.
    public struct ServerCounters: Sendable {
        public var connections = 0
        /// GARBAGE_ARGS: bad input, counted in `rejected`.
        public var undecodableArguments: UInt64 = 0
        /// A program, version or procedure not served (PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, ...).
        public var unservedCalls: UInt64 = 0
        /// Least recently active connections closed to make room for a new one.
        public var evictedConnections: UInt64 = 0

        public init() {}
    }

    /// The server's view, set once the server exists.
    public var serverCounters: () -> ServerCounters = { ServerCounters() }

    /// The largest call a valid reporter can send: RPC header with the largest
    /// credential and verifier (2 x 408 + 24), the largest batch header with
    /// its event count (version 3's: two ids 2 x 68, first_seq 8, 64 loss
    /// ranges 4 + 64 x 20, the status 80, the count 4: 1512; version 2's is 156)
    /// and 512 events of the largest size (52 fixed + 3 x 4 length words + 4096 + 4096 + 64).
    public static let maxRecordSize = 840 + 1512 + Event.maxBatchEvents * (64 + 4096 + 4096 + 64)

    private let logger: Logger
    private let state: StateStore
    private let sink: any EventSink
    private let core: CollectorCore
    /// The core's one lock: the writer holds it while it runs a group through
    /// the core (never across the sink's commit), GET_STATS to read the counters.
    private let coreLock: Locked<CollectorCore>
    private let writer: CollectorWriter
    /// The sink keeps its own de-duplication key (PostgreSQL's primary key):
    /// no checkpoint, no replay; the data directory holds only the lock.
    private let storeKeepsState: Bool
    /// The RPC procedures, made at the first `programs`.
    private lazy var handlers = ReportHandlers(core: core, injectedDelay: nil, writer: writer) {}

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
            case .postgres(let url, let passwordFile):
                sink = try PostgresSink(url: url, passwordFile: passwordFile, logger: logger)
            }
        } catch {
            throw .output(error)
        }
        storeKeepsState = sink is PostgresSink
        core = CollectorCore(sink: sink, allowedUIDs: configuration.allowedUIDs, maxAgents: configuration.maxAgents, logger: logger)
        core.gapsComputedByStore = storeKeepsState
        coreLock = Locked(core)
        writer = CollectorWriter(core: coreLock, sink: sink, injectedDelay: configuration.injectedDelay, logger: logger)
        if !storeKeepsState { try recover() }
        (sink as? JSONLinesSink)?.onRotate = { [unowned self] in
            core.outputRotated()
            checkpoint()
        }
        checkpoint()
    }

    /// Starts the writer thread: reports are answered from now on.
    public func start() {
        writer.periodicWork = { [unowned self] in writerTick() }
        writer.start()
    }

    /// Versions 1, 2 and 3 of the configured program.
    public var programs: [RPCProgram] {
        handlers.programs(configuration.program) { [unowned self] views in statistics(withAgentViews: views) }
    }

    /// GET_STATS: the collector's counters with the server's connections and
    /// refusals, and what version 3 adds (without the agent views).
    public var currentStatistics: CollectorStats {
        statistics(withAgentViews: false)
    }

    /// `rejected` counts bad input and unauthorized reports only: the collector's
    /// refusals and the server's GARBAGE_ARGS. Calls of what is not served go
    /// to version 3's `unserved_calls`.
    private func statistics(withAgentViews: Bool) -> CollectorStats {
        var (current, extra) = coreLock.withLock { core in
            var current = core.statistics
            current.agents = UInt32(clamping: core.agentCount)
            var extra = core.statisticsV3
            if withAgentViews { extra.agents = core.agentViews() }
            return (current, extra)
        }
        let server = serverCounters()
        current.connections = UInt32(clamping: server.connections)
        current.rejected.addSaturating(server.undecodableArguments)
        extra.unservedCalls = server.unservedCalls
        extra.evictedConnections = server.evictedConnections
        current.version3 = extra
        return current
    }

    /// The counters as one log value (numbers only: no client-supplied text).
    public var statisticsSummary: String {
        let stats = currentStatistics
        let extra = stats.version3 ?? CollectorStatsV3()
        return "batches \(stats.batches), events \(stats.events), written \(stats.written), duplicates \(stats.duplicates), "
            + "legacy \(stats.legacyEvents), dropped \(stats.reportedDropped), gaps \(stats.gapEvents), "
            + "lost queue_full \(extra.lostQueueFull) spool_evicted \(extra.lostSpoolEvicted) spool_corrupt \(extra.lostSpoolCorrupt) "
            + "refused \(extra.lostRefused) output_lost \(extra.outputLost), boots clean \(extra.bootsClean) unclean \(extra.bootsUnclean), "
            + "rejected \(stats.rejected), unserved \(extra.unservedCalls), sink errors \(stats.sinkErrors), agents \(stats.agents), "
            + "evicted connections \(extra.evictedConnections), stored in \(groupCounts.groups) commits for \(groupCounts.reports) reports"
    }

    /// The server's tick: nothing since the writer thread owns the sink (it
    /// does the periodic work, `writerTick`, between groups).
    public func tick() {}

    /// Groups the writer stored, and the reports they answered (several reports
    /// per group: their batches shared one fdatasync or one transaction).
    public var groupCounts: (groups: UInt64, reports: UInt64) { writer.groupCounts }

    /// Between groups and every second, on the writer thread: pending syncs
    /// (the sink's tick) and the checkpoint when one is due.
    private func writerTick() {
        sink.tick()
        let due = coreLock.withLock { core in
            core.checkpointNeeded && (core.eventsSinceCheckpoint >= configuration.checkpointEveryEvents || !lastCheckpointRecent())
        }
        if due { checkpoint() }
    }

    /// A checkpoint at most once a second between the event-count ones: each costs a sync and a file.
    private var lastCheckpoint: UInt64 = 0
    private func lastCheckpointRecent() -> Bool {
        SystemClock.monotonicNanoseconds() - lastCheckpoint < 1_000_000_000
    }

    /// Answers what is queued (the server has stopped reading), stops the
    /// writer, writes the last checkpoint, flushes the sink and releases the data directory.
    public func close() {
        writer.stop()
        checkpoint()
        sink.close()
    }

    // MARK: State

    /// Writes the highest sequences with the sink position they describe. The
    /// sink is synced first (per its policy) so the checkpoint never names data
    /// that a power failure could take back.
    private func checkpoint() {
        guard !storeKeepsState else { return }
        lastCheckpoint = SystemClock.monotonicNanoseconds()
        do {
            try sink.sync()
            // The writer's thread (or before it starts, after it ends): nothing
            // else changes the core or the sink meanwhile; the lock is for GET_STATS.
            let (pairs, historyLostAt, stateLostNoted) = coreLock.withLock { core in
                (core.snapshot, core.historyLostAt, core.stateLostNoted)
            }
            let agents = pairs.map {
                StateStore.Checkpoint.Agent(agent_id: $0.key.agentID, boot_id: $0.key.bootID, highest_seq: $0.highest,
                                            drop_report_before_seq: $0.dropReport?.beforeSequence,
                                            drop_report_count: $0.dropReport?.count, boot_end: $0.bootEnded ? true : nil,
                                            in_current_file: $0.inCurrentFile)
            }
            var saved = StateStore.Checkpoint(position: sink.position, agents: agents)
            saved.history_lost_ns = historyLostAt
            saved.state_lost_noted = historyLostAt == nil ? nil : stateLostNoted
            try state.save(saved, durable: configuration.fsync != .never)
            coreLock.withLock { $0.checkpointWritten() }
        } catch {
            logger.error("checkpoint not written", metadata: ["error": "\(error)"])
        }
    }

    /// The checkpoint, then the output from the position it names. When the
    /// output no longer holds that position (truncated, deleted, or lost to a
    /// power failure under --fsync never), all of it is read, and every agent
    /// run whose last lines were in the file the checkpoint names but whose
    /// highest sequence is no longer there gets an `output_lost` line for
    /// exactly the sequences gone. With neither checkpoint nor output, the
    /// history is lost (or this is the first start): see `CollectorCore.historyLostAt`.
    private func recover() throws(CollectorStartError) {
        let checkpoint = try state.load()
        for agent in checkpoint?.agents ?? [] {
            let report = agent.drop_report_before_seq.flatMap { before in
                agent.drop_report_count.map { SequenceTracker.DropReport(beforeSequence: before, count: $0) }
            }
            core.restore(TrackedPair(key: AgentKey(agentID: agent.agent_id, bootID: agent.boot_id), highest: agent.highest_seq,
                                     dropReport: report, bootEnded: agent.boot_end ?? false, inCurrentFile: agent.in_current_file ?? true))
        }
        if let lostAt = checkpoint?.history_lost_ns { core.historyLost(at: lostAt, noted: checkpoint?.state_lost_noted ?? false) }
        var read = (bytes: Int64(0), lines: 0)
        var missing: [(key: AgentKey, first: UInt64, last: UInt64)] = []
        if let path = (sink as? JSONLinesSink)?.path {
            let files = JSONLinesSink.files(of: path)
            var start = (file: 0, offset: Int64(0))
            var outputShort = false
            if let position = checkpoint?.position {
                if let found = SinkReplay.start(in: files, at: position) {
                    start = found
                } else {
                    outputShort = true
                    logger.warning("the output is shorter than the state checkpoint says (truncated, deleted, or lost on power failure): reading all of it to find what is missing",
                                   metadata: ["files": "\(files.count)"])
                }
            }
            var found: [AgentKey: UInt64] = [:]
            do {
                read = try SinkReplay.replay(files: files, from: start, logger: logger) { line, file in
                    switch line.replayed {
                    case .handled(let key, let highest, let report)?:
                        core.restore(TrackedPair(key: key, highest: highest, dropReport: report, bootEnded: false,
                                                 inCurrentFile: file == files.count - 1))
                        if outputShort { found[key] = max(found[key] ?? 0, highest) }
                    case .bootEnd(let key)?:
                        core.restoreBootEnd(key)
                    case .stateLost(let started)?:
                        core.historyLost(at: started, noted: true)
                    case nil:
                        break
                    }
                }
            } catch {
                throw .output(error)
            }
            if outputShort, let checkpoint {
                for agent in checkpoint.agents where agent.in_current_file ?? true {
                    let key = AgentKey(agentID: agent.agent_id, bootID: agent.boot_id)
                    let have = found[key] ?? 0
                    if have < agent.highest_seq { missing.append((key, have + 1, agent.highest_seq)) }
                }
            }
        }
        if checkpoint == nil, read.lines == 0 {
            core.historyLost(at: core.statistics.startedNanoseconds, noted: false)
            logger.info("no state checkpoint and no output: starting a new history (agent runs in progress before this start are not reported as gaps)")
        }
        for loss in missing {
            do {
                try core.recordOutputLost(loss.key, first: loss.first, last: loss.last)
            } catch {
                throw .output(error)
            }
        }
        logger.info("state recovered", metadata: [
            "agents": "\(core.agentCount)", "checkpoint": "\(checkpoint != nil)", "output bytes read": "\(read.bytes)",
            "output lost": "\(core.statisticsV3.outputLost)",
        ])
    }
}
