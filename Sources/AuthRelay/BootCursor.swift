import AuthRelayProtocol
import AuthRelaySpool
import Logging

/// What a boot's source has at a sequence.
enum SourceAnswer {
    /// The piece holding the sequence, or the next one above it; from the disk or from memory.
    case piece(StoredPiece, fromDisk: Bool)
    /// Nothing there now (for an earlier boot: nothing more ever).
    case nothing
    /// The spool could not be read; try again later.
    case failed(SpoolError)
}

/// Reads one boot's spooled pieces in order through a `SpoolReader`,
/// copying each out of the reader's buffer, and keeps the last one read so a
/// batch that stops inside it goes on from there without reading again.
final class SpoolSource {
    private let reader: SpoolReader
    /// The last piece read, and the sequence it was read for: nothing lies between the two.
    private var lookahead: (piece: StoredPiece, askedFor: UInt64)?

    init(spool: Spool, boot: String?, from sequence: UInt64) {
        reader = spool.reader(boot: boot, from: sequence)
    }

    func piece(reaching sequence: UInt64) -> SourceAnswer {
        if let (piece, askedFor) = lookahead, sequence >= askedFor, sequence <= piece.last {
            return .piece(piece, fromDisk: true)
        }
        lookahead = nil
        if reader.position != sequence { reader.rewind(to: sequence) }
        do {
            while let record = try reader.next() {
                let piece: StoredPiece
                switch record {
                case .events(let first, let count, let payload):
                    piece = StoredPiece(first: first, last: first + UInt64(count) - 1,
                                        content: .events(count: Int(count), bytes: ArraySlice(payload)))
                case .loss(let loss):
                    piece = StoredPiece(first: loss.first, last: loss.last, content: .loss(LossReason(loss.reason)))
                }
                if piece.last < sequence { continue }
                lookahead = (piece, sequence)
                return .piece(piece, fromDisk: true)
            }
            return .nothing
        } catch {
            return .failed(error)
        }
    }
}

/// One boot the delivery thread delivers: an earlier run found in the spool
/// (its own agent id, boot id and numbers), or this run. It knows where the
/// next batch starts, what the collector acknowledged, and the ranges a
/// collector refused (reported as `refused` losses over version 3).
final class BootCursor {
    let agentID: String
    let bootID: String
    let isCurrent: Bool
    /// The next sequence to put in a batch.
    var position: UInt64
    /// Everything at or below it is acknowledged (or given up on).
    var acknowledged: UInt64
    /// Ranges given up on (a version 3 collector refused them, or they do not
    /// decode): from now on the losses they are, with their reason.
    private var givenUp: [(range: ClosedRange<UInt64>, reason: LossReason)] = []
    /// An earlier boot: its last sequence (to acknowledge when it is done).
    let lastSequence: UInt64?

    private var spoolSource: SpoolSource?
    private let window: DeliveryWindow?
    private let logger: Logger

    /// An earlier boot, read from the spool only.
    init(earlier boot: SpoolBoot, spool: Spool, logger: Logger) {
        agentID = boot.agentID
        bootID = boot.bootID
        isCurrent = false
        let first = boot.firstUnacknowledged ?? 1
        position = first
        acknowledged = first - 1
        lastSequence = boot.lastSequence
        spoolSource = SpoolSource(spool: spool, boot: boot.bootID, from: first)
        window = nil
        self.logger = logger
    }

    /// This run: the window first, the spool (once open) for what the window does not hold.
    init(current agentID: String, bootID: String, window: DeliveryWindow, logger: Logger) {
        self.agentID = agentID
        self.bootID = bootID
        isCurrent = true
        position = 1
        acknowledged = 0
        lastSequence = nil
        spoolSource = nil
        self.window = window
        self.logger = logger
    }

    /// The spool opened (at last): this run's earlier records are read back from it.
    func attach(_ spool: Spool) {
        if spoolSource == nil { spoolSource = SpoolSource(spool: spool, boot: nil, from: position) }
    }

    /// The piece at `sequence` (or the next one above it).
    func piece(reaching sequence: UInt64) -> SourceAnswer {
        if let (range, reason) = givenUp.first(where: { $0.range.contains(sequence) }) {
            return .piece(StoredPiece(first: sequence, last: range.upperBound, content: .loss(reason)), fromDisk: false)
        }
        guard let window else { return spoolSource?.piece(reaching: sequence) ?? .nothing }
        let held = window.entry(reaching: sequence)
        if let held, held.piece.first <= sequence { return .piece(held.piece, fromDisk: false) }
        switch spoolSource?.piece(reaching: sequence) ?? .nothing {
        case .piece(let disk, _) where disk.first <= sequence:
            return .piece(disk, fromDisk: true)
        case .piece(let disk, _):
            // The spool skips numbers it never got (kept in memory while it was unusable):
            // the window holds them; it got them before the later ones reached the disk.
            if let again = window.entry(reaching: sequence), again.piece.first < disk.first {
                return .piece(again.piece, fromDisk: false)
            }
            logger.error("sequences neither spooled nor in memory", metadata: ["first": "\(sequence)", "last": "\(disk.first - 1)"])
            return .piece(disk, fromDisk: true)
        case .failed(let error):
            return held.map { .piece($0.piece, fromDisk: false) } ?? .failed(error)
        case .nothing:
            return held.map { .piece($0.piece, fromDisk: false) } ?? .nothing
        }
    }

    /// Everything in `range` is lost for `reason` (sent as that loss from now on).
    func giveUp(_ range: ClosedRange<UInt64>, reason: LossReason) {
        givenUp.append((range, reason))
    }

    /// The collector acknowledged (or the sender gave up on) everything through `sequence`.
    func acknowledge(through sequence: UInt64) {
        acknowledged = max(acknowledged, sequence)
        givenUp.removeAll { $0.range.upperBound <= sequence }
        window?.discard(through: sequence)
    }
}
