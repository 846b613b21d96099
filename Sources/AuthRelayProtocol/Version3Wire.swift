import CAuthRelayRPC
import ONCRPC

// Conversions between the version 3 Swift values and rpcgen's C structs.

extension AuthRelayProgram {
    package static let reportBatchV3 = UInt32(AR3_REPORT_BATCH)
    package static let getStatsV3 = UInt32(AR3_GET_STATS)
    package static let reportBootEndV3 = UInt32(AR3_REPORT_BOOT_END)

    package static let eventBatchV3 = XDRRoutine(CAuthRelayRPC_xdr_ar3_event_batch)
    package static let statsV3 = XDRRoutine(CAuthRelayRPC_xdr_ar3_stats)
    package static let bootEnd = XDRRoutine(CAuthRelayRPC_xdr_ar_boot_end)
    package static let status = XDRRoutine(CAuthRelayRPC_xdr_ar_status)
}

extension LossRange {
    package init(wire: ar_loss_range) {
        self.init(first: UInt64(wire.first_seq), last: UInt64(wire.last_seq), reason: LossReason(rawValue: wire.reason.rawValue))
    }

    package var wire: ar_loss_range {
        ar_loss_range(first_seq: u_quad_t(first), last_seq: u_quad_t(last), reason: ar_loss_reason(rawValue: reason.rawValue))
    }
}

extension AgentStatus {
    package init(wire: ar_agent_status) {
        self.init()
        submitted = UInt64(wire.submitted)
        spooled = UInt64(wire.spooled)
        replayed = UInt64(wire.replayed)
        evicted = UInt64(wire.evicted)
        corrupt = UInt64(wire.corrupt)
        queueDropped = UInt64(wire.queue_dropped)
        memoryFallbacks = UInt64(wire.memory_fallbacks)
        spoolBytes = UInt64(wire.spool_bytes)
        oldestSpooledNanoseconds = UInt64(wire.oldest_spooled_ns)
        spoolSegments = wire.spool_segments
        spoolUsable = wire.spool_usable != 0
    }

    package var wire: ar_agent_status {
        ar_agent_status(submitted: u_quad_t(submitted), spooled: u_quad_t(spooled), replayed: u_quad_t(replayed),
                        evicted: u_quad_t(evicted), corrupt: u_quad_t(corrupt), queue_dropped: u_quad_t(queueDropped),
                        memory_fallbacks: u_quad_t(memoryFallbacks), spool_bytes: u_quad_t(spoolBytes),
                        oldest_spooled_ns: u_quad_t(oldestSpooledNanoseconds), spool_segments: spoolSegments,
                        spool_usable: spoolUsable ? 1 : 0)
    }
}

extension BootEnd {
    package init(wire: ar_boot_end) {
        self.init(agentID: String(xdr: wire.agent_id), bootID: String(xdr: wire.boot_id),
                  ending: wire.ending == AR_BOOT_CLEAN ? .clean : .unclean, lastSequence: UInt64(wire.last_seq),
                  endedNanoseconds: UInt64(wire.ended_ns), reportedBy: String(xdr: wire.reported_by))
    }
}

extension CollectorStats {
    /// Version 3's GET_STATS answer: the version 2 counters and what only version 3 carries.
    package init(wire: ar3_stats) {
        self.init(wire: wire.totals)
        var extra = CollectorStatsV3()
        extra.unservedCalls = UInt64(wire.unserved_calls)
        extra.lostQueueFull = UInt64(wire.lost_queue_full)
        extra.lostSpoolEvicted = UInt64(wire.lost_spool_evicted)
        extra.lostSpoolCorrupt = UInt64(wire.lost_spool_corrupt)
        extra.lostRefused = UInt64(wire.lost_refused)
        extra.outputLost = UInt64(wire.output_lost)
        extra.bootsClean = UInt64(wire.boots_clean)
        extra.bootsUnclean = UInt64(wire.boots_unclean)
        extra.evictedConnections = UInt64(wire.evicted_connections)
        let views = UnsafeBufferPointer(start: wire.agents.agents_val, count: Int(wire.agents.agents_len))
        extra.agents = views.map { view in
            AgentView(agentID: String(xdr: view.agent_id), bootID: String(xdr: view.boot_id),
                      highestSequence: UInt64(view.highest_seq), lastReportNanoseconds: UInt64(view.last_report_ns),
                      status: AgentStatus(wire: view.status))
        }
        version3 = extra
    }
}

/// Lays a version 3 GET_STATS answer out as C structs that stay valid until
/// the next `lay` (the server encodes a result after its handler returns).
/// One per server thread.
package final class StatsWire {
    private let views: UnsafeMutableBufferPointer<ar_agent_view> = .allocate(capacity: Event.maxAgentViews)
    /// Room for every view's two ids at their bound, NUL-terminated.
    private let strings: UnsafeMutableRawBufferPointer = .allocate(byteCount: Event.maxAgentViews * 2 * (Event.maxIDBytes + 1),
                                                                   alignment: 8)
    private var used = 0

    package init() {}

    deinit {
        views.deallocate()
        strings.deallocate()
    }

    package func lay(_ stats: CollectorStats, into result: UnsafeMutablePointer<ar3_stats>) {
        let extra = stats.version3 ?? CollectorStatsV3()
        used = 0
        var wire = ar3_stats()
        wire.totals = stats.wire
        wire.unserved_calls = u_quad_t(extra.unservedCalls)
        wire.lost_queue_full = u_quad_t(extra.lostQueueFull)
        wire.lost_spool_evicted = u_quad_t(extra.lostSpoolEvicted)
        wire.lost_spool_corrupt = u_quad_t(extra.lostSpoolCorrupt)
        wire.lost_refused = u_quad_t(extra.lostRefused)
        wire.output_lost = u_quad_t(extra.outputLost)
        wire.boots_clean = u_quad_t(extra.bootsClean)
        wire.boots_unclean = u_quad_t(extra.bootsUnclean)
        wire.evicted_connections = u_quad_t(extra.evictedConnections)
        let count = min(extra.agents.count, views.count)
        for (index, view) in extra.agents.prefix(count).enumerated() {
            views[index] = ar_agent_view(agent_id: keep(view.agentID), boot_id: keep(view.bootID),
                                         highest_seq: u_quad_t(view.highestSequence),
                                         last_report_ns: u_quad_t(view.lastReportNanoseconds), status: view.status.wire)
        }
        wire.agents.agents_len = u_int(count)
        wire.agents.agents_val = views.baseAddress
        result.pointee = wire
    }

    /// A NUL-terminated copy, cut to the id bound, that lives until the next `lay`.
    private func keep(_ text: String) -> UnsafeMutablePointer<CChar> {
        let start = strings.baseAddress! + used
        var count = 0
        for byte in text.utf8.prefix(Event.maxIDBytes) where byte != 0 {
            start.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
        }
        start.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
        used += count + 1
        return start.assumingMemoryBound(to: CChar.self)
    }
}
