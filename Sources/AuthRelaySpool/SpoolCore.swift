import Glibc
import SystemSupport

/// The segment being appended to.
final class SegmentWriter {
    let file: FileDescriptor
    let firstSequence: UInt64
    /// Bytes written completely: a reader reads no further, a failed write is cut back to it.
    var bytes: Int64
    /// Written since the last fdatasync.
    var dirty = false

    init(file: consuming FileDescriptor, firstSequence: UInt64, bytes: Int64) {
        self.file = file
        self.firstSequence = firstSequence
        self.bytes = bytes
    }
}

/// Where a reader finds a segment, as of one look under the lock.
struct SegmentRef {
    let firstSequence: UInt64
    let lastSequence: UInt64?
    let path: String
    /// Bytes that hold complete records.
    let limit: Int64
    /// Still being appended to: it may grow.
    let isOpen: Bool
}

/// Everything the spool's one lock guards: the catalog of boots and
/// segments, the open segment, the counters. Only `Spool` (and its readers,
/// through it) touch it, always under the lock.
final class SpoolCore {
    let configuration: SpoolConfiguration
    /// Earlier boots oldest first, the current one last.
    var boots: [BootRecord]
    var current: BootRecord { boots[boots.count - 1] }
    var writer: SegmentWriter?
    /// The lowest sequence the current boot may append next.
    var nextSequence: UInt64?
    /// Set by a failed write: nothing is written until a reopen succeeds.
    var failure: SystemError?
    var closed = false
    var counters = SpoolStats()
    var totalBytes: Int64 = 0
    /// The directory's lock, held while the spool is open, and which file it is.
    var lock: FileDescriptor?
    var lockIdentity: [UInt64]?
    private var scratch: [UInt8] = []
    private var directoryNeedsSync = false
    private var lastSyncNanoseconds: UInt64 = 0
    private lazy var evictionBuffer = ReadBuffer(capacity: 1 << 20)

    init(configuration: SpoolConfiguration, boots: [BootRecord], lock: consuming FileDescriptor) {
        self.configuration = configuration
        self.boots = boots
        self.lock = Optional(consume lock)
        lockIdentity = SpoolDirectory.lockIdentity(in: configuration.directory)
        lastSyncNanoseconds = SystemClock.monotonicNanoseconds()
        recount()
        nextSequence = current.lastSequence.map { $0 &+ 1 }
    }

    func recount() {
        totalBytes = boots.reduce(0) { $0 + $1.segmentBytes + $1.lossesBytes }
    }

    func boot(_ bootID: String) -> BootRecord? { boots.first { $0.bootID == bootID } }

    private var durable: Bool { configuration.durability != .none }

    // MARK: Appending

    func append(kind: SpoolFormat.RecordKind, first: UInt64, count: UInt32, payload: UnsafeRawBufferPointer) throws(SpoolError) {
        if closed { throw .closed }
        if let failure { throw .unusable(failure) }
        if let next = nextSequence, first < next { throw .outOfOrder(expected: next, got: first) }
        let (last, overflow) = first.addingReportingOverflow(UInt64(count) &- 1)
        precondition(count > 0 && !overflow, "a record holds at least one sequence, within UInt64: \(first) + \(count)")
        let recordBytes = SpoolFormat.recordHeaderBytes + payload.count
        let headerBytes = Int64(SpoolFormat.fileHeaderBytes)
        let limit = Int(min(Int64(SpoolFormat.maxRecordBytes), configuration.maxBytes - headerBytes))
        if recordBytes > limit { throw .recordTooLarge(bytes: recordBytes, limit: limit) }
        do {
            if let writer, writer.bytes > headerBytes,
               writer.bytes + Int64(recordBytes) > configuration.segmentBytes || first != nextSequence {
                try closeWriter()
            }
            try makeRoom(Int64(recordBytes) + (writer == nil ? headerBytes : 0))
            if writer == nil { try openSegment(first: first) }
            SpoolRecordEncoding.encode(into: &scratch, kind: kind, first: first, count: count, payload: payload)
            try scratch.withUnsafeBytes { raw in Result { () throws(SystemError) in try writer!.file.writeAll(raw) } }.get()
        } catch {
            fail(error)
            throw .unwritable(error)
        }
        let open = writer!
        open.bytes += Int64(recordBytes)
        open.dirty = true
        let index = current.segments.count - 1
        current.segments[index].bytes = open.bytes
        current.segments[index].lastSequence = last
        totalBytes += Int64(recordBytes)
        nextSequence = last &+ 1
        counters.appendedRecords += 1
        counters.appendedBytes += UInt64(recordBytes)
        if kind == .events { counters.appendedEvents += UInt64(count) }
    }

