@testable import AuthRelayCollector
import AuthRelayHarness
import AuthRelayProtocol
import Glibc
import ONCRPC
import SystemSupport
import Testing

/// The writer thread's groups: several connections' reports stored with one
/// sink commit (one fdatasync under --fsync batch), answered only after it,
/// and undone exactly when the commit fails.
@Suite("Group commit")
struct GroupCommitTests {
    let reports = TestReports()

    /// Answers as the writer gives them, in order.
    final class Answers: @unchecked Sendable {
        private let answers = Locked([CollectorWriter.Answer]())
        // While the writer runs, read inside the lock (`count`, `batchStatuses`):
        // a copy taken out shares its buffer with the writer's next append,
        // which ThreadSanitizer reports. `all` only once the writer is done.
        var all: [CollectorWriter.Answer] { answers.withLock { $0 } }
        var count: Int { answers.withLock { $0.count } }
        func add(_ answer: CollectorWriter.Answer) { answers.withLock { $0.append(answer) } }

        var batchStatuses: [ReportStatus] {
            answers.withLock { answers in answers.compactMap { if case .batch(let ack) = $0 { ack.status } else { nil } } }
        }
    }

    func job(_ batch: ReceivedBatch, _ answers: Answers) -> CollectorWriter.Job {
        CollectorWriter.Job(report: CopiedReport(batch: batch, kind: .batchV3, peer: nil)) { answers.add($0) }
    }

    func lines(_ path: String) throws -> [String] {
        let bytes = try FileSystem.readFile(path)
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("four connections' batches in one group: one fdatasync, every batch answered OK after it, all lines in the file")
    func oneSyncForSeveralBatches() throws {
        let directory = try TemporaryDirectory(prefix: "group-commit")
        defer { directory.remove() }
        let path = directory.file("events.jsonl")
        let sink = try JSONLinesSink(path: path, policy: .batch, rotateBytes: 0, keepFiles: 1, logger: .quiet)
        let core = CollectorCore(sink: sink, logger: .quiet, clock: { 42 })
        let writer = CollectorWriter(core: Locked(core), sink: sink, injectedDelay: nil, logger: .quiet)
        let answers = Answers()
        let jobs = (1...4).map { agent in
            job(reports.batchV3(agent: "agent-\(agent)", first: 1, sequences: Array(1...100)), answers)
        }
        let syncsBefore = sink.dataSyncs
        writer.store(jobs)
        #expect(sink.dataSyncs - syncsBefore == 1)
        #expect(answers.batchStatuses == [.ok, .ok, .ok, .ok])
        #expect(try lines(path).count == 400)
        #expect(core.statistics.written == 400)
        #expect(writer.groupCounts.groups == 1 && writer.groupCounts.reports == 4)

        // One report per group: one sync each (what the collector did before the group commit).
        for agent in 5...6 { writer.store([job(reports.batchV3(agent: "agent-\(agent)", first: 1, sequences: [1]), answers)]) }
        #expect(sink.dataSyncs - syncsBefore == 3)
    }

    @Test("through the thread: reports submitted together while it is busy are answered by fewer syncs than reports")
    func threadGroupsWhatIsQueued() throws {
        let directory = try TemporaryDirectory(prefix: "group-thread")
        defer { directory.remove() }
        let path = directory.file("events.jsonl")
        let sink = try JSONLinesSink(path: path, policy: .batch, rotateBytes: 0, keepFiles: 1, logger: .quiet)
        let core = CollectorCore(sink: sink, logger: .quiet, clock: { 42 })
        // A slow store (20 ms per report) lets reports queue up behind the group in progress.
        let writer = CollectorWriter(core: Locked(core), sink: sink, injectedDelay: .milliseconds(20), logger: .quiet)
        writer.start()
        let answers = Answers()
        for agent in 1...8 {
            #expect(writer.submit(job(reports.batchV3(agent: "agent-\(agent)", first: 1, sequences: [1, 2]), answers)))
        }
        let deadline = SystemClock.deadline(after: .seconds(10))
        while answers.count < 8 && SystemClock.monotonicNanoseconds() < deadline { SystemClock.sleep(.milliseconds(5)) }
        writer.stop()
        #expect(answers.batchStatuses == Array(repeating: .ok, count: 8))
        #expect(writer.groupCounts.reports == 8)
        #expect(writer.groupCounts.groups < 8)
        #expect(sink.dataSyncs == writer.groupCounts.groups)
        #expect(try lines(path).count == 16)
    }

    @Test("a group whose commit fails: every report SINK_ERROR, nothing recorded; the retry is judged as the first attempt")
    func failedGroupRollsBack() {
        let sink = GroupSink()
        let core = CollectorCore(sink: sink, logger: .quiet, clock: { 42 })
        let writer = CollectorWriter(core: Locked(core), sink: sink, injectedDelay: nil, logger: .quiet)
        let answers = Answers()
        // Two connections of one agent (a failover retry) and another agent, one with a loss range.
        let group = [
            job(reports.batchV3(agent: "a", first: 1, sequences: [1, 2, 3]), answers),
            job(reports.batchV3(agent: "a", first: 1, sequences: [1, 2, 3]), answers),
            job(reports.batchV3(agent: "b", first: 1, sequences: [3], losses: [LossRange(first: 1, last: 2, reason: .queueFull)]), answers),
        ]
        sink.failNextCommit = true
        writer.store(group)
        #expect(answers.batchStatuses == [.sinkError, .sinkError, .sinkError])
        #expect(sink.stored.isEmpty)
        #expect(core.highestSequence(AgentKey(agentID: "a", bootID: "boot-1")) == 0)
        #expect(core.statistics.written == 0 && core.statistics.batches == 0 && core.statistics.duplicates == 0)
        #expect(core.statisticsV3.lostQueueFull == 0)
        #expect(core.statistics.sinkErrors == 3)

        writer.store(group)
        guard case .batch(let first) = answers.all[3], case .batch(let retry) = answers.all[4] else {
            Issue.record("not batch answers")
            return
        }
        #expect(first.status == .ok && first.accepted == 3)
        #expect(retry.status == .ok && retry.accepted == 0 && retry.duplicates == 3)
        #expect(sink.stored == ["a 1", "a 2", "a 3", "b loss 1...2", "b 3"])
        #expect(core.statistics.written == 4)
        #expect(core.statisticsV3.lostQueueFull == 2)
    }
}

/// Stages writes until `commitGroup`, which fails once on demand.
final class GroupSink: EventSink {
    private var staged: [String] = []
    private(set) var stored: [String] = []
    var failNextCommit = false

    func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError) {
        let agent = String(decoding: context.agentID!, as: UTF8.self)
        for loss in losses { if case .range(let first, let last, _) = loss { staged.append("\(agent) loss \(first)...\(last)") } }
        for event in events { staged.append("\(agent) \(event.sequence)") }
    }

    func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError) { staged.append("legacy \(event.sequence)") }
    func write(note: CollectorNote, context: ReportContext) throws(SinkError) { staged.append("note") }
    var position: SinkPosition? { nil }
    func sync() throws(SinkError) {}
    func tick() {}
    func close() {}

    func beginGroup() { staged = [] }

    func commitGroup() throws(SinkError) -> GroupCommit {
        defer { staged = [] }
        if failNextCommit {
            failNextCommit = false
            throw SinkError(SystemError(function: "fdatasync", errno: EIO, path: "test"))
        }
        stored += staged
        return GroupCommit()
    }
}
