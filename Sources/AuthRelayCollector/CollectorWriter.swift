import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The collector's writer thread: the poll loop hands it reports (copied out
/// of the call's memory) and never waits on the disk or the database; the
/// writer takes everything queued, runs it through the `CollectorCore` as one
/// group, stores the group with one sink commit (one fdatasync, or one
/// transaction, for several connections' batches) and only then answers each
/// report through its reply (the deferred RPC completion).
///
/// The hand-off is bounded (`maxQueuedBytes`): when it is full the report is
/// answered SINK_ERROR at once. The agent then keeps the events in its spool
/// and sends them again (or to its next collector): nothing is acknowledged
/// and nothing waits in memory the collector cannot hold. Stopping to read
/// every connection instead would also stall GET_STATS and NULL probes, which
/// the agents use to pick a collector.
final class CollectorWriter: @unchecked Sendable {
    // @unchecked: `core` is only touched with its lock held; `sink` and
    // `periodic` only on the writer thread (or before it starts, after it ends).

    /// What a report is answered.
    enum Answer: Sendable {
        case batch(BatchAck)
        case event(Ack)
        case bootEnd(ReportStatus)
    }

    struct Job: Sendable {
        var report: CopiedReport
        var reply: @Sendable (Answer) -> Void
    }

    private struct Queue {
        var jobs: [Job] = []
        var bytes = 0
        var stopping = false
        /// Reports refused since the hand-off was last below its bound (0: not full).
        var refusedWhileFull: UInt64 = 0
    }

    /// Reports queued, at most (copied bytes); the default holds sixteen of the largest batches.
    let maxQueuedBytes: Int
    private let queue = Locked(Queue())
    private let wake = WakeSignal()
    private let core: Locked<CollectorCore>
    private let sink: any EventSink
    private let injectedDelay: Duration?
    private let logger: Logger
    /// Between groups and at least every second: the sink's tick and checkpoints
    /// (set before `start`).
    var periodicWork: () -> Void = {}
    private var thread: NamedThread?
    /// Groups stored, and reports answered through them (the group commit's measure).
    private let counters = Locked((groups: UInt64(0), reports: UInt64(0)))

    init(core: Locked<CollectorCore>, sink: any EventSink, injectedDelay: Duration?, maxQueuedBytes: Int = 64 << 20,
         logger: Logger) {
        self.core = core
        self.sink = sink
        self.injectedDelay = injectedDelay
        self.maxQueuedBytes = maxQueuedBytes
        self.logger = logger
    }

    func start() {
        guard thread == nil else { return }
        thread = NamedThread(name: "authrelayd-write") { [self] in run() }
    }

    /// Answers what is queued, then ends the thread.
    func stop() {
        queue.withLock { $0.stopping = true }
        wake.signal()
        thread.take()?.join()
    }

    /// Hands a report over; false when the hand-off is full or stopped (the
    /// caller answers SINK_ERROR: the agent keeps the events and retries).
    func submit(_ job: Job) -> Bool {
        let size = job.report.byteCount
        let (accepted, firstRefusal, signal) = queue.withLock { queue -> (Bool, Bool, Bool) in
            guard !queue.stopping, queue.bytes == 0 || queue.bytes + size <= maxQueuedBytes else {
                queue.refusedWhileFull += 1
                return (false, queue.refusedWhileFull == 1, false)
            }
            queue.jobs.append(job)
            queue.bytes += size
            return (true, false, queue.jobs.count == 1)
        }
        if firstRefusal {
            logger.warning("the writer is behind: reports answered SINK_ERROR until it catches up (agents keep them and retry)",
                           metadata: ["queued_bytes_limit": "\(maxQueuedBytes)"])
        }
        if signal { wake.signal() }
        return accepted
    }

    /// Groups stored so far and the reports they answered.
    var groupCounts: (groups: UInt64, reports: UInt64) { counters.withLock { $0 } }

    // MARK: The thread

    private func run() {
        var lastPeriodic = SystemClock.monotonicNanoseconds()
        while true {
            let (jobs, stopping, refused) = queue.withLock { queue -> ([Job], Bool, UInt64) in
                defer {
                    queue.jobs.removeAll(keepingCapacity: true)
                    queue.bytes = 0
                    queue.refusedWhileFull = 0
                }
                return (queue.jobs, queue.stopping, queue.refusedWhileFull)
            }
            if refused > 0 {
                core.withLock { $0.countUnstored(Int(clamping: refused)) }
                logger.notice("the writer caught up", metadata: ["reports_refused": "\(refused)"])
            }
            if !jobs.isEmpty { store(jobs) }
            let now = SystemClock.monotonicNanoseconds()
            if !jobs.isEmpty || now - lastPeriodic >= 1_000_000_000 {
                periodicWork()
                lastPeriodic = now
            }
            if stopping && jobs.isEmpty { return }
            if jobs.isEmpty { wake.wait(timeout: .seconds(1)) }
        }
    }

    /// One group: every job through the core, one sink commit, then the answers.
    func store(_ jobs: [Job]) {
        // --inject-delay: a slow store on purpose, outside the lock GET_STATS takes.
        if let injectedDelay { for _ in jobs { SystemClock.sleep(injectedDelay) } }
        var keys: [AgentKey?] = []
        let staged = core.withLock { core -> [Answer] in
            core.beginGroup()
            return jobs.map { job in
                let (answer, key) = Self.answer(job.report, core)
                keys.append(key)
                return answer
            }
        }
        let outcome = Result { () throws(SinkError) in try sink.commitGroup() }
        let answers = core.withLock { core -> [Answer] in
            core.finishGroup(outcome)
            guard case .failure = outcome else { return staged }
            core.countUnstored(jobs.count)
            return zip(staged, keys).map { answer, key in Self.unstored(answer, highest: key.map(core.highestSequence) ?? 0) }
        }
        if case .failure(let error) = outcome {
            logger.error("reports not stored", metadata: ["reports": "\(jobs.count)", "error": "\(error)"])
        } else {
            counters.withLock { $0.groups += 1; $0.reports += UInt64(jobs.count) }
        }
        for (job, answer) in zip(jobs, answers) { job.reply(answer) }
    }

    /// What the core says of one report, staged in the sink; the pair's key for batches.
    private static func answer(_ report: CopiedReport, _ core: CollectorCore) -> (Answer, AgentKey?) {
        switch report.kind {
        case .batchV2:
            return report.withBatch { (.batch(core.reportBatch($0, from: report.peer)), $0.key) }
        case .batchV3:
            return report.withBatch { (.batch(core.reportBatchV3($0, from: report.peer)), $0.key) }
        case .legacyEvent:
            return (report.withLegacyEvent { .event(core.reportEvent($0, from: report.peer)) }, nil)
        case .bootEnd:
            return (report.withBootEnd { .bootEnd(core.reportBootEnd($0, from: report.peer)) }, nil)
        }
    }

    /// The answer when the group was not stored: SINK_ERROR for everything that
    /// needed the store (a refusal stays a refusal: it stored nothing).
    private static func unstored(_ answer: Answer, highest: UInt64) -> Answer {
        switch answer {
        case .batch(let ack) where ack.status == .ok || ack.status == .sinkError:
            return .batch(BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: highest))
        case .event(let ack) where ack.status == .ok:
            return .event(Ack(status: .sinkError, sequence: ack.sequence))
        case .bootEnd(.ok):
            return .bootEnd(.sinkError)
        default:
            return answer
        }
    }
}
