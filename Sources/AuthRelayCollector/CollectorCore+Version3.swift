import AuthRelayProtocol
import ONCRPC

/// Version 3: batches that say where and why events were lost, how a boot
/// ended, and what each agent last said of its spool.
extension CollectorCore {
    /// Version 3 REPORT_BATCH: the batch rule (`BatchRule`) checked, then
    /// everything at or below the pair's highest is a duplicate (events not
    /// written again, loss ranges not recorded again), a range above it that
    /// the batch does not start right after is a sequence gap, and the rest is
    /// written: loss lines first, then the events.
    package func reportBatchV3(_ batch: ReceivedBatch, from peer: PeerCredentials?) -> BatchAck {
        let count = batch.events.count
        statistics.events.addSaturating(UInt64(count))
        guard isAuthorized(peer) else { return refuse(.unauthorized) }
        guard let last = BatchRule.lastAccounted(batch) else { return refuse(.rejected) }
        let key = batch.key
        let highest = sequences.highest(key)
        let context = ReportContext(agentID: batch.agentID, bootID: batch.bootID, receivedNanoseconds: clock(), peer: peer)
        if let status = batch.status { sequences.heard(key, status: status, at: context.receivedNanoseconds) }
        // Events ascend (the rule): the duplicates are a prefix.
        let duplicates = batch.events.prefix { $0.sequence <= highest }.count
        var losses: [LossRecord] = []
        switch gap(before: batch.firstSequence, highest: highest, context: context) {
        case .gap(let loss): losses.append(loss)
        case .sinkFailed(let error): return failedToStoreV3(error, key: key)
        case .none: break
        }
        for range in batch.losses where range.last > highest {
            // range.last > highest, so highest + 1 cannot overflow; the reason was checked by the rule.
            losses.append(.range(first: max(range.first, highest + 1), last: range.last, reason: RangeReason(range.reason)!))
        }
        guard duplicates < count || !losses.isEmpty else {
            statistics.batches.addSaturating(1)
            statistics.duplicates.addSaturating(UInt64(duplicates))
            return BatchAck(status: .ok, accepted: 0, duplicates: UInt32(duplicates), highestSequence: highest)
        }
        return store(batch, key: key, context: context, newEvents: batch.events[(batch.events.startIndex + duplicates)...],
                     duplicates: duplicates, losses: losses, highest: max(last, highest), dropReport: nil)
    }

    private func failedToStoreV3(_ error: SinkError, key: AgentKey) -> BatchAck {
        statistics.sinkErrors.addSaturating(1)
        logger.error("batch not stored", metadata: ["agent_id": LogValue.escaped(key.agentID), "error": "\(error)"])
        return BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: sequences.highest(key))
    }

    /// Version 3 REPORT_BOOT_END: one `boot_end` line per (agent, boot), the
    /// first report of it; later ones (a retry, another run reporting the same
    /// end) are answered OK and change nothing.
    package func reportBootEnd(_ report: ReceivedBootEnd, from peer: PeerCredentials?) -> ReportStatus {
        guard isAuthorized(peer) else {
            statistics.rejected.addSaturating(1)
            return .unauthorized
        }
        let ending: BootEnd.Ending
        switch report.ending {
        case 0: ending = .clean
        case 1: ending = .unclean
        default:
            statistics.rejected.addSaturating(1)
            return .rejected
        }
        let key = report.key
        guard !sequences.bootEnded(key) else { return .ok }
        let context = ReportContext(agentID: report.agentID, bootID: report.bootID, receivedNanoseconds: clock(), peer: peer)
        do {
            try sink.write(note: .bootEnd(ending: ending, lastSequence: report.lastSequence, endedNanoseconds: report.endedNanoseconds,
                                          reportedBy: report.reportedBy), context: context)
        } catch {
            logger.error("boot end not stored", metadata: ["agent_id": LogValue.escaped(key.agentID), "error": "\(error)"])
            guard !error.refusesReport else {
                statistics.rejected.addSaturating(1)
                return .rejected
            }
            statistics.sinkErrors.addSaturating(1)
            return .sinkError
        }
        sequences.recordBootEnd(key)
        sequences.markWritten(key)
        if ending == .clean { statisticsV3.bootsClean.addSaturating(1) } else { statisticsV3.bootsUnclean.addSaturating(1) }
        checkpointNeeded = true
        logger.log(level: ending == .clean ? .info : .notice, "agent run ended", metadata: [
            "agent_id": LogValue.escaped(report.agentID), "boot_id": LogValue.escaped(report.bootID), "ending": "\(ending)",
            "last_seq": "\(report.lastSequence)", "reported_by": LogValue.escaped(report.reportedBy),
        ])
        return .ok
    }

    /// The agent runs that sent a version 3 batch, the most recently heard first, at most `limit`.
    package func agentViews(limit: Int = Event.maxAgentViews) -> [AgentView] {
        sequences.views(limit: limit)
    }
}
