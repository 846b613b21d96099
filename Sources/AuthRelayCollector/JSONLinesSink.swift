import CAuthRelayRPC
import Glibc
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// When the JSON Lines sink calls fdatasync.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// Before every acknowledgement: each batch, each version 1 event.
    case always
    /// Before each batch's acknowledgement; version 1 events (one per call) at the next tick, within a second.
    case batch
    /// Never on the ingest path: the kernel writes back (at rotation and shutdown too).
    case never
}

/// Writes events as JSON Lines to a file (rotated by size) or to stdout.
///
/// A batch is one write() of complete lines. If the write or its fdatasync
/// fails, the file is truncated back to where it was, so the file only ever
/// holds complete lines of stored batches and a retry cannot duplicate a half.
final class JSONLinesSink: EventSink {
    /// The output file; nil for stdout (no rotation, no fsync, no replay).
    let path: String?
    private var fd: Int32
    private var size: Int64 = 0
    private let policy: FsyncPolicy
    /// Rotate before a write that would take the file past this; 0 = never.
    private let rotateBytes: Int64
    /// Rotated files kept (`path.N`, highest N newest).
    private let keepFiles: Int
    private var nextRotation = 1
    private var unsyncedLegacyEvents = false
    private let buffer = JSONLineBuffer()
    /// The fields all lines of a report share, formatted once per report.
    private let sharedFields = JSONLineBuffer(capacity: 512)
    private let logger: Logger
    /// Runs after each rotation, when the new file is empty (the collector checkpoints there).
    var onRotate: (() -> Void)?

    init(path: String?, policy: FsyncPolicy, rotateBytes: Int64, keepFiles: Int, logger: Logger) throws(SinkError) {
        self.path = path
        self.policy = policy
        self.rotateBytes = rotateBytes
        self.keepFiles = max(1, keepFiles)
        self.logger = logger
        guard let path else {
            fd = STDOUT_FILENO
            return
        }
        fd = try Self.openOutput(path)
        try removeTornLine(path)
        size = Int64(lseek(fd, 0, SEEK_END))
        nextRotation = (Self.rotatedFiles(of: path).last?.number ?? 0) + 1
    }

    // MARK: Writing

    func write(events: UnsafeBufferPointer<ar_event>, losses: [LossRecord], context: ReportContext) throws(SinkError) {
        buffer.removeAll()
        for loss in losses {
            EventLines.appendLoss(loss, context: context, to: buffer)
        }
        EventLines.appendEvents(events, context: context, to: buffer, shared: sharedFields)
        try commit(durable: policy != .never)
    }

    func writeLegacy(_ event: UnsafePointer<ar_event>, context: ReportContext) throws(SinkError) {
        buffer.removeAll()
        EventLines.appendEvents(UnsafeBufferPointer(start: event, count: 1), context: context, to: buffer, shared: sharedFields)
        try commit(durable: policy == .always)
        if policy == .batch { unsyncedLegacyEvents = true }
    }

    private func commit(durable: Bool) throws(SinkError) {
        if path != nil, rotateBytes > 0, size > 0, size + Int64(buffer.count) > rotateBytes {
            try rotate()
        }
        let start = size
        var written = 0
        while written < buffer.count {
            let result = Glibc.write(fd, buffer.base + written, buffer.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw undo(to: start, "write", errno)
            }
            written += result
        }
        if durable, path != nil, fdatasync(fd) != 0 {
            throw undo(to: start, "fdatasync", errno)
        }
        size += Int64(written)
    }

    /// Cuts the file back to `start` so no part of a failed batch stays in it.
    private func undo(to start: Int64, _ operation: String, _ code: Int32) -> SinkError {
        if path != nil, ftruncate(fd, off_t(start)) != 0 {
            logger.error("cannot cut \(path ?? "") back to \(start) bytes after a failed \(operation): \(String(cString: strerror(errno)))")
        }
        return SinkError(operation: operation, path: path ?? "stdout", errno: code)
    }

    var position: SinkPosition? {
        guard path != nil else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        return SinkPosition(device: UInt64(status.st_dev), inode: UInt64(status.st_ino), offset: size)
    }

    func sync() throws(SinkError) {
        guard path != nil, policy != .never else { return }
        guard fdatasync(fd) == 0 else { throw SinkError(operation: "fdatasync", path: path ?? "", errno: errno) }
        unsyncedLegacyEvents = false
    }

    func tick() {
        guard unsyncedLegacyEvents else { return }
        do {
            try sync()
        } catch {
            logger.error("\(error)")
        }
    }

    func close() {
        guard path != nil else { return }
        if policy != .never { _ = fdatasync(fd) }
        Glibc.close(fd)
        fd = -1
    }

    // MARK: Rotation

    private func rotate() throws(SinkError) {
        guard let path else { return }
        let rotated = "\(path).\(nextRotation)"
        if policy != .never { _ = fdatasync(fd) }
        guard rename(path, rotated) == 0 else { throw SinkError(operation: "rename to \(rotated)", path: path, errno: errno) }
        let newFD: Int32
        do {
            newFD = try Self.openOutput(path)
        } catch {
            rename(rotated, path)
            throw error
        }
        Glibc.close(fd)
        fd = newFD
        size = 0
        nextRotation += 1
        for old in Self.rotatedFiles(of: path).dropLast(keepFiles) {
            unlink(old.path)
        }
        logger.info("rotated output", metadata: ["to": "\(rotated)"])
        onRotate?()
    }

    /// The output's files oldest first: rotated `path.N` by N, then `path`.
    static func files(of path: String) -> [String] {
        rotatedFiles(of: path).map(\.path) + [path]
    }

    static func rotatedFiles(of path: String) -> [(number: Int, path: String)] {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + "."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (number: Int, path: String)? in
            guard name.hasPrefix(prefix), let number = Int(name.dropFirst(prefix.count)), number > 0 else { return nil }
            return (number, url.deletingLastPathComponent().appendingPathComponent(name).path)
        }.sorted { $0.number < $1.number }
    }

    // MARK: Opening

    private static func openOutput(_ path: String) throws(SinkError) -> Int32 {
        let fd = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw SinkError(operation: "open", path: path, errno: errno) }
        return fd
    }

    /// A crash in the middle of a write can leave a last line without its
    /// newline; it is cut off so the next line does not run into it.
    private func removeTornLine(_ path: String) throws(SinkError) {
        let end = Int64(lseek(fd, 0, SEEK_END))
        guard end > 0 else { return }
        let window = min(end, 1 << 20)  // a line is at most a few tens of KiB
        var tail = [UInt8](repeating: 0, count: Int(window))
        let read = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(end - window)) }
        guard read == Int(window) else { throw SinkError(operation: "read", path: path, errno: errno) }
        guard tail.last != 0x0A else { return }
        let keep = tail.lastIndex(of: 0x0A).map { end - window + Int64($0) + 1 } ?? (end - window)
        guard ftruncate(fd, off_t(keep)) == 0 else { throw SinkError(operation: "truncate", path: path, errno: errno) }
        logger.warning("removed an incomplete last line from the output", metadata: ["path": "\(path)", "bytes": "\(end - keep)"])
    }
}
