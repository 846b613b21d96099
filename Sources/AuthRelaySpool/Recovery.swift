import Glibc
import SystemSupport

/// What an open (or reopen) finds in the spool directory, repaired: torn
/// tails cut off, damage in each boot's last segment recorded as corrupt.
/// Earlier segments are only opened for their headers here; the reader finds
/// their damage when it reads them, so an open costs one segment per boot,
/// not the whole spool.
struct Recovery {
    let configuration: SpoolConfiguration
    let buffer: ReadBuffer
    var tornBytes: UInt64 = 0
    var corruptEvents: UInt64 = 0

    /// Every boot directory, earlier boots oldest first, the current one last
    /// (made, and its state written `running`, when missing).
    mutating func discover() throws(SpoolError) -> [BootRecord] {
        let names: [String]
        do { names = try FileSystem.listDirectory(configuration.directory) } catch { throw .unreadable(error) }
        var earlier: [BootRecord] = []
        var current: BootRecord?
        for name in names.sorted() where SpoolDirectory.isBootName(name) {
            let path = configuration.directory + "/" + name
            guard (try? FileSystem.status(path, followingLinks: false))?.kind == .directory else { continue }
            let boot = try load(bootID: name, isCurrent: name == configuration.bootID)
            if boot.isCurrent { current = boot } else { earlier.append(boot) }
        }
        earlier.sort { ($0.oldestNanoseconds, $0.bootID) < ($1.oldestNanoseconds, $1.bootID) }
        let mine = current ?? BootRecord(bootID: configuration.bootID, agentID: configuration.agentID,
                                         directory: configuration.directory + "/" + configuration.bootID,
                                         isCurrent: true, clean: false, endedNanoseconds: 0)
        do {
            try FileSystem.makeDirectory(mine.directory, mode: 0o700)
            try BootState(agentID: configuration.agentID, bootID: configuration.bootID, clean: false,
                          lastSequence: nil, acknowledgedThrough: mine.acknowledgedThrough, endedNanoseconds: 0)
                .save(directory: mine.directory, durable: configuration.durability != .none)
        } catch {
            throw .unwritable(error)
        }
        return earlier + [mine]
    }

    private mutating func load(bootID: String, isCurrent: Bool) throws(SpoolError) -> BootRecord {
        let directory = configuration.directory + "/" + bootID
        let state = BootState.load(directory: directory).flatMap { $0.bootID == bootID ? $0 : nil }
        let boot = BootRecord(bootID: bootID, agentID: state?.agentID ?? configuration.agentID, directory: directory,
                              isCurrent: isCurrent, clean: !isCurrent && state?.clean == true,
                              endedNanoseconds: state?.endedNanoseconds ?? 0)
        boot.stateLastSequence = state?.lastSequence
        boot.acknowledgedThrough = state?.acknowledgedThrough
        try? FileSystem.removeFile(directory + "/" + SpoolFormat.statePath + ".tmp")

        let names: [String]
        do { names = try FileSystem.listDirectory(directory) } catch { throw .unreadable(error) }
        for first in names.compactMap(SpoolFormat.segmentFirstSequence).sorted() {
            let path = directory + "/" + SpoolFormat.segmentName(first)
            boot.segments.append(try segment(path: path, first: first, boot: boot, fromHeader: state == nil))
        }
        // Each segment ends where the next begins: its header says the boot's
        // last sequence before it, exact even across a gap in the numbers.
        for index in boot.segments.indices.dropLast() {
            let next = boot.segments[index + 1]
            let last = next.previousLastSequence ?? next.firstSequence &- 1
            boot.segments[index].lastSequence = last >= boot.segments[index].firstSequence ? last : nil
        }
        try loadLosses(boot)
        if !boot.segments.isEmpty { try repairLastSegment(boot) }
        if !boot.clean && !isCurrent {
            let lastWrite = boot.segments.last.map(\.path) ?? directory + "/" + SpoolFormat.statePath
            boot.endedNanoseconds = (try? FileSystem.modificationNanoseconds(lastWrite)) ?? boot.endedNanoseconds
        }
        return boot
    }

    private func segment(path: String, first: UInt64, boot: BootRecord, fromHeader: Bool) throws(SpoolError) -> SegmentInfo {
        var info = SegmentInfo(firstSequence: first, lastSequence: nil, bytes: 0, createdNanoseconds: 0,
                               previousLastSequence: nil, path: path)
        do {
            let file = try FileDescriptor.open(path, O_RDONLY)
            info.bytes = try file.status().size
            var header = [UInt8](repeating: 0, count: SpoolFormat.fileHeaderBytes)
            let got = try header.withUnsafeMutableBytes { raw in
                Result { () throws(SystemError) in try file.read(into: raw, at: 0) }
            }.get()
            let decoded = header.withUnsafeBytes { SpoolFileHeader.decode(UnsafeRawBufferPointer(rebasing: $0[..<got])) }
            switch decoded {
            case .header(let header):
                info.createdNanoseconds = header.createdNanoseconds
                info.previousLastSequence = header.previousLastSequence
                if fromHeader { boot.agentID = header.agentID }
            case .unsupported(let version):
                throw SpoolError.unsupportedFormat(path: path, version: version)
            case .damaged:
                info.createdNanoseconds = (try? FileSystem.modificationNanoseconds(path)) ?? 0
            }
        } catch {
            throw SpoolError.from(error, wrapping: SpoolError.unreadable)
        }
        return info
    }

