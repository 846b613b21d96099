/// One segment file as the spool knows it.
struct SegmentInfo {
    var firstSequence: UInt64
    /// The last sequence in it; nil when it holds nothing that reads.
    var lastSequence: UInt64?
    /// Bytes on disk (for the open segment: what was written completely).
    var bytes: Int64
    var createdNanoseconds: UInt64
    /// From its header: the boot's last sequence before it.
    var previousLastSequence: UInt64?
    var path: String
}

/// One boot directory: its segments, the losses recorded for it, its end.
final class BootRecord {
    let bootID: String
    var agentID: String
    let directory: String
    let isCurrent: Bool
    var clean: Bool
    /// From `state`: the last sequence at a clean stop.
    var stateLastSequence: UInt64?
    var endedNanoseconds: UInt64
    var acknowledgedThrough: UInt64?
    /// Ascending by first sequence.
    var segments: [SegmentInfo] = []
    /// Evicted and corrupt ranges (and LOSS records of evicted segments):
    /// ascending and disjoint, as `losses` holds them.
    var losses: [SpoolLoss] = []
    var lossesBytes: Int64 = 0
    /// Records in the file (more than `losses` once ranges merged).
    var lossRecordsOnDisk = 0

    init(bootID: String, agentID: String, directory: String, isCurrent: Bool, clean: Bool, endedNanoseconds: UInt64) {
        self.bootID = bootID
        self.agentID = agentID
        self.directory = directory
        self.isCurrent = isCurrent
        self.clean = clean
        self.endedNanoseconds = endedNanoseconds
    }

    var lossesPath: String { directory + "/" + SpoolFormat.lossesName }

    var segmentBytes: Int64 { segments.reduce(0) { $0 + $1.bytes } }

    /// The highest sequence the spool knows of for this boot.
    var lastSequence: UInt64? {
        let candidates = [segments.compactMap(\.lastSequence).max(), losses.last?.last, clean ? stateLastSequence : nil]
        return candidates.compactMap { $0 }.max()
    }

    /// The lowest sequence still held above the acknowledged ones.
    var firstUnacknowledged: UInt64? {
        let floor = acknowledgedThrough.map { $0 &+ 1 } ?? 0
        let fromLosses = losses.first { $0.last >= floor }.map { max($0.first, floor) }
        let fromSegments = segments.first { ($0.lastSequence ?? 0) >= floor && $0.lastSequence != nil }.map { max($0.firstSequence, floor) }
        return [fromLosses, fromSegments].compactMap { $0 }.min()
    }

    /// When its oldest segment got its first record (orders boots for eviction).
    var oldestNanoseconds: UInt64 { segments.first?.createdNanoseconds ?? endedNanoseconds }

    var summary: SpoolBoot {
        SpoolBoot(agentID: agentID, bootID: bootID, ending: clean ? .clean : .unclean, lastSequence: lastSequence,
                  firstUnacknowledged: firstUnacknowledged, endedNanoseconds: endedNanoseconds)
    }

    /// Adds `loss` but for what a recorded range already covers: the pieces
    /// that are new, to be written to `losses` and counted.
    func newPieces(of loss: SpoolLoss) -> [SpoolLoss] {
        var pieces: [SpoolLoss] = []
        var next = loss.first
        for recorded in losses where recorded.last >= loss.first && recorded.first <= loss.last {
            if recorded.first > next { pieces.append(SpoolLoss(first: next, last: recorded.first - 1, reason: loss.reason)) }
            if recorded.last >= loss.last { return pieces }
            next = recorded.last + 1
        }
        if next <= loss.last { pieces.append(SpoolLoss(first: next, last: loss.last, reason: loss.reason)) }
        return pieces
    }

    /// Forgets the ranges wholly at or below `through`: the collector has
    /// acknowledged them, so no reader needs them again. Without this a long
    /// boot with outages between deliveries grows `losses` past the spool's
    /// cap (evictions apart do not merge). The last range stays: it may be
    /// the only record of the boot's highest sequence.
    func forgetLosses(through: UInt64) {
        guard losses.count > 1 else { return }
        let last = losses.removeLast()
        losses.removeAll { $0.last <= through }
        losses.append(last)
    }

    /// Inserts ranges known to be disjoint from every recorded one; ranges
    /// that touch with the same reason become one (consecutive evictions
    /// read as one loss, as a batch header wants them).
    func insert(_ pieces: [SpoolLoss]) {
        guard !pieces.isEmpty else { return }
        losses.append(contentsOf: pieces)
        losses.sort { $0.first < $1.first }
        var merged: [SpoolLoss] = []
        for loss in losses {
            if let previous = merged.last, previous.reason == loss.reason, previous.last &+ 1 == loss.first {
                merged[merged.count - 1].last = loss.last
            } else {
                merged.append(loss)
            }
        }
        losses = merged
    }

    /// The first recorded range that reaches `sequence` or beyond.
    func recordedLoss(reaching sequence: UInt64) -> SpoolLoss? {
        losses.first { $0.last >= sequence }
    }
}
