import AuthRelayProtocol
import Logging

/// A batch on its way: what it is, where its events came from, what it lost.
struct PendingBatch {
    let cursor: BootCursor
    /// The cursor's position it was composed from (where a recomposition starts again).
    var start: UInt64
    var batch: EncodedBatch
    /// The version it was composed for (a loss range is said only in version 3).
    let version: ProtocolVersion
    /// Events read back from the spool (not from memory).
    var fromDisk = 0
    /// Sequences in it (or skipped before it) the spool evicted or found corrupt.
    var spoolLost: UInt64 = 0
    /// Version 1: events already acknowledged one by one.
    var eventsAcknowledged = 0
}

/// How big a batch may be.
struct BatchLimits {
    var version: ProtocolVersion
    var maxEvents: Int
    /// Bytes of the call's arguments (header, count, events).
    var maxArgumentBytes: Int
}

/// Builds the next batch of a boot from its cursor's position: the events
/// and losses that follow, in order, within the limits.
///
/// Version 3 puts the loss ranges in the header between the events. Version
/// 2 cannot say a range: a batch ends before a loss, and a batch that starts
/// at one starts after it instead, so the collector records the range as a
/// sequence gap (exact, without a reason); a trailing loss goes as a batch
/// with no events whose first_seq is past it. Version 1 has neither: its
/// losses are skipped.
enum BatchComposer {
    static func compose(_ cursor: BootCursor, limits: BatchLimits, status: AgentStatus, logger: Logger) -> PendingBatch? {
        var batch = EncodedBatch(agentID: cursor.agentID, bootID: cursor.bootID, firstSequence: cursor.position)
        batch.status = status
        var pending = PendingBatch(cursor: cursor, start: cursor.position, batch: batch, version: limits.version)
        var bytes = batch.argumentBytes(version: limits.version)
        var position = cursor.position
        compose: while pending.batch.eventCount < limits.maxEvents {
            guard case .piece(let found, let fromDisk) = cursor.piece(reaching: position) else { break }
            if found.first > position {
                // Numbers nothing holds (should not happen): the collector will see the gap.
                if pending.batch.eventCount > 0 || !pending.batch.losses.isEmpty { break }
                logger.error("skipping sequences nothing holds", metadata: ["first": "\(position)", "last": "\(found.first - 1)"])
                position = found.first
                pending.batch.firstSequence = position
                pending.batch.lastSequence = position - 1
            }
            guard let piece = found.from(position) else {
                // Encoded events that do not read (never written so): the rest of the piece is lost as corrupt.
                logger.error("spooled events do not decode", metadata: ["first": "\(position)", "last": "\(found.last)"])
                cursor.giveUp(position...found.last, reason: .spoolCorrupt)
                continue
            }
            switch piece.content {
            case .loss(let reason):
                if limits.version == .v3 {
                    guard pending.batch.losses.count < Event.maxLossRanges, bytes + WireSize.lossRange <= limits.maxArgumentBytes
                    else { break compose }
                    pending.batch.losses.append(LossRange(first: piece.first, last: piece.last, reason: reason))
                    bytes += WireSize.lossRange
                } else {
                    guard pending.batch.eventCount == 0 else { break compose }
                    pending.batch.firstSequence = piece.last + 1
                }
                if reason == .spoolEvicted || reason == .spoolCorrupt { pending.spoolLost += piece.last - piece.first + 1 }
                pending.batch.lastSequence = piece.last
                position = piece.last + 1
            case .events(let count, let slice):
                let room = limits.maxEvents - pending.batch.eventCount
                let alone = pending.batch.eventCount == 0 && pending.batch.losses.isEmpty
                let (taken, end) = fitting(slice, count: min(count, room), bytes: limits.maxArgumentBytes - bytes, atLeastOne: alone)
                guard taken > 0 else { break compose }
                pending.batch.events.append(contentsOf: slice[slice.startIndex..<end])
                pending.batch.eventCount += taken
                bytes += end - slice.startIndex
                if fromDisk { pending.fromDisk += taken }
                pending.batch.lastSequence = piece.first + UInt64(taken) - 1
                position = pending.batch.lastSequence + 1
                if taken < count { break compose }
            }
        }
        guard position > cursor.position else { return nil }
        cursor.position = position
        return pending
    }

    /// How many of the `count` events at the start of `slice` fit in `bytes`
    /// (at least one when `atLeastOne`: a single event always fits a call), and where they end.
    private static func fitting(_ slice: ArraySlice<UInt8>, count: Int, bytes: Int, atLeastOne: Bool) -> (Int, Int) {
        slice.withUnsafeBytes { raw in
            var taken = 0
            var offset = 0
            while taken < count, let length = EventXDR.length(in: raw, at: offset) {
                if offset + length > bytes && !(atLeastOne && taken == 0) { break }
                offset += length
                taken += 1
            }
            return (taken, slice.startIndex + offset)
        }
    }
}
