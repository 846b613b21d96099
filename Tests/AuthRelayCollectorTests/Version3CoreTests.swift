@testable import AuthRelayCollector
import AuthRelayProtocol
import Glibc
import ONCRPC
import SystemSupport
import Testing

/// Version 3 in the collector's logic: the batch rule, losses with reasons,
/// boot ends, agent views, and a start without history.
@Suite("CollectorCore version 3")
struct Version3CoreTests {
    let reports = TestReports()
    let sink = MemorySink()

    func core(allowedUIDs: Set<UInt32> = [], clock: @escaping () -> UInt64 = { 42 }) -> CollectorCore {
        CollectorCore(sink: sink, allowedUIDs: allowedUIDs, logger: .quiet, clock: clock)
    }

    static func loss(_ first: UInt64, _ last: UInt64, _ reason: LossReason = .queueFull) -> LossRange {
        LossRange(first: first, last: last, reason: reason)
    }

    @Test("the batch rule: every sequence from first_seq on exactly once, as an event or in a loss range",
          arguments: [
              (1, [1, 2, 3], [], 3),
              (1, [1, 5], [loss(2, 4)], 5),
              (1, [], [loss(1, 10, .spoolEvicted), loss(11, 11, .spoolCorrupt)], 11),
              (5, [], [], 4),
              (7, [9], [loss(7, 8, .refused)], 9),
              (.max, [.max], [], .max),
              (.max - 1, [], [loss(.max - 1, .max)], .max),
          ] as [(UInt64, [UInt64], [LossRange], UInt64)])
    func ruleAccepts(first: UInt64, events: [UInt64], losses: [LossRange], last: UInt64) {
        #expect(BatchRule.lastAccounted(reports.batchV3(first: first, sequences: events, losses: losses)) == last)
    }

    @Test("the batch rule refuses: first_seq 0, a hole, an overlap, disorder, a reversed or unknown range, anything after UInt64.max",
          arguments: [
              (0, [0, 1], []),
              (1, [2], []),
              (1, [1, 3], []),
              (1, [2, 1], []),
              (1, [1, 2], [loss(2, 3)]),
              (1, [1, 2], [loss(5, 6), loss(3, 4)]),
              (1, [], [loss(1, 3), loss(2, 4)]),
              (1, [1], [loss(3, 2)]),
              (1, [1], [loss(2, 2, .other(9))]),
              (1, [1], [loss(2, .max), loss(.max, .max)]),
              (.max, [.max, 0], []),
          ] as [(UInt64, [UInt64], [LossRange])])
    func ruleRefuses(first: UInt64, events: [UInt64], losses: [LossRange]) {
        let batch = reports.batchV3(first: first, sequences: events, losses: losses)
        #expect(BatchRule.lastAccounted(batch) == nil)
        let core = core()
        #expect(core.reportBatchV3(batch, from: nil) == BatchAck(status: .rejected, accepted: 0, duplicates: 0, highestSequence: 0))
        #expect(core.statistics.rejected == 1 && sink.writes.isEmpty)
    }

