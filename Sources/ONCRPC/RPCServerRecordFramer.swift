/// Record marking (RFC 5531 §11) over a byte stream: bytes in, whole records
/// out. A record is one or more fragments, each behind a four-byte mark whose
/// top bit flags the record's last fragment and whose other 31 bits are the
/// fragment's length.
///
/// Pure: it never reads a socket. `StreamConnection` reads, then feeds what it
/// read, so the same bytes give the same records however they are split (what
/// the framer fuzz target checks, FuzzTargets/Sources/fuzz-framer).
///
/// Copy-free in the common case: a one-fragment record that lies wholly in the
/// fed bytes is handed over where it lies. Only a record split across feeds or
/// sent in several fragments is assembled in `record`, which grows with the
/// bytes actually received, never with what a mark claims.
final class RPCRecordFramer {
    enum Outcome: Equatable {
        /// Every byte fed was taken; more may come.
        case open
        /// A fragment would take its record past `maxRecordSize`: the record would
        /// be at least this many bytes.
        case recordTooLarge(Int)
        /// The consumer refused a record (it is not a call): the stream is out of step.
        case outOfStep
    }

    /// The largest record, all fragments, in bytes.
    let maxRecordSize: Int
    /// Once not `.open`, it stays so: the stream cannot be trusted after that point.
    private(set) var outcome = Outcome.open

    private let record = ByteBuffer()
    /// The first bytes of a mark that a feed ended inside, as a big-endian number.
    private var partialMark: UInt32 = 0
    private var partialMarkBytes = 0
    private var fragmentRemaining = 0
    private var inFragment = false
    private var lastFragment = false

    init(maxRecordSize: Int) {
        self.maxRecordSize = max(0, maxRecordSize)
    }

    /// The bytes of the record being assembled so far (empty in the copy-free case).
    var assembled: UnsafeRawBufferPointer { record.bytes }

    /// Takes `bytes`, the stream's next bytes: hands every record they complete to
    /// `consume`, which returns false for a record that is not a call (the framer
    /// then stops, `.outOfStep`), and then what has arrived of a record still
    /// incomplete to `partial`. Neither may keep the pointer it is given.
    func feed(_ bytes: UnsafeRawBufferPointer, _ consume: (UnsafeRawBufferPointer) -> Bool,
              partial: (UnsafeRawBufferPointer) -> Void = { _ in }) -> Outcome {
        guard outcome == .open else { return outcome }
        // Invariant: 0 <= offset <= bytes.count, so `bytes.count - offset` never overflows.
        var offset = 0
        while true {
            if !inFragment {
                guard let mark = takeMark(bytes, &offset) else { break }
                let length = Int(mark & 0x7FFF_FFFF)
                // Subtraction, not `record.count + length`: the cap may be Int.max.
                guard length <= maxRecordSize - record.count else {
                    // record.count is bytes held in memory and length < 2^31: the sum cannot overflow.
                    outcome = .recordTooLarge(record.count + length)
                    return outcome
                }
                fragmentRemaining = length
                lastFragment = mark & 0x8000_0000 != 0
                inFragment = true
                // The common case: a whole one-fragment record is already here; no copy.
                if lastFragment, record.count == 0, bytes.count - offset >= length {
                    inFragment = false
                    let whole = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
                    offset += length
                    guard consume(whole) else {
                        outcome = .outOfStep
                        return outcome
                    }
                    continue
                }
            }
            let take = min(fragmentRemaining, bytes.count - offset)
            if take > 0 {
                record.append(bytes.baseAddress! + offset, count: take)
                offset += take
                fragmentRemaining -= take
            }
            guard fragmentRemaining == 0 else { break }
            inFragment = false
            if lastFragment {
                let isCall = consume(record.bytes)
                // A record far above the usual size does not keep its memory while idle.
                if record.capacity > 1 << 20 { record.release() } else { record.count = 0 }
                guard isCall else {
                    outcome = .outOfStep
                    return outcome
                }
            }
        }
        if record.count > 0 { partial(record.bytes) }
        return .open
    }

    /// The next record mark: read in place when all four bytes are here, else
    /// gathered byte by byte across feeds. Nil when the bytes end inside it.
    private func takeMark(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> UInt32? {
        if partialMarkBytes == 0, bytes.count - offset >= 4 {
            let mark = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            offset += 4
            return mark
        }
        while partialMarkBytes < 4, offset < bytes.count {
            partialMark = partialMark << 8 | UInt32(bytes[offset])
            partialMarkBytes += 1
            offset += 1
        }
        guard partialMarkBytes == 4 else { return nil }
        defer {
            partialMark = 0
            partialMarkBytes = 0
        }
        return partialMark
    }
}