    /// Reads `losses`: the ranges recorded earlier (a torn last record cut off).
    private mutating func loadLosses(_ boot: BootRecord) throws(SpoolError) {
        let path = boot.lossesPath
        do {
            guard let status = try FileSystem.status(path) else { return }
            let scanner = RecordScanner(file: try FileDescriptor.open(path, O_RDONLY), buffer: buffer, limit: status.size,
                                        segmentFirst: 0, segmentLast: nil, ordered: false)
            boot.lossesBytes = status.size
            scan: while true {
                switch try scanner.next() {
                case .loss(let loss):
                    boot.insert(boot.newPieces(of: loss))
                    boot.lossRecordsOnDisk += 1
                case .events, .damaged: continue
                case .torn(let offset, _):
                    try cut(path, at: offset, size: status.size)
                    boot.lossesBytes = offset
                case .end: break scan
                }
            }
        } catch {
            throw .unwritable(error)
        }
    }

    /// Scans the boot's last segment through: a torn tail (or damage with
    /// nothing good after it: a crash mid-write as a power loss leaves it) is
    /// cut off; damage with a good record after it is a corrupt range.
    private mutating func repairLastSegment(_ boot: BootRecord) throws(SpoolError) {
        var segment = boot.segments[boot.segments.count - 1]
        do {
            let scanner = RecordScanner(file: try FileDescriptor.open(segment.path, O_RDONLY), buffer: buffer,
                                        limit: segment.bytes, segmentFirst: segment.firstSequence, segmentLast: nil)
            var cutAt: Int64?
            scan: while true {
                switch try scanner.next() {
                case .events, .loss: continue
                case .damaged(_, let firstLost, let nextFirst?):
                    if nextFirst > firstLost { try record(SpoolLoss(first: firstLost, last: nextFirst - 1, reason: .corrupt), in: boot) }
                case .damaged(let offset, _, nil), .torn(let offset, _):
                    cutAt = offset
                case .end: break scan
                }
            }
            segment.lastSequence = scanner.lastGood
            if let cutAt {
                try cut(segment.path, at: cutAt, size: segment.bytes)
                segment.bytes = cutAt
                // A clean stop synced everything first: what is missing below its last sequence was damaged.
                if boot.clean, let last = boot.stateLastSequence, last >= scanner.floor {
                    try record(SpoolLoss(first: scanner.floor, last: last, reason: .corrupt), in: boot)
                }
            }
        } catch {
            throw SpoolError.from(error, wrapping: SpoolError.unwritable)
        }
        if segment.lastSequence == nil && segment.bytes <= Int64(SpoolFormat.fileHeaderBytes) {
            // Created, then nothing reached it: no sequence to deliver or bound.
            do { try FileSystem.removeFile(segment.path) } catch { throw .unwritable(error) }
            boot.segments.removeLast()
        } else {
            boot.segments[boot.segments.count - 1] = segment
        }
    }

    private mutating func cut(_ path: String, at offset: Int64, size: Int64) throws(SystemError) {
        let file = try FileDescriptor.open(path, O_WRONLY)
        try file.truncate(to: offset)
        try file.close()
        tornBytes += UInt64(size - offset)
    }

    private mutating func record(_ loss: SpoolLoss, in boot: BootRecord) throws(SpoolError) {
        let pieces = boot.newPieces(of: loss)
        guard !pieces.isEmpty else { return }
        do { try LossesFile.append(pieces, to: boot, durable: configuration.durability != .none) } catch { throw .unwritable(error) }
        corruptEvents += pieces.reduce(0) { $0 + $1.count }
    }
}

/// A boot's `losses`: appended to (header first when new), and rewritten
/// from memory once it holds many more records than the merged ranges they
/// make (every eviction appends one; consecutive ones merge), so it stays a
/// few records long however long an outage evicts.
enum LossesFile {
    static func append(_ pieces: [SpoolLoss], to boot: BootRecord, durable: Bool) throws(SystemError) {
        guard !pieces.isEmpty else { return }
        let file = try FileDescriptor.open(boot.lossesPath, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600)
        var bytes = try file.status().size == 0 ? header(boot) : []
        bytes += records(pieces)
        try file.writeAll(bytes)
        if durable { try file.dataSync() }
        try file.close()
        boot.insert(pieces)
        boot.lossesBytes += Int64(bytes.count)
        boot.lossRecordsOnDisk += pieces.count
        if boot.lossRecordsOnDisk > 2 * boot.losses.count + 32 { try rewrite(boot, durable: durable) }
    }

    /// Replaces the file with the merged ranges, atomically.
    static func rewrite(_ boot: BootRecord, durable: Bool) throws(SystemError) {
        let bytes = header(boot) + records(boot.losses)
        try FileSystem.replaceFile(boot.lossesPath, with: bytes, mode: 0o600, durable: durable)
        boot.lossesBytes = Int64(bytes.count)
        boot.lossRecordsOnDisk = boot.losses.count
    }

    private static func header(_ boot: BootRecord) -> [UInt8] {
        SpoolFileHeader(kind: .losses, agentID: boot.agentID, bootID: boot.bootID, firstSequence: 0,
                        previousLastSequence: nil, createdNanoseconds: SystemClock.realtimeNanoseconds()).encoded()
    }

    private static func records(_ losses: [SpoolLoss]) -> [UInt8] {
        var bytes: [UInt8] = []
        var record: [UInt8] = []
        for loss in losses {
            SpoolRecordEncoding.encodeLoss(into: &record, loss)
            bytes += record
        }
        return bytes
    }
}