    @Test("loss ranges become loss lines before the events, counted by reason; at or below the highest nothing is recorded again")
    func lossesAndDuplicates() {
        let core = core()
        #expect(core.reportBatchV3(reports.batchV3(first: 1, sequences: [1, 2, 3, 4, 5]), from: nil)
            == BatchAck(status: .ok, accepted: 5, duplicates: 0, highestSequence: 5))
        let batch = reports.batchV3(first: 4, sequences: [4, 5, 8], losses: [Self.loss(6, 7)])
        #expect(core.reportBatchV3(batch, from: nil) == BatchAck(status: .ok, accepted: 1, duplicates: 2, highestSequence: 8))
        #expect(sink.writes.last?.losses == [.range(first: 6, last: 7, reason: .queueFull)])
        #expect(sink.writes.last?.sequences == [8])
        // The retry: all duplicates, the range not recorded again.
        #expect(core.reportBatchV3(batch, from: nil) == BatchAck(status: .ok, accepted: 0, duplicates: 3, highestSequence: 8))
        #expect(sink.writes.count == 2)
        // A range that straddles the highest is recorded above it only.
        let straddling = reports.batchV3(first: 6, sequences: [12], losses: [Self.loss(6, 11, .spoolEvicted)])
        #expect(core.reportBatchV3(straddling, from: nil).accepted == 1)
        #expect(sink.writes.last?.losses == [.range(first: 9, last: 11, reason: .spoolEvicted)])
        // Losses only, every reason.
        let all = reports.batchV3(first: 13, sequences: [], losses: [Self.loss(13, 13), Self.loss(14, 15, .spoolEvicted),
                                                                       Self.loss(16, 18, .spoolCorrupt), Self.loss(19, 22, .refused)])
        #expect(core.reportBatchV3(all, from: nil) == BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: 22))
        #expect(core.statisticsV3.lostQueueFull == 3 && core.statisticsV3.lostSpoolEvicted == 5)
        #expect(core.statisticsV3.lostSpoolCorrupt == 3 && core.statisticsV3.lostRefused == 4)
        #expect(core.statistics.written == 7 && core.statistics.duplicates == 5 && core.statistics.gapEvents == 0)
        // A batch that starts past highest + 1 is a true sequence gap.
        #expect(core.reportBatchV3(reports.batchV3(first: 30, sequences: [30]), from: nil).highestSequence == 30)
        #expect(sink.writes.last?.losses == [.sequenceGap(first: 23, last: 29)])
        #expect(core.statistics.gapEvents == 7)
    }

    @Test("each pair's latest status is kept: GET_STATS's views, most recent first, at most the limit, version 3 pairs only")
    func agentViews() {
        var now: UInt64 = 100
        let core = core(clock: { now })
        var status = AgentStatus()
        for index in 0..<5 {
            now += 10
            status.spoolBytes = UInt64(index)
            status.spoolUsable = index % 2 == 0
            _ = core.reportBatchV3(reports.batchV3(agent: "agent-\(index)", first: 1, sequences: [1, 2], status: status), from: nil)
        }
        _ = core.reportBatch(reports.batch(agent: "version-2", first: 1, count: 1), from: nil)
        now += 10
        status.spoolBytes = 99
        _ = core.reportBatchV3(reports.batchV3(agent: "agent-1", first: 1, sequences: [1]), from: nil)  // a duplicate still tells its status
        let views = core.agentViews(limit: 3)
        #expect(views.map(\.agentID) == ["agent-1", "agent-4", "agent-3"])
        #expect(views.first?.lastReportNanoseconds == 160 && views.first?.highestSequence == 2)
        #expect(views.first?.status == AgentStatus())
        #expect(views[1].status.spoolBytes == 4 && views[1].status.spoolUsable)
        #expect(core.agentViews().count == 5)
    }

    @Test("REPORT_BOOT_END: one boot_end line per (agent, boot), counted by ending; an unknown ending is rejected")
    func bootEnds() {
        let core = core()
        #expect(core.reportBootEnd(reports.bootEnd(ending: 1, last: 9), from: nil) == .ok)
        #expect(core.reportBootEnd(reports.bootEnd(ending: 1, last: 9), from: nil) == .ok)  // a retry
        #expect(core.reportBootEnd(reports.bootEnd(ending: 0, last: 12, reportedBy: Array("boot-3".utf8)), from: nil) == .ok)
        #expect(sink.notes.map(\.note) == ["boot_end unclean 9 boot-2"])
        #expect(core.reportBootEnd(reports.bootEnd(boot: "boot-2", ending: 0, last: 4), from: nil) == .ok)
        #expect(core.statisticsV3.bootsUnclean == 1 && core.statisticsV3.bootsClean == 1)
        #expect(core.reportBootEnd(reports.bootEnd(boot: "boot-3", ending: 2), from: nil) == .rejected)
        #expect(core.reportBootEnd(reports.bootEnd(boot: "boot-3", ending: .max), from: nil) == .rejected)
        #expect(core.statistics.rejected == 2 && sink.notes.count == 2)
        #expect(core.snapshot.filter(\.bootEnded).map(\.key.bootID).sorted() == ["boot-1", "boot-2"])
        // Not stored: not recorded, so the retry writes it.
        sink.failure = SinkError(SystemError(function: "write", errno: ENOSPC))
        #expect(core.reportBootEnd(reports.bootEnd(boot: "boot-4"), from: nil) == .sinkError)
        sink.failure = nil
        #expect(core.reportBootEnd(reports.bootEnd(boot: "boot-4"), from: nil) == .ok)
        #expect(sink.notes.count == 3 && core.statistics.sinkErrors == 1)
        // --allow-uid applies.
        let guarded = CollectorCore(sink: sink, allowedUIDs: [7], logger: .quiet)
        #expect(guarded.reportBootEnd(reports.bootEnd(boot: "boot-5"), from: nil) == .unauthorized)
        #expect(guarded.reportBatchV3(reports.batchV3(first: 1, sequences: [1]), from: nil).status == .unauthorized)
        #expect(guarded.statistics.rejected == 2)
    }

    @Test("after a start without history, pairs first seen past 1 are no gap; one state_lost line says so; later gaps still are")
    func startWithoutHistory() {
        let core = core()
        core.historyLost(at: 5, noted: false)
        #expect(core.reportBatch(reports.batch(agent: "a", first: 1001, count: 2), from: nil).accepted == 2)
        #expect(core.reportBatchV3(reports.batchV3(agent: "b", first: 50, sequences: [50]), from: nil).accepted == 1)
        #expect(core.reportBatch(reports.batch(agent: "c", first: 1, count: 1), from: nil).accepted == 1)
        #expect(sink.losses.isEmpty && core.statistics.gapEvents == 0)
        #expect(sink.notes.map(\.note) == ["state_lost 1001"] && sink.notes.first?.agentID == "a")
        #expect(core.stateLostNoted && core.historyLostAt == 5)
        // A gap inside a run seen since is a gap.
        _ = core.reportBatch(reports.batch(agent: "a", first: 1010, count: 1), from: nil)
        #expect(sink.losses == [.sequenceGap(first: 1003, last: 1009)])
        // Without a start like that, a pair first seen past 1 is a gap (as before).
        let whole = CollectorCore(sink: MemorySink(), logger: .quiet)
        _ = whole.reportBatch(reports.batch(agent: "late", first: 10, count: 1), from: nil)
        #expect(whole.statistics.gapEvents == 9)
    }
}
