import AuthRelayProtocol
import CAuthRelayRPC
import TestSupport
import Testing

/// Version 3 values through the real rpcgen routines: laid out, encoded, decoded, read back.
@Suite struct Version3WireTests {
    static func roundTrip(version3 batch: EventBatch) -> EventBatch? {
        let bytes = WireArena().withWire(version3: batch) { AuthRelayProgram.eventBatchV3.encode(&$0.pointee) }
        return bytes?.withUnsafeBytes {
            AuthRelayProgram.eventBatchV3.decode($0, as: ar3_event_batch.self) { wire in
                let header = wire.pointee.header
                let losses = UnsafeBufferPointer(start: header.losses.losses_val, count: Int(header.losses.losses_len))
                let events = UnsafeBufferPointer(start: wire.pointee.events.events_val, count: Int(wire.pointee.events.events_len))
                return EventBatch(
                    header: BatchHeader(agentID: String(xdr: header.agent_id), bootID: String(xdr: header.boot_id),
                                        firstSequence: UInt64(header.first_seq), losses: losses.map(LossRange.init(wire:)),
                                        status: AgentStatus(wire: header.status)),
                    events: events.indices.map { Event(wire: events.baseAddress! + $0) })
            }
        }
    }

    @Test("a batch with loss ranges between its events and a spool status comes back equal")
    func batch() throws {
        var status = AgentStatus()
        status.submitted = .max
        status.spooled = 7
        status.spoolBytes = 1 << 40
        status.oldestSpooledNanoseconds = 1_700_000_000_000_000_000
        status.spoolSegments = .max
        status.spoolUsable = true
        let header = BatchHeader(agentID: "agent-1", bootID: "boot-1", firstSequence: 10,
                                 losses: [LossRange(first: 10, last: 19, reason: .queueFull),
                                          LossRange(first: 21, last: 21, reason: .spoolCorrupt),
                                          LossRange(first: 23, last: .max, reason: .other(.max))],
                                 status: status)
        let batch = EventBatch(header: header, events: [Sample.event(sequence: 20), Sample.event(sequence: 22)])
        #expect(Self.roundTrip(version3: batch) == batch)
    }

    @Test("a boot end report comes back equal")
    func bootEnd() throws {
        let report = BootEnd(agentID: "agent-1", bootID: "boot-1", ending: .unclean, lastSequence: .max,
                             endedNanoseconds: 42, reportedBy: "boot-2")
        let bytes = try #require(WireArena().withWire(report) { AuthRelayProgram.bootEnd.encode(&$0.pointee) })
        let decoded = bytes.withUnsafeBytes { AuthRelayProgram.bootEnd.decode($0, as: ar_boot_end.self) { BootEnd(wire: $0.pointee) } }
        #expect(decoded == report)
    }

    @Test("a version 3 stats answer with agent views comes back equal, ids cut to their bound")
    func stats() throws {
        var stats = CollectorStats()
        stats.batches = 3
        var extra = CollectorStatsV3()
        extra.outputLost = 1000
        extra.bootsUnclean = 2
        extra.agents = (0..<Event.maxAgentViews).map {
            AgentView(agentID: "agent-\($0)", bootID: String(repeating: "b", count: Event.maxIDBytes),
                      highestSequence: UInt64($0), lastReportNanoseconds: 5, status: AgentStatus())
        }
        stats.version3 = extra
        let layout = StatsWire()
        let bytes = try #require(withUnsafeTemporaryAllocation(of: ar3_stats.self, capacity: 1) { result in
            layout.lay(stats, into: result.baseAddress!)
            return AuthRelayProgram.statsV3.encode(&result.baseAddress!.pointee)
        })
        let decoded = bytes.withUnsafeBytes { AuthRelayProgram.statsV3.decode($0, as: ar3_stats.self) { CollectorStats(wire: $0.pointee) } }
        #expect(decoded == stats)
    }

    @Test("loss reasons have one name each, unknown ones signed", arguments: [
        (LossReason.queueFull, "queue_full"), (.spoolEvicted, "spool_evicted"), (.spoolCorrupt, "spool_corrupt"),
        (.refused, "refused"), (.other(UInt32(bitPattern: -1)), "reason--1"),
    ])
    func names(_ reason: LossReason, _ name: String) {
        #expect(reason.description == name)
        #expect(LossReason(rawValue: reason.rawValue) == reason)
    }

    @Test("a loss range counts its events without overflowing")
    func count() {
        #expect(LossRange(first: 5, last: 5, reason: .refused).count == 1)
        #expect(LossRange(first: 0, last: .max, reason: .refused).count == .max)
        #expect(LossRange(first: 6, last: 5, reason: .refused).count == 0)
    }
}
