import AuthRelayProtocol
import Logging
import ONCRPC

/// What the collector does with each report, over Swift values: who may
/// report, de-duplication per (agent id, boot id), loss records, the sink
/// write, the counters, and the answer. No process, no RPC, no files of its
/// own: `CollectorService` gives it the sink and checkpoints what it holds;
/// the handlers (ReportHandlers.swift) turn the decoded calls into
/// `ReceivedBatch` and `ReceivedEvent` and the answers back into C results.
///
/// Not thread-safe: the RPC server's thread calls it.
package final class CollectorCore {
    /// The collector's own counters (GET_STATS adds the server's).
    package private(set) var statistics = CollectorStats()
    /// Empty: anyone who reaches a listener. Not empty: only these uids, over the unix socket.
    package let allowedUIDs: Set<UInt32>
    /// Something was recorded since the last checkpoint.
    package private(set) var checkpointNeeded = false
    /// Events written since the last checkpoint.
    package private(set) var eventsSinceCheckpoint: UInt64 = 0

    private let sink: any EventSink
    private var sequences: SequenceTracker
    private let logger: Logger
    /// CLOCK_REALTIME: `received_ns` and the start time.
    private let clock: () -> UInt64

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
        statistics.events += UInt64(count)
        guard isAuthorized(peer) else {
            statistics.rejected += 1
            return BatchAck(status: .unauthorized, accepted: 0, duplicates: 0, highestSequence: 0)
        }
        let first = batch.firstSequence
        // The highest sequence this batch accounts for; a batch with no events
        // (sent only to report drops) accounts for the ones before first_seq.
        let (last, overflow) = (first &- 1).addingReportingOverflow(UInt64(count))
        guard first > 0, !overflow, batch.isContiguous else {
            statistics.rejected += 1
            return BatchAck(status: .rejected, accepted: 0, duplicates: 0, highestSequence: 0)
        }
        let key = batch.key
        let highest = sequences.highest(key)
        guard count == 0 || last > highest else {
            statistics.batches += 1
            statistics.duplicates += UInt64(count)
            return BatchAck(status: .ok, accepted: 0, duplicates: UInt32(count), highestSequence: highest)
        }
        let duplicates = count > 0 && first <= highest ? Int(highest - first + 1) : 0
        var losses: [LossRecord] = []
        var dropReport: SequenceTracker.DropReport?
        if first > highest {
            // Counted once: a retry of this batch starts at or below the new highest,
            // or (with no events) repeats the drop report recorded last.
            if first > highest + 1 { losses.append(.sequenceGap(first: highest + 1, last: first - 1)) }
            let report = SequenceTracker.DropReport(beforeSequence: first, count: batch.dropped)
            if batch.dropped > 0, sequences.lastDropReport(key) != report {
                losses.append(.agentDropped(count: batch.dropped, beforeSequence: first))
                dropReport = report
            }
        }
        guard count > 0 || !losses.isEmpty else {
            statistics.batches += 1
            return BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: highest)
        }
        let context = ReportContext(agentID: batch.agentID, bootID: batch.bootID, receivedNanoseconds: clock(), peer: peer)
        do {
            try sink.write(events: batch.events[(batch.events.startIndex + duplicates)...], losses: losses, context: context)
        } catch {
            statistics.sinkErrors += 1
            logger.error("batch not stored: \(error)", metadata: ["agent_id": "\(key.agentID)", "first_seq": "\(first)"])
            return BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: highest)
        }
        sequences.record(key, highest: max(last, highest), dropReport: dropReport)
        let written = UInt64(count - duplicates)
        statistics.batches += 1
        statistics.written += written
        statistics.duplicates += UInt64(duplicates)
        for loss in losses {
            switch loss {
            case .agentDropped(let dropped, _): statistics.reportedDropped += dropped
            case .sequenceGap(let gapFirst, let gapLast): statistics.gapEvents += gapLast - gapFirst + 1
            }
        }
        if !losses.isEmpty {
            logger.notice("events lost", metadata: ["agent_id": "\(key.agentID)", "boot_id": "\(key.bootID)", "losses": "\(losses)"])
        }
        checkpointNeeded = true
        eventsSinceCheckpoint += written
        return BatchAck(status: .ok, accepted: UInt32(written), duplicates: UInt32(duplicates), highestSequence: max(last, highest))
    }

    /// Version 1 REPORT_EVENT. Version 1 has no agent or boot id: nothing to
    /// de-duplicate by; written as "legacy".
    package func reportEvent(_ event: ReceivedEvent, from peer: PeerCredentials?) -> Ack {
        statistics.events += 1
        statistics.legacyEvents += 1
        guard isAuthorized(peer) else {
            statistics.rejected += 1
            return Ack(status: .unauthorized, sequence: event.sequence)
        }
        let context = ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: clock(), peer: peer)
        do {
            try sink.writeLegacy(event, context: context)
        } catch {
            statistics.sinkErrors += 1
            logger.error("event not stored: \(error)")
            return Ack(status: .sinkError, sequence: event.sequence)
        }
        statistics.written += 1
        return Ack(status: .ok, sequence: event.sequence)
    }

    /// Without --allow-uid anyone who reaches a listener may report. With it,
    /// only unix socket callers whose kernel-reported uid is listed: an AUTH_SYS
    /// uid over TCP or UDP is only the caller's claim.
    private func isAuthorized(_ peer: PeerCredentials?) -> Bool {
        guard !allowedUIDs.isEmpty else { return true }
        guard let peer else { return false }
        return allowedUIDs.contains(peer.uid)
    }

    // MARK: State

    /// Raises `key`'s highest sequence (never lowers it): what a checkpoint or
    /// the output read back at start says was handled.
    package func restore(_ key: AgentKey, highest: UInt64, dropReport: SequenceTracker.DropReport?) {
        sequences.record(key, highest: highest, dropReport: dropReport)
    }

    /// Every pair, least recently used first: what a checkpoint records.
    package var snapshot: [(key: AgentKey, highest: UInt64, dropReport: SequenceTracker.DropReport?)] {
        sequences.snapshot
    }

    /// A checkpoint now holds everything recorded so far.
    package func checkpointWritten() {
        checkpointNeeded = false
        eventsSinceCheckpoint = 0
    }
}
