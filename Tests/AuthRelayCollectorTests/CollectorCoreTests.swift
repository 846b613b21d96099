@testable import AuthRelayCollector
import AuthRelayProtocol
import Glibc
import ONCRPC
import SystemSupport
import Testing

/// De-duplication and loss accounting, without a process, a socket or a file.
@Suite("CollectorCore")
struct CollectorCoreTests {
    let reports = TestReports()
    let sink = MemorySink()

    func core(allowedUIDs: Set<UInt32> = []) -> CollectorCore {
        CollectorCore(sink: sink, allowedUIDs: allowedUIDs, logger: .quiet, clock: { 42 })
    }

    @Test("a batch is written once; the same batch again is all duplicates")
    func duplicates() {
        let core = core()
        #expect(core.reportBatch(reports.batch(first: 1, count: 3), from: nil)
            == BatchAck(status: .ok, accepted: 3, duplicates: 0, highestSequence: 3))
        #expect(core.reportBatch(reports.batch(first: 1, count: 3), from: nil)
            == BatchAck(status: .ok, accepted: 0, duplicates: 3, highestSequence: 3))
        #expect(sink.writtenSequences == [1, 2, 3])
        #expect(sink.writes.first?.agentID == "agent-1" && sink.writes.first?.bootID == "boot-1")
        var expected = CollectorStats()
        expected.startedNanoseconds = 42
        expected.batches = 2
        expected.events = 6
        expected.written = 3
        expected.duplicates = 3
        #expect(core.statistics == expected)
        #expect(core.highestSequence(AgentKey(agentID: "agent-1", bootID: "boot-1")) == 3)
    }

    @Test("a retry that overlaps what was written writes only the new events")
    func overlappingRetry() {
        let core = core()
        _ = core.reportBatch(reports.batch(first: 1, count: 3), from: nil)
        #expect(core.reportBatch(reports.batch(first: 2, count: 4), from: nil)
            == BatchAck(status: .ok, accepted: 2, duplicates: 2, highestSequence: 5))
        #expect(sink.writtenSequences == [1, 2, 3, 4, 5])
        #expect(sink.losses.isEmpty)
        #expect(core.statistics.duplicates == 2)
    }

    @Test("each (agent, boot) pair has its own sequences")
    func pairs() {
        let core = core()
        _ = core.reportBatch(reports.batch(first: 1, count: 2), from: nil)
        #expect(core.reportBatch(reports.batch(boot: "boot-2", first: 1, count: 2), from: nil).accepted == 2)
        #expect(core.reportBatch(reports.batch(agent: "agent-2", first: 1, count: 2), from: nil).accepted == 2)
        #expect(core.agentCount == 3)
        #expect(sink.losses.isEmpty)
    }

    @Test("a sequence gap is one loss line before the batch's events, counted once across retries")
    func sequenceGap() {
        let core = core()
        _ = core.reportBatch(reports.batch(first: 1, count: 2), from: nil)
        #expect(core.reportBatch(reports.batch(first: 5, count: 2), from: nil)
            == BatchAck(status: .ok, accepted: 2, duplicates: 0, highestSequence: 6))
        #expect(sink.writes.last?.losses == [.sequenceGap(first: 3, last: 4)])
        #expect(sink.writes.last?.sequences == [5, 6])
        #expect(core.reportBatch(reports.batch(first: 5, count: 2), from: nil).duplicates == 2)
        #expect(sink.losses == [.sequenceGap(first: 3, last: 4)])
        #expect(core.statistics.gapEvents == 2)
        // The first batch of a pair starting past 1 reveals a gap too.
        _ = core.reportBatch(reports.batch(agent: "late", first: 10, count: 1), from: nil)
        #expect(sink.writes.last?.losses == [.sequenceGap(first: 1, last: 9)])
    }

    @Test("header drops are a loss line; a retried drop-only batch is recognised by (first_seq, dropped)")
    func dropReports() {
        let core = core()
        _ = core.reportBatch(reports.batch(first: 1, count: 2), from: nil)
        core.checkpointWritten()
        // Drops only: no events, the drops happened before sequence 3.
        #expect(core.reportBatch(reports.batch(first: 3, count: 0, dropped: 5), from: nil)
            == BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: 2))
        #expect(sink.writes.last == MemorySink.Write(agentID: "agent-1", bootID: "boot-1", sequences: [],
                                                     losses: [.agentDropped(count: 5, beforeSequence: 3)], peer: nil))
        #expect(core.checkpointNeeded && core.eventsSinceCheckpoint == 0)
        // Its retry writes nothing.
        let writes = sink.writes.count
        #expect(core.reportBatch(reports.batch(first: 3, count: 0, dropped: 5), from: nil).status == .ok)
        #expect(sink.writes.count == writes)
        // The next batch carries the same header drops: not counted again.
        #expect(core.reportBatch(reports.batch(first: 3, count: 2, dropped: 5), from: nil).accepted == 2)
        #expect(sink.writes.last?.losses == [])
        // New drops before a later batch are.
        _ = core.reportBatch(reports.batch(first: 5, count: 1, dropped: 7), from: nil)
        #expect(sink.writes.last?.losses == [.agentDropped(count: 7, beforeSequence: 5)])
        #expect(core.statistics.reportedDropped == 12)
        #expect(sink.writtenSequences == [1, 2, 3, 4, 5])
    }

    @Test("a batch with no events and no drops changes nothing")
    func emptyBatch() {
        let core = core()
        #expect(core.reportBatch(reports.batch(first: 1, count: 0), from: nil)
            == BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: 0))
        #expect(sink.writes.isEmpty && !core.checkpointNeeded && core.statistics.batches == 1)
    }

    @Test("events that do not follow first_seq by one, first_seq 0 or an overflowing range are rejected",
          arguments: [(1, [1, 2, 4]), (2, [1, 2]), (0, [0, 1]), (.max, [.max, 0])] as [(UInt64, [UInt64])])
    func rejected(first: UInt64, sequences: [UInt64]) {
        let core = core()
        #expect(core.reportBatch(reports.batch(first: first, count: sequences.count, sequences: sequences), from: nil)
            == BatchAck(status: .rejected, accepted: 0, duplicates: 0, highestSequence: 0))
        #expect(sink.writes.isEmpty)
        #expect(core.statistics.rejected == 1 && core.statistics.batches == 0)
        #expect(core.statistics.events == UInt64(sequences.count))
    }

    @Test("a sink failure records nothing and answers sinkError; the retry is written, loss line included")
    func sinkFailure() {
        let core = core()
        _ = core.reportBatch(reports.batch(first: 1, count: 2), from: nil)
        sink.failure = SinkError(SystemError(function: "write", errno: ENOSPC, path: "/var/log/events.jsonl"))
        #expect(core.reportBatch(reports.batch(first: 5, count: 2, dropped: 3), from: nil)
            == BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: 2))
        #expect(core.reportEvent(reports.event(9), from: nil) == Ack(status: .sinkError, sequence: 9))
        #expect(core.highestSequence(AgentKey(agentID: "agent-1", bootID: "boot-1")) == 2)
        #expect(core.statistics.sinkErrors == 2 && core.statistics.written == 2)
        #expect(core.statistics.gapEvents == 0 && core.statistics.reportedDropped == 0)
        sink.failure = nil
        #expect(core.reportBatch(reports.batch(first: 5, count: 2, dropped: 3), from: nil).accepted == 2)
        #expect(sink.writes.last?.losses == [.sequenceGap(first: 3, last: 4), .agentDropped(count: 3, beforeSequence: 5)])
    }

    @Test("with --allow-uid only listed uids on the unix socket may report")
    func unauthorized() {
        let core = core(allowedUIDs: [1000])
        let listed = PeerCredentials(pid: 7, uid: 1000, gid: 1000)
        let other = PeerCredentials(pid: 8, uid: 0, gid: 0)
        // No peer credentials: tcp or udp, where nothing proves a uid.
        #expect(core.reportBatch(reports.batch(first: 1, count: 2), from: nil)
            == BatchAck(status: .unauthorized, accepted: 0, duplicates: 0, highestSequence: 0))
        #expect(core.reportBatch(reports.batch(first: 1, count: 2), from: other).status == .unauthorized)
        #expect(core.reportEvent(reports.event(3), from: other) == Ack(status: .unauthorized, sequence: 3))
        #expect(sink.writes.isEmpty)
        #expect(core.statistics.rejected == 3)
        #expect(core.reportBatch(reports.batch(first: 1, count: 2), from: listed).accepted == 2)
        #expect(sink.writes.last?.peer == listed)
    }

    @Test("version 1 events are written as they come: no ids, no de-duplication")
    func legacy() {
        let core = core()
        #expect(core.reportEvent(reports.event(7), from: nil) == Ack(status: .ok, sequence: 7))
        #expect(core.reportEvent(reports.event(7), from: nil) == Ack(status: .ok, sequence: 7))
        #expect(sink.writes == Array(repeating: MemorySink.Write(agentID: nil, bootID: nil, sequences: [7], losses: [], peer: nil), count: 2))
        #expect(core.statistics.legacyEvents == 2 && core.statistics.written == 2 && core.statistics.events == 2)
        #expect(!core.checkpointNeeded)
    }

    @Test("what a checkpoint needs: changes since the last one, and every pair's highest")
    func checkpointBookkeeping() {
        let core = core()
        _ = core.reportBatch(reports.batch(first: 1, count: 3), from: nil)
        #expect(core.checkpointNeeded && core.eventsSinceCheckpoint == 3)
        core.checkpointWritten()
        #expect(!core.checkpointNeeded && core.eventsSinceCheckpoint == 0)
        core.restore(AgentKey(agentID: "restored", bootID: "b"), highest: 9, dropReport: nil)
        #expect(core.snapshot.map(\.highest) == [3, 9])
        #expect(core.reportBatch(reports.batch(agent: "restored", boot: "b", first: 5, count: 6), from: nil)
            == BatchAck(status: .ok, accepted: 1, duplicates: 5, highestSequence: 10))
    }
}
