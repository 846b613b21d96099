import AuthRelayProtocol
import Logging
import ONCRPC

/// What the collector does with each report, over Swift values: who may
/// report, de-duplication per (agent id, boot id), loss records, the sink
/// write, the counters, and the answer. No process, no RPC, no files of its
/// own: `CollectorService` gives it the sink and checkpoints what it holds;
/// the handlers (ReportHandlers.swift) turn the decoded calls into
/// `ReceivedBatch` and `ReceivedEvent` and the answers back into C results.
/// Version 3's batches, boot ends and agent views are in CollectorCore+Version3.swift.
///
/// Every number from the wire is used with checked arithmetic, and every
/// counter adds saturating (`addSaturating`): no report can trap the process.
///
/// Not thread-safe: the RPC server's thread calls it.
package final class CollectorCore {
    /// The collector's own counters (GET_STATS adds the server's).
    package internal(set) var statistics = CollectorStats()
    /// What only version 3's GET_STATS carries (agent views aside, see `agentViews`).
    package internal(set) var statisticsV3 = CollectorStatsV3()
    /// Empty: anyone who reaches a listener. Not empty: only these uids, over the unix socket.
    package let allowedUIDs: Set<UInt32>
    /// Something was recorded since the last checkpoint.
    package internal(set) var checkpointNeeded = false
    /// Events written since the last checkpoint.
    package internal(set) var eventsSinceCheckpoint: UInt64 = 0
    /// Set when this collector started with neither a checkpoint nor any output
    /// (CLOCK_REALTIME of that start): sequences below the first batch of a pair
    /// first seen since are unknown (delivered before, to the history that is
    /// gone), so they are not reported as gaps. Nil: the history is whole.
    package private(set) var historyLostAt: UInt64?
    /// The one `state_lost` line of that start has been written.
    package internal(set) var stateLostNoted = false

    let sink: any EventSink
    var sequences: SequenceTracker
    let logger: Logger
    /// CLOCK_REALTIME: `received_ns` and the start time.
    let clock: () -> UInt64
    /// The sink's store computes gaps where every collector's rows meet
    /// (PostgreSQL's `sequence_gaps` view): this collector, which sees only
    /// its share of a boot's sequence, writes no `sequence_gap` of its own.
    package var gapsComputedByStore = false
    /// What a group put back when it is not stored (CollectorCore+Group.swift).
    var groupStart: GroupStart?

    package init(sink: any EventSink, allowedUIDs: Set<UInt32> = [], maxAgents: Int = 65_536, logger: Logger,
                 clock: @escaping () -> UInt64 = Timestamps.realtime) {
        self.sink = sink
        self.allowedUIDs = allowedUIDs
        sequences = SequenceTracker(capacity: maxAgents)
        self.logger = logger
        self.clock = clock
        statistics.startedNanoseconds = clock()
    }

    /// (agent id, boot id) pairs remembered.
    package var agentCount: Int { sequences.count }

    /// The highest sequence handled for `key`; 0 when none.
    package func highestSequence(_ key: AgentKey) -> UInt64 {
        sequences.highest(key)
    }

    // MARK: Reports

    /// Version 2 REPORT_BATCH.
    package func reportBatch(_ batch: ReceivedBatch, from peer: PeerCredentials?) -> BatchAck {
        let count = batch.events.count
        statistics.events.addSaturating(UInt64(count))
        guard isAuthorized(peer) else { return refuse(.unauthorized) }
        let first = batch.firstSequence
        // The highest sequence this batch accounts for; a batch with no events
        // (sent only to report drops) accounts for the ones before first_seq.
        let (last, overflow) = (first &- 1).addingReportingOverflow(UInt64(count))
        guard first > 0, !overflow, batch.isContiguous else { return refuse(.rejected) }
        let key = batch.key
        let highest = sequences.highest(key)
        guard count == 0 || last > highest else {
            statistics.batches.addSaturating(1)
            statistics.duplicates.addSaturating(UInt64(count))
            return BatchAck(status: .ok, accepted: 0, duplicates: UInt32(count), highestSequence: highest)
        }
        // last > highest here, so fewer than `count` of them.
        let duplicates = count > 0 && first <= highest ? Int(highest - first + 1) : 0
        var losses: [LossRecord] = []
        var dropReport: SequenceTracker.DropReport?
        let context = ReportContext(agentID: batch.agentID, bootID: batch.bootID, receivedNanoseconds: clock(), peer: peer)
        if first > highest {
            // Counted once: a retry of this batch starts at or below the new highest,
            // or (with no events) repeats the drop report recorded last.
            switch gap(before: first, highest: highest, context: context) {
            case .gap(let loss): losses.append(loss)
            case .sinkFailed(let error): return failedToStore(error, key: key, first: first)
            case .none: break
            }
            let report = SequenceTracker.DropReport(beforeSequence: first, count: batch.dropped)
            if batch.dropped > 0, sequences.lastDropReport(key) != report {
                losses.append(.agentDropped(count: batch.dropped, beforeSequence: first))
                dropReport = report
            }
        }
        guard count > 0 || !losses.isEmpty else {
            statistics.batches.addSaturating(1)
            return BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: highest)
        }
        return store(batch, key: key, context: context, newEvents: batch.events[(batch.events.startIndex + duplicates)...],
                     duplicates: duplicates, losses: losses, highest: max(last, highest), dropReport: dropReport)
    }

    /// Version 1 REPORT_EVENT. Version 1 has no agent or boot id: nothing to
    /// de-duplicate by; written as "legacy".
    package func reportEvent(_ event: ReceivedEvent, from peer: PeerCredentials?) -> Ack {
        statistics.events.addSaturating(1)
        statistics.legacyEvents.addSaturating(1)
        guard isAuthorized(peer) else {
            statistics.rejected.addSaturating(1)
            return Ack(status: .unauthorized, sequence: event.sequence)
        }
        let context = ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: clock(), peer: peer)
        do {
            try sink.writeLegacy(event, context: context)
        } catch {
            logger.error("event not stored", metadata: ["error": "\(error)"])
            guard !error.refusesReport else {
                statistics.rejected.addSaturating(1)
                return Ack(status: .rejected, sequence: event.sequence)
            }
            statistics.sinkErrors.addSaturating(1)
            return Ack(status: .sinkError, sequence: event.sequence)
        }
        statistics.written.addSaturating(1)
        return Ack(status: .ok, sequence: event.sequence)
    }

    // MARK: Shared by both batch versions

    /// Without --allow-uid anyone who reaches a listener may report. With it,
    /// only unix socket callers whose kernel-reported uid is listed: an AUTH_SYS
    /// uid over TCP or UDP is only the caller's claim.
    func isAuthorized(_ peer: PeerCredentials?) -> Bool {
        guard !allowedUIDs.isEmpty else { return true }
        guard let peer else { return false }
        return allowedUIDs.contains(peer.uid)
    }

    /// A batch refused: unauthorized, or breaking a rule (rejected).
    func refuse(_ status: ReportStatus) -> BatchAck {
        statistics.rejected.addSaturating(1)
        return BatchAck(status: status, accepted: 0, duplicates: 0, highestSequence: 0)
    }

    enum GapCheck {
        case none
        case gap(LossRecord)
        /// The `state_lost` line could not be written.
        case sinkFailed(SinkError)
    }

    /// The sequences between the pair's highest and a batch that starts at
    /// `first`, when there are any. After a start without history, a pair first
    /// seen past sequence 1 delivered before (to the history that is gone): that
    /// is no gap, and the first time it happens one `state_lost` line says so.
    func gap(before first: UInt64, highest: UInt64, context: ReportContext) -> GapCheck {
        guard !gapsComputedByStore, first - 1 > highest else { return .none }  // first >= 1
        guard highest == 0, let lostAt = historyLostAt else { return .gap(.sequenceGap(first: highest + 1, last: first - 1)) }
        guard !stateLostNoted else { return .none }
        do {
            try sink.write(note: .stateLost(startedNanoseconds: lostAt, firstSequence: first), context: context)
        } catch {
            return .sinkFailed(error)
        }
        stateLostNoted = true
        checkpointNeeded = true
        logger.warning("this collector started with neither its state nor its output: sequences below the first batch of agent runs first seen since are unknown, not reported as gaps", metadata: [
            "agent_id": context.agentID.map(LogValue.escaped) ?? "", "boot_id": context.bootID.map(LogValue.escaped) ?? "",
            "first_seq": "\(first)",
        ])
        return .none
    }

    /// Writes a batch's new events and losses, then records and counts them.
    func store(_ batch: ReceivedBatch, key: AgentKey, context: ReportContext, newEvents: ArraySlice<ReceivedEvent>,
               duplicates: Int, losses: [LossRecord], highest: UInt64, dropReport: SequenceTracker.DropReport?) -> BatchAck {
        do {
            try sink.write(events: newEvents, losses: losses, context: context)
        } catch {
            return failedToStore(error, key: key, first: batch.firstSequence)
        }
        sequences.recordWritten(key, highest: highest, dropReport: dropReport)
        let written = UInt64(newEvents.count)
        statistics.batches.addSaturating(1)
        statistics.written.addSaturating(written)
        statistics.duplicates.addSaturating(UInt64(duplicates))
        count(losses)
        if !losses.isEmpty {
            logger.notice("events lost", metadata: [
                "agent_id": LogValue.escaped(batch.agentID), "boot_id": LogValue.escaped(batch.bootID),
                "losses": .array(losses.map { .string($0.summary) }),
                "count": "\(losses.reduce(into: UInt64(0)) { $0.addSaturating($1.count) })",
            ])
        }
        checkpointNeeded = true
        eventsSinceCheckpoint.addSaturating(written)
        return BatchAck(status: .ok, accepted: UInt32(newEvents.count), duplicates: UInt32(duplicates), highestSequence: highest)
    }

    private func failedToStore(_ error: SinkError, key: AgentKey, first: UInt64) -> BatchAck {
        logger.error("batch not stored", metadata: [
            "agent_id": LogValue.escaped(key.agentID), "first_seq": "\(first)", "error": "\(error)",
        ])
        if error.refusesReport { return refuse(.rejected) }
        statistics.sinkErrors.addSaturating(1)
        return BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: sequences.highest(key))
    }

    /// Adds written losses to their counters.
    func count(_ losses: [LossRecord]) {
        for loss in losses {
            switch loss {
            case .agentDropped(let dropped, _): statistics.reportedDropped.addSaturating(dropped)
            case .sequenceGap: statistics.gapEvents.addSaturating(loss.count)
            case .range(_, _, .queueFull): statisticsV3.lostQueueFull.addSaturating(loss.count)
            case .range(_, _, .spoolEvicted): statisticsV3.lostSpoolEvicted.addSaturating(loss.count)
            case .range(_, _, .spoolCorrupt): statisticsV3.lostSpoolCorrupt.addSaturating(loss.count)
            case .range(_, _, .refused): statisticsV3.lostRefused.addSaturating(loss.count)
            case .range(_, _, .outputLost): statisticsV3.outputLost.addSaturating(loss.count)
            }
        }
    }

    // MARK: State

    /// Raises `key`'s highest sequence (never lowers it): what a checkpoint or
    /// the output read back at start says was handled.
    package func restore(_ key: AgentKey, highest: UInt64, dropReport: SequenceTracker.DropReport?) {
        sequences.record(key, highest: highest, dropReport: dropReport)
    }

    /// What a checkpoint said of a pair.
    package func restore(_ pair: TrackedPair) {
        sequences.restore(pair)
    }

    /// A boot_end line read back at start: the boot's end is not written again.
    package func restoreBootEnd(_ key: AgentKey) {
        sequences.recordBootEnd(key)
    }

    /// This collector's history started at `nanoseconds` without what came before
    /// (a start with neither checkpoint nor output, now or recorded earlier);
    /// `noted`: its `state_lost` line is already written.
    package func historyLost(at nanoseconds: UInt64, noted: Bool) {
        historyLostAt = historyLostAt ?? nanoseconds
        stateLostNoted = stateLostNoted || noted
    }

    /// The output was rotated: the new file holds no pair's lines yet.
    package func outputRotated() {
        sequences.outputRotated()
    }

    /// Every pair, least recently used first: what a checkpoint records.
    package var snapshot: [TrackedPair] {
        sequences.snapshot
    }

    /// A checkpoint now holds everything recorded so far.
    package func checkpointWritten() {
        checkpointNeeded = false
        eventsSinceCheckpoint = 0
    }

    /// Acknowledged events `first...last` of `key` are no longer in the output
    /// (found at start): a loss line `output_lost`, counted and logged.
    package func recordOutputLost(_ key: AgentKey, first: UInt64, last: UInt64) throws(SinkError) {
        let loss = LossRecord.range(first: first, last: last, reason: .outputLost)
        let now = clock()
        try Array(key.agentID.utf8).withUnsafeBytes { agent in
            Array(key.bootID.utf8).withUnsafeBytes { boot in
                Result { () throws(SinkError) in
                    let context = ReportContext(agentID: agent, bootID: boot, receivedNanoseconds: now, peer: nil)
                    try sink.write(events: [], losses: [loss], context: context)
                }
            }
        }.get()
        sequences.recordWritten(key, highest: last)
        count([loss])
        checkpointNeeded = true
        logger.error("acknowledged events are missing from the output", metadata: [
            "agent_id": LogValue.escaped(key.agentID), "boot_id": LogValue.escaped(key.bootID),
            "first_seq": "\(first)", "last_seq": "\(last)", "count": "\(loss.count)",
        ])
    }
}
