import Glibc
import SystemSupport

/// Reads one boot's spool in sequence order: its records, with the ranges
/// lost in the spool (evicted segments, damage) in their places. Reads whole
/// segments in big preads into one buffer; a record's payload is a view into
/// it, valid until the next call. Used by one thread (the delivery thread);
/// it takes the spool's lock only to look at the catalog, never while it reads.
///
/// Damage is bounded exactly: a corrupt range runs from the sequence after
/// the last good record to the one before the next good record, or to the
/// segment's last sequence (the next segment's header says it). It is
/// recorded in the boot's `losses` and counted once, however often it is read.
package final class SpoolReader {
    private let spool: Spool
    package let bootID: String
    /// The next sequence to account for: everything below was yielded.
    package private(set) var position: UInt64
    private let buffer = ReadBuffer(capacity: 1 << 20)
    private var scanner: RecordScanner?
    private var segment: SegmentRef?
    /// The first sequence of the last segment opened: the next one is after it.
    private var previousSegment: UInt64?
    private var pending: Item?

    /// What the segment side found next.
    private struct Item {
        enum Kind {
            case events(count: UInt32, payload: UnsafeRawBufferPointer)
            case loss(SpoolLossReason)
            case corrupt
        }
        var first: UInt64
        var last: UInt64
        var kind: Kind
    }

    init(spool: Spool, bootID: String, from sequence: UInt64) {
        self.spool = spool
        self.bootID = bootID
        self.position = sequence
    }

    /// Starts again from `sequence` (a batch that was not acknowledged).
    package func rewind(to sequence: UInt64) {
        position = sequence
        scanner = nil
        segment = nil
        previousSegment = nil
        pending = nil
    }

    /// The next record at or after `position`; nil when there is nothing more
    /// now (for the current boot, more may come; for an earlier one, it is done).
    package func next() throws(SpoolError) -> SpoolRecord? {
        while true {
            if pending == nil {
                do { pending = try nextItem() } catch { throw .unreadable(error) }
            }
            let position = self.position
            let recorded = spool.locked { $0.boot(bootID)?.recordedLoss(reaching: position) }
            if let recorded, pending.map({ max(recorded.first, position) <= $0.first }) ?? true {
                self.position = recorded.last &+ 1
                return .loss(SpoolLoss(first: max(recorded.first, position), last: recorded.last, reason: recorded.reason))
            }
            guard let item = pending else { return nil }
            pending = nil
            if item.last < position { continue }
            self.position = item.last &+ 1
            switch item.kind {
            case .events(let count, let payload):
                return .events(firstSequence: item.first, count: count, payload: payload)
            case .loss(let reason):
                return .loss(SpoolLoss(first: max(item.first, position), last: item.last, reason: reason))
            case .corrupt:
                let loss = SpoolLoss(first: item.first, last: item.last, reason: .corrupt)
                spool.locked { $0.noteCorrupt(loss, bootID: bootID) }
                return .loss(SpoolLoss(first: max(item.first, position), last: item.last, reason: .corrupt))
            }
        }
    }

    /// The next item of the segments, or nil when they hold nothing more now.
    private func nextItem() throws(SystemError) -> Item? {
        while true {
            guard let scanner, let segment else {
                guard try openNextSegment() else { return nil }
                continue
            }
            switch try scanner.next() {
            case .events(let first, let count, let payload):
                return Item(first: first, last: first + UInt64(count) - 1, kind: .events(count: count, payload: payload))
            case .loss(let loss):
                return Item(first: loss.first, last: loss.last, kind: .loss(loss.reason))
            case .damaged(_, let firstLost, let nextFirst?):
                if nextFirst > firstLost { return Item(first: firstLost, last: nextFirst - 1, kind: .corrupt) }
            case .damaged(_, let firstLost, nil), .torn(_, let firstLost):
                if let last = segment.lastSequence, last >= firstLost { return Item(first: firstLost, last: last, kind: .corrupt) }
            case .end:
                if segment.isOpen {
                    // The segment being written: read on when it grew or was closed meanwhile.
                    let now = spool.locked { $0.segment(bootID: bootID, first: segment.firstSequence) }
                    guard let now else {
                        // Evicted meanwhile (its range is a recorded loss now): on to the next one.
                        self.scanner = nil
                        self.segment = nil
                        continue
                    }
                    guard now.limit > scanner.limit || !now.isOpen else { return nil }
                    scanner.limit = now.limit
                    scanner.segmentLast = now.lastSequence
                    self.segment = now
                    continue
                }
                let floor = scanner.floor
                self.scanner = nil
                self.segment = nil
                // A file shorter than its records were (damaged outside the spool).
                if let last = segment.lastSequence, last >= floor, scanner.lastGood.map({ $0 < last }) ?? true {
                    return Item(first: floor, last: last, kind: .corrupt)
                }
            }
        }
    }

    /// Opens the next segment that reaches `position`; false when there is none.
    private func openNextSegment() throws(SystemError) -> Bool {
        while true {
            let position = self.position, previous = previousSegment
            guard let next = spool.locked({ $0.segmentToRead(bootID: bootID, from: position, after: previous) }) else {
                return false
            }
            previousSegment = next.firstSequence
            let file: FileDescriptor
            do {
                file = try FileDescriptor.open(next.path, O_RDONLY)
            } catch where error.errno == ENOENT {
                continue  // evicted or acknowledged meanwhile
            }
            scanner = RecordScanner(file: file, buffer: buffer, limit: next.limit, segmentFirst: next.firstSequence,
                                    segmentLast: next.lastSequence)
            segment = next
            return true
        }
    }
}
