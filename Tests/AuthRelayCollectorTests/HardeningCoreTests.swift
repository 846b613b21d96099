@testable import AuthRelayCollector
import AuthRelayProtocol
import ONCRPC
import Testing

/// Issue 11, items 1 and 4, in the collector's logic: wire values at their
/// extremes never trap (every counter saturates), and client-supplied text
/// reaches a log line only escaped.
@Suite("CollectorCore hardening")
struct HardeningCoreTests {
    let reports = TestReports()
    let sink = MemorySink()

    func core() -> CollectorCore { CollectorCore(sink: sink, logger: .quiet, clock: { 42 }) }

    @Test("dropped = 2^64-1 then 1, from two agents: reported_dropped saturates")
    func droppedSaturates() {
        let core = core()
        #expect(core.reportBatch(reports.batch(agent: "a", first: 1, count: 0, dropped: .max), from: nil).status == .ok)
        #expect(core.reportBatch(reports.batch(agent: "b", first: 1, count: 0, dropped: 1), from: nil).status == .ok)
        #expect(core.reportBatch(reports.batch(agent: "c", first: 1, count: 1, dropped: .max), from: nil).status == .ok)
        #expect(core.statistics.reportedDropped == .max)
    }

    @Test("first_seq = 2^64-1 twice, from two agents: gap_events saturates; the highest can reach UInt64.max")
    func gapsSaturate() {
        let core = core()
        for agent in ["a", "b"] {
            _ = core.reportBatch(reports.batch(agent: agent, first: 1, count: 1), from: nil)
            #expect(core.reportBatch(reports.batch(agent: agent, first: .max, count: 0), from: nil).status == .ok)
            #expect(core.reportBatch(reports.batch(agent: agent, first: .max, count: 1), from: nil)
                == BatchAck(status: .ok, accepted: 1, duplicates: 0, highestSequence: .max))
            // At UInt64.max nothing can follow, and nothing overflows.
            #expect(core.reportBatch(reports.batch(agent: agent, first: .max, count: 2), from: nil).status == .rejected)
            #expect(core.reportBatch(reports.batch(agent: agent, first: .max, count: 0, dropped: 5), from: nil).status == .ok)
            #expect(core.reportBatch(reports.batch(agent: agent, first: 1, count: 512), from: nil).duplicates == 512)
        }
        #expect(core.statistics.gapEvents == .max)
        #expect(core.reportBatchV3(reports.batchV3(agent: "a", first: .max, sequences: [.max]), from: nil).duplicates == 1)
        #expect(core.reportBatchV3(reports.batchV3(agent: "a", first: 1, sequences: [], losses: [LossRange(first: 1, last: .max, reason: .refused)]),
                                   from: nil).highestSequence == .max)
    }

    @Test("loss ranges of 1...2^64-1 from two agents: every lost_* counter saturates, and each count is right")
    func lossCountersSaturate() {
        let core = core()
        for reason in [LossReason.queueFull, .spoolEvicted, .spoolCorrupt, .refused] {
            for agent in ["a", "b"] {
                let batch = reports.batchV3(agent: agent, boot: "\(reason)", first: 1, sequences: [],
                                            losses: [LossRange(first: 1, last: .max, reason: reason)])
                #expect(core.reportBatchV3(batch, from: nil).status == .ok)
            }
        }
        let extra = core.statisticsV3
        #expect([extra.lostQueueFull, extra.lostSpoolEvicted, extra.lostSpoolCorrupt, extra.lostRefused] == [.max, .max, .max, .max])
        #expect(sink.losses.allSatisfy { $0.count == .max })
    }

    @Test("log values: bare ids stay bare; newlines, quotes, controls, bidi overrides and invalid UTF-8 are escaped",
          arguments: [
              (Array("agent-1.example:7@x/y+z_".utf8), "agent-1.example:7@x/y+z_"),
              (Array("a\n2026-01-01T00:00:00+0000 critical authrelayd: forged".utf8),
               #""a\n2026-01-01T00:00:00+0000 critical authrelayd: forged""#),
              (Array("q\"b\\\r\t\u{1B}[31m".utf8), #""q\"b\\\r\t\u{001B}[31m""#),
              ([0x61, 0xFF, 0xC3, 0x28, 0xE2, 0x82], #""a\xFF\xC3(\xE2\x82""#),
              (Array("zoë \u{202E}gnp.exe \u{85}\u{2028}".utf8), #""zoë \u{202E}gnp.exe \u{0085}\u{2028}""#),
              ([], #""""#),
          ] as [([UInt8], String)])
    func logValues(bytes: [UInt8], escaped: String) {
        let text = bytes.withUnsafeBytes { LogValue.text($0) }
        #expect(text == escaped)
        #expect(!text.contains("\n") && !text.contains("\r"))
        #expect(LogValue.escaped(String(decoding: bytes, as: UTF8.self)) == LogValue.escaped(String(decoding: bytes, as: UTF8.self)))
    }
}