    private func openSegment(first: UInt64) throws(SystemError) {
        let path = current.directory + "/" + SpoolFormat.segmentName(first)
        let file = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, mode: 0o600)
        let header = SpoolFileHeader(kind: .segment, agentID: configuration.agentID, bootID: configuration.bootID,
                                     firstSequence: first, previousLastSequence: nextSequence.map { $0 &- 1 },
                                     createdNanoseconds: SystemClock.realtimeNanoseconds())
        do {
            try file.writeAll(header.encoded())
        } catch {
            try? FileSystem.removeFile(path)
            throw error
        }
        writer = SegmentWriter(file: file, firstSequence: first, bytes: Int64(SpoolFormat.fileHeaderBytes))
        current.segments.append(SegmentInfo(firstSequence: first, lastSequence: nil, bytes: Int64(SpoolFormat.fileHeaderBytes),
                                            createdNanoseconds: header.createdNanoseconds,
                                            previousLastSequence: header.previousLastSequence, path: path))
        totalBytes += Int64(SpoolFormat.fileHeaderBytes)
        directoryNeedsSync = true
    }

    /// Closes the open segment, synced first unless the policy is `none` (or `force`).
    func closeWriter(force: Bool = false) throws(SystemError) {
        guard writer != nil else { return }
        if durable || force { try syncWriter() }
        self.writer = nil
    }

    /// A write failed: cut the segment back to its last complete record (a
    /// reopen cuts it too, should this fail), close it, and refuse writes
    /// until a reopen succeeds.
    private func fail(_ error: SystemError) {
        counters.writeFailures += 1
        failure = error
        if let writer {
            try? writer.file.truncate(to: writer.bytes)
            if writer.bytes <= Int64(SpoolFormat.fileHeaderBytes), let segment = current.segments.last,
               segment.firstSequence == writer.firstSequence, segment.lastSequence == nil {
                try? FileSystem.removeFile(segment.path)
                current.segments.removeLast()
                totalBytes -= segment.bytes
            }
        }
        writer = nil
    }

    // MARK: Eviction

    /// Evicts oldest segments until `needed` more bytes fit under maxBytes.
    private func makeRoom(_ needed: Int64) throws(SystemError) {
        var needed = needed
        while totalBytes + needed > configuration.maxBytes {
            if let (boot, index) = oldestEvictable() {
                try evict(boot, index)
            } else if writer != nil {
                // Only the open segment is left: close it so it can go, and start a new one.
                try closeWriter()
                needed += Int64(SpoolFormat.fileHeaderBytes)
            } else {
                return  // only the losses files are left: a few bytes over, never a lost record
            }
        }
    }

    private func oldestEvictable() -> (BootRecord, Int)? {
        for boot in boots {
            for (index, segment) in boot.segments.enumerated() {
                if boot.isCurrent, let writer, writer.firstSequence == segment.firstSequence { break }
                return (boot, index)
            }
        }
        return nil
    }

    /// Deletes a segment and records what it held as lost: its events as
    /// `evicted`, the LOSS records in it with their own reasons, damage as
    /// `corrupt`; nothing already acknowledged. The losses are written before
    /// the segment goes, so a crash between leaves both, never neither.
    private func evict(_ boot: BootRecord, _ index: Int) throws(SystemError) {
        let segment = boot.segments[index]
        let ranges = try lostRanges(of: segment, acknowledged: boot.acknowledgedThrough)
        var pieces: [SpoolLoss] = []
        for range in ranges { pieces += boot.newPieces(of: range) }
        try appendLosses(pieces, to: boot)
        for piece in pieces {
            switch piece.reason {
            case .evicted: counters.evictedEvents += piece.count
            case .corrupt: counters.corruptEvents += piece.count
            case .queueFull, .refused: break
            }
        }
        try FileSystem.removeFile(segment.path)
        boot.segments.remove(at: index)
        totalBytes -= segment.bytes
        counters.evictedSegments += 1
    }

    /// What a segment accounts for, as loss ranges, above `acknowledged`.
    private func lostRanges(of segment: SegmentInfo, acknowledged: UInt64?) throws(SystemError) -> [SpoolLoss] {
        guard let last = segment.lastSequence else { return [] }
        var ranges: [SpoolLoss] = []
        func add(_ loss: SpoolLoss) {
            if let previous = ranges.last, previous.reason == loss.reason, previous.last &+ 1 == loss.first {
                ranges[ranges.count - 1].last = loss.last
            } else {
                ranges.append(loss)
            }
        }
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(segment.path, O_RDONLY)
        } catch where error.errno == ENOENT {
            ranges = [SpoolLoss(first: segment.firstSequence, last: last, reason: .evicted)]
            return Self.clip(ranges, above: acknowledged)
        }
        let scanner = RecordScanner(file: file, buffer: evictionBuffer, limit: segment.bytes,
                                    segmentFirst: segment.firstSequence, segmentLast: last)
        var accounted = segment.firstSequence
        func account(_ loss: SpoolLoss) {
            if loss.first > accounted { add(SpoolLoss(first: accounted, last: loss.first - 1, reason: .corrupt)) }
            add(loss)
            accounted = loss.last &+ 1
        }
        scan: while true {
            switch try scanner.next() {
            case .events(let first, let count, _):
                account(SpoolLoss(first: first, last: first + UInt64(count) - 1, reason: .evicted))
            case .loss(let loss): account(loss)
            case .damaged, .torn: continue
            case .end: break scan
            }
        }
        if accounted <= last { add(SpoolLoss(first: accounted, last: last, reason: .corrupt)) }
        return Self.clip(ranges, above: acknowledged)
    }

    private static func clip(_ ranges: [SpoolLoss], above acknowledged: UInt64?) -> [SpoolLoss] {
        guard let acknowledged else { return ranges }
        return ranges.compactMap { range in
            range.last <= acknowledged ? nil : SpoolLoss(first: max(range.first, acknowledged + 1), last: range.last, reason: range.reason)
        }
    }

    func appendLosses(_ pieces: [SpoolLoss], to boot: BootRecord) throws(SystemError) {
        let before = boot.lossesBytes
        try LossesFile.append(pieces, to: boot, durable: durable)
        totalBytes += boot.lossesBytes - before
    }

    /// A reader found damage: record its new part (in memory when `losses`
    /// cannot be written) and count it once.
    func noteCorrupt(_ loss: SpoolLoss, bootID: String) {
        guard let boot = boot(bootID) else { return }
        let pieces = boot.newPieces(of: loss)
        guard !pieces.isEmpty else { return }
        do {
            try appendLosses(pieces, to: boot)
        } catch {
            boot.insert(pieces)
        }
        counters.corruptEvents += pieces.reduce(0) { $0 + $1.count }
    }

    // MARK: Acknowledging, stopping, syncing

    /// Deletes the boot's segments wholly at or below `through` (not the open
    /// one: it is the current boot's record of its last sequence), and an
    /// earlier boot's directory once nothing of it is left.
    func acknowledge(bootID: String, through: UInt64) throws(SpoolError) {
        guard let boot = boot(bootID) else { return }
        boot.acknowledgedThrough = max(boot.acknowledgedThrough ?? 0, through)
        boot.forgetLosses(through: through)
        var failed: SystemError?
        boot.segments.removeAll { segment in
            if boot.isCurrent, let writer, writer.firstSequence == segment.firstSequence { return false }
            guard (segment.lastSequence ?? 0) <= through else { return false }
            do throws(SystemError) {
                try FileSystem.removeFile(segment.path)
            } catch {
                failed = error
                return false
            }
            totalBytes -= segment.bytes
            return true
        }
        if !boot.isCurrent && boot.segments.isEmpty && (boot.lastSequence ?? 0) <= through && failed == nil {
            FileSystem.removeTree(boot.directory)
            if FileSystem.exists(boot.directory) {
                failed = SystemError(function: "rmdir", errno: EIO, path: boot.directory, detail: "boot directory left behind")
            } else {
                totalBytes -= boot.lossesBytes
                boots.removeAll { $0 === boot }
            }
        }
        if let failed {
            counters.writeFailures += 1
            throw .unwritable(failed)
        }
    }

    /// The clean stop: the open segment synced and closed, wholly
    /// acknowledged segments deleted, `state` says clean (synced).
    func markClean(lastSequence: UInt64) throws(SpoolError) {
        if closed { return }
        let boot = current
        do {
            try closeWriter(force: true)
            if let acknowledged = boot.acknowledgedThrough {
                try acknowledge(bootID: boot.bootID, through: acknowledged)
            }
            if FileSystem.exists(boot.lossesPath) { try FileDescriptor.open(boot.lossesPath, O_RDONLY).dataSync() }
            try BootState(agentID: configuration.agentID, bootID: boot.bootID, clean: true, lastSequence: lastSequence,
                          acknowledgedThrough: boot.acknowledgedThrough, endedNanoseconds: SystemClock.realtimeNanoseconds())
                .save(directory: boot.directory, durable: true)
        } catch {
            let error = SpoolError.from(error, wrapping: SpoolError.unwritable)
            if error.systemError != nil { counters.writeFailures += 1 }
            throw error
        }
        boot.stateLastSequence = lastSequence
        closed = true
    }

    func syncWriter() throws(SystemError) {
        if let writer, writer.dirty {
            try writer.file.dataSync()
            writer.dirty = false
        }
        if directoryNeedsSync {
            try FileSystem.syncDirectory(current.directory)
            directoryNeedsSync = false
        }
        lastSyncNanoseconds = SystemClock.monotonicNanoseconds()
    }

    func tick(now: UInt64) throws(SystemError) {
        guard case .interval(let interval) = configuration.durability, let writer, writer.dirty,
              now &- lastSyncNanoseconds >= UInt64(interval.nanoseconds) else { return }
        try syncWriter()
    }

    // MARK: What readers and stats see

    func segmentToRead(bootID: String, from position: UInt64, after previous: UInt64?) -> SegmentRef? {
        guard let boot = boot(bootID) else { return nil }
        guard let segment = boot.segments.first(where: { segment in
            (previous.map { segment.firstSequence > $0 } ?? true) && (segment.lastSequence.map { $0 >= position } ?? false)
        }) else { return nil }
        return reference(segment, in: boot)
    }

    func segment(bootID: String, first: UInt64) -> SegmentRef? {
        guard let boot = boot(bootID), let segment = boot.segments.first(where: { $0.firstSequence == first }) else { return nil }
        return reference(segment, in: boot)
    }

    private func reference(_ segment: SegmentInfo, in boot: BootRecord) -> SegmentRef {
        let isOpen = boot.isCurrent && writer?.firstSequence == segment.firstSequence
        return SegmentRef(firstSequence: segment.firstSequence, lastSequence: segment.lastSequence, path: segment.path,
                          limit: isOpen ? writer!.bytes : segment.bytes, isOpen: isOpen)
    }

    func stats() -> SpoolStats {
        var stats = counters
        stats.bytes = totalBytes
        stats.segments = boots.reduce(0) { $0 + $1.segments.count }
        stats.boots = boots.count
        stats.usable = failure == nil
        oldest: for boot in boots {
            for segment in boot.segments {
                guard let last = segment.lastSequence, boot.acknowledgedThrough.map({ last > $0 }) ?? true else { continue }
                stats.oldestBootID = boot.bootID
                stats.oldestFirstSequence = segment.firstSequence
                stats.oldestAppendedNanoseconds = segment.createdNanoseconds
                break oldest
            }
        }
        return stats
    }
}
