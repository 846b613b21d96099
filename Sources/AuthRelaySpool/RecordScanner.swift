import Glibc
import SystemSupport

/// Bytes of one file, read in big preads; reused from file to file so a
/// reader allocates once, not per record.
final class ReadBuffer {
    private(set) var storage: UnsafeMutableRawBufferPointer
    /// The file offset of storage[0] and how many bytes from there are valid.
    var fileOffset: Int64 = 0
    var count = 0

    init(capacity: Int) {
        storage = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    func invalidate() { count = 0 }

    /// Room for at least `bytes` (a record larger than the buffer).
    func reserve(_ bytes: Int) {
        guard bytes > storage.count else { return }
        storage.deallocate()
        storage = .allocate(byteCount: max(bytes, storage.count * 2), alignment: 16)
        count = 0
    }
}

/// What a scanner found next.
enum ScanItem {
    case events(first: UInt64, count: UInt32, payload: UnsafeRawBufferPointer)
    case loss(SpoolLoss)
    /// Bytes from `offset` do not read as records (a failed checksum, an
    /// impossible field). `firstLost` is the first sequence they may have
    /// held; `nextFirst` the first of the next record that reads correctly,
    /// where the scanner now stands, or nil when none does to the end.
    case damaged(offset: Int64, firstLost: UInt64, nextFirst: UInt64?)
    /// The record at `offset` runs past the end and no good record follows:
    /// a write cut short by a crash. The scanner stands at the end.
    case torn(offset: Int64, firstLost: UInt64)
    case end
}

/// Walks the records of one segment or losses file from its header on.
/// Records are contiguous within a segment, so damage is bounded exactly by
/// the last good record before it and the first good one after it; finding
/// the one after means trying each later offset, cheap checks first, the
/// checksum last (the chance a random offset passes all of it is far below 2^-32).
final class RecordScanner {
    let file: FileDescriptor
    let buffer: ReadBuffer
    /// Bytes that may be read: the committed end (an open segment grows).
    var limit: Int64
    /// The next record's offset.
    private(set) var offset: Int64
    let segmentFirst: UInt64
    /// The segment's last sequence when known: bounds what a resync may accept.
    var segmentLast: UInt64?
    /// Records rise (a segment) or come in any order (a losses file).
    let ordered: Bool
    /// The last sequence of the last good record.
    private(set) var lastGood: UInt64?

    init(file: consuming FileDescriptor, buffer: ReadBuffer, limit: Int64, segmentFirst: UInt64, segmentLast: UInt64?,
         ordered: Bool = true) {
        self.file = file
        self.buffer = buffer
        self.limit = limit
        self.offset = Int64(SpoolFormat.fileHeaderBytes)
        self.segmentFirst = segmentFirst
        self.segmentLast = segmentLast
        self.ordered = ordered
        buffer.invalidate()
    }

    /// The lowest sequence the next record may start at.
    var floor: UInt64 { ordered ? lastGood.map { $0 &+ 1 } ?? segmentFirst : 0 }

    func next() throws(SystemError) -> ScanItem {
        if offset >= limit { return .end }
        let at = offset
        if let item = try record(at: at, resyncing: false) {
            return item
        }
        let firstLost = floor
        if let (good, first) = try resync(after: at) {
            offset = good
            return .damaged(offset: at, firstLost: firstLost, nextFirst: first)
        }
        offset = limit
        if try runsPastEnd(at) { return .torn(offset: at, firstLost: firstLost) }
        return .damaged(offset: at, firstLost: firstLost, nextFirst: nil)
    }

    /// The record at `at` when it reads correctly (and the scanner moves past it).
    private func record(at: Int64, resyncing: Bool) throws(SystemError) -> ScanItem? {
        guard let head = try bytes(at: at, count: SpoolFormat.recordHeaderBytes) else { return nil }
        let length = Int(head.littleEndian(UInt32.self, at: 0))
        let kind = SpoolFormat.RecordKind(rawValue: head[8])
        let first = head.littleEndian(UInt64.self, at: 9)
        let count = head.littleEndian(UInt32.self, at: 17)
        guard length >= SpoolFormat.recordHeaderBytes - SpoolFormat.frameBytes,
              length + SpoolFormat.frameBytes <= SpoolFormat.maxRecordBytes,
              at + Int64(SpoolFormat.frameBytes + length) <= limit,
              let kind, count > 0, first >= floor else { return nil }
        if let segmentLast, first > segmentLast { return nil }
        if kind == .loss && length != SpoolFormat.recordHeaderBytes - SpoolFormat.frameBytes + SpoolFormat.lossPayloadBytes { return nil }
        guard let whole = try bytes(at: at, count: SpoolFormat.frameBytes + length),
              SpoolRecordEncoding.checksum(whole) == whole.littleEndian(UInt32.self, at: 4) else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: whole[SpoolFormat.recordHeaderBytes...])
        let item: ScanItem
        switch kind {
        case .events:
            let (last, overflow) = first.addingReportingOverflow(UInt64(count) - 1)
            guard !overflow else { return nil }
            lastGood = last
            item = .events(first: first, count: count, payload: payload)
        case .loss:
            let last = payload.littleEndian(UInt64.self, at: 0)
            guard last >= first, let reason = SpoolLossReason(rawValue: payload.littleEndian(UInt32.self, at: 8)) else { return nil }
            lastGood = last
            item = .loss(SpoolLoss(first: first, last: last, reason: reason))
        }
        if !resyncing { offset = at + Int64(whole.count) }
        return item
    }

    /// The offset and first sequence of the next record after `at` that reads correctly.
    private func resync(after at: Int64) throws(SystemError) -> (Int64, UInt64)? {
        var candidate = at + 1
        let saved = lastGood
        while candidate + Int64(SpoolFormat.recordHeaderBytes) <= limit {
            if let item = try record(at: candidate, resyncing: true) {
                lastGood = saved  // the caller reads it again from there
                switch item {
                case .events(let first, _, _): return (candidate, first)
                case .loss(let loss): return (candidate, loss.first)
                default: return nil
                }
            }
            candidate += 1
        }
        return nil
    }

    /// Whether the record at `at` claims more bytes than the file has: a cut-short write.
    private func runsPastEnd(_ at: Int64) throws(SystemError) -> Bool {
        guard let frame = try bytes(at: at, count: SpoolFormat.frameBytes) else { return true }
        return at + Int64(SpoolFormat.frameBytes) + Int64(frame.littleEndian(UInt32.self, at: 0)) > limit
    }

    /// Bytes [position, position + count) of the file, read into the buffer
    /// when not there already; nil when they pass the end.
    private func bytes(at position: Int64, count: Int) throws(SystemError) -> UnsafeRawBufferPointer? {
        guard position + Int64(count) <= limit else { return nil }
        if position >= buffer.fileOffset && position + Int64(count) <= buffer.fileOffset + Int64(buffer.count) {
            let start = Int(position - buffer.fileOffset)
            return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer.storage)[start..<(start + count)])
        }
        buffer.reserve(count)
        buffer.fileOffset = position
        buffer.count = 0
        let wanted = Int(min(Int64(buffer.storage.count), limit - position))
        while buffer.count < wanted {
            let room = UnsafeMutableRawBufferPointer(rebasing: buffer.storage[buffer.count..<wanted])
            let got = try file.read(into: room, at: position + Int64(buffer.count))
            if got == 0 {
                limit = position + Int64(buffer.count)  // the file is shorter than it was said to be
                break
            }
            buffer.count += got
        }
        guard buffer.count >= count else { return nil }
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer.storage)[0..<count])
    }
}
