import SystemSupport
import AuthRelayProtocol
import Synchronization

/// Numbered events (or a loss range) as the spooler stored them: one spool
/// record's worth.
struct StoredPiece: Sendable {
    enum Content: Sendable {
        /// `count` encoded events (`EventXDR`), numbered `first...last`.
        case events(count: Int, bytes: ArraySlice<UInt8>)
        case loss(LossReason)
    }

    var first: UInt64
    var last: UInt64
    var content: Content

    var eventCount: Int {
        if case .events(let count, _) = content { return count }
        return 0
    }

    var byteCount: Int {
        if case .events(_, let bytes) = content { return bytes.count }
        return 0
    }

    /// The part of it from `sequence` on (nil when it ends below).
    func from(_ sequence: UInt64) -> StoredPiece? {
        guard last >= sequence else { return nil }
        guard first < sequence else { return self }
        switch content {
        case .loss:
            return StoredPiece(first: sequence, last: last, content: content)
        case .events(let count, let bytes):
            let skip = Int(sequence - first)
            var offset = bytes.startIndex
            let lengthsKnown = bytes.withUnsafeBytes { raw -> Bool in
                var position = 0
                for _ in 0..<skip {
                    guard let length = EventXDR.length(in: raw, at: position) else { return false }
                    position += length
                }
                offset += position
                return true
            }
            guard lengthsKnown else { return nil }
            return StoredPiece(first: sequence, last: last, content: .events(count: count - skip, bytes: bytes[offset...]))
        }
    }
}

/// The delivery thread's window onto what the spooler stored last: pieces in
/// sequence order, so live events go to the collector from memory, not read
/// back from the disk. Bounded: a piece that is on disk is offered only while
/// the window holds under `liveBytes` (the delivery reads the rest back from
/// the spool); a piece that is only here (the spool unusable) is kept while
/// the window holds under `memoryBytes`, and the spooler waits for room.
/// Losses always fit (they are a few bytes).
final class DeliveryWindow: Sendable {
    struct Entry: Sendable {
        var piece: StoredPiece
        /// Also in the spool: may be dropped from here and read back from there.
        var onDisk: Bool
    }

    private struct State {
        var entries: [Entry] = []
        /// entries[head...] are live (removed from the front without moving the rest each time).
        var head = 0
        var bytes = 0
    }

    let liveBytes: Int
    let memoryBytes: Int
    private let state = Locked(State())

    init(liveBytes: Int, memoryBytes: Int) {
        self.liveBytes = liveBytes
        self.memoryBytes = memoryBytes
    }

    /// Adds `piece` (sequences above everything held); false when it does not fit.
    @discardableResult
    func offer(_ piece: StoredPiece, onDisk: Bool) -> Bool {
        state.withLock { state in
            let limit = onDisk ? liveBytes : memoryBytes
            if piece.byteCount > 0 && state.bytes > 0 && state.bytes + piece.byteCount > limit { return false }
            state.entries.append(Entry(piece: piece, onDisk: onDisk))
            state.bytes += piece.byteCount
            return true
        }
    }

    /// Whether a piece of `bytes` kept only in memory would fit now.
    func hasRoomInMemory(_ bytes: Int) -> Bool {
        state.withLock { $0.bytes == 0 || $0.bytes + bytes <= memoryBytes }
    }

    /// The first entry that reaches `sequence` or beyond.
    func entry(reaching sequence: UInt64) -> Entry? {
        state.withLock { state in
            state.entries[state.head...].first { $0.piece.last >= sequence }
        }
    }

    /// Forgets everything at or below `sequence` (acknowledged).
    func discard(through sequence: UInt64) {
        state.withLock { state in
            while state.head < state.entries.count, state.entries[state.head].piece.last <= sequence {
                state.bytes -= state.entries[state.head].piece.byteCount
                state.head += 1
            }
            if state.head > 64 && state.head * 2 > state.entries.count {
                state.entries.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    /// Events held here and nowhere else (lost if the agent stopped now).
    var memoryOnlyEvents: UInt64 {
        state.withLock { state in
            state.entries[state.head...].reduce(0) { $0 + ($1.onDisk ? 0 : UInt64($1.piece.eventCount)) }
        }
    }
}
