import Glibc
import Logging
import SystemSupport

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
package final class JSONLinesSink: EventSink {
    /// The output file; nil for stdout (no rotation, no fsync, no replay).
    package let path: String?
    /// The output (a duplicate of stdout for "-"); nil once closed.
    private var file: FileDescriptor?
    private var size: Int64 = 0
    private let policy: FsyncPolicy
    /// Rotate before a write that would take the file past this; 0 = never.
    private let rotateBytes: Int64
    /// Rotated files kept (`path.N`, highest N newest).
    private let keepFiles: Int
    private var nextRotation = 1
    private var unsyncedLegacyEvents = false
    private let buffer = JSONLineBuffer()
    private let writer = OutputLineWriter()
    private let logger: Logger
    /// Runs after each rotation outside a group, when the new file is empty (the
    /// collector checkpoints there); a group's rotation is in its `GroupCommit`.
    package var onRotate: (() -> Void)?
    /// fdatasync calls on the output so far (the group commit's measure).
    package private(set) var dataSyncs: UInt64 = 0
    /// Between `beginGroup` and `commitGroup`: writes stay in `buffer`.
    private var grouping = false
    private var groupNeedsSync = false
    private var groupHasUnsyncedLegacy = false
    /// The last group rotated the output (even if its write then failed).
    package private(set) var groupRotated = false

    package init(path: String?, policy: FsyncPolicy, rotateBytes: Int64, keepFiles: Int, logger: Logger) throws(SinkError) {
        self.path = path
        self.policy = policy
        self.rotateBytes = rotateBytes
        self.keepFiles = max(1, keepFiles)
        self.logger = logger
        do {
            guard let path else {
                file = try FileDescriptor.duplicate(STDOUT_FILENO)
                return
            }
            let output = try Self.openOutput(path)
            size = try Self.removeTornLine(output, path, logger)
            file = consume output
            nextRotation = (Self.rotatedFiles(of: path).last?.number ?? 0) + 1
        } catch {
            throw located(error)
        }
    }

    // MARK: Writing

    package func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError) {
        if !grouping { buffer.removeAll() }
        for loss in losses {
            writer.appendLoss(loss, context: context, to: buffer)
        }
        writer.appendEvents(events, context: context, to: buffer)
        try commitUnlessGrouping(durable: policy != .never)
    }

    package func write(note: CollectorNote, context: ReportContext) throws(SinkError) {
        if !grouping { buffer.removeAll() }
        writer.appendNote(note, context: context, to: buffer)
        try commitUnlessGrouping(durable: policy != .never)
    }

    package func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError) {
        if !grouping { buffer.removeAll() }
        writer.appendEvents(CollectionOfOne(event), context: context, to: buffer)
        guard !grouping else {
            // Under --fsync batch a version 1 event waits for the tick's sync, unless its group syncs anyway.
            if policy == .always { groupNeedsSync = true } else if policy == .batch { groupHasUnsyncedLegacy = true }
            return
        }
        try commit(durable: policy == .always)
        if policy == .batch { unsyncedLegacyEvents = true }
    }

    /// Outside a group a write is stored at once; inside, it waits in the buffer for `commitGroup`.
    private func commitUnlessGrouping(durable: Bool) throws(SinkError) {
        guard grouping else {
            try commit(durable: durable)
            return
        }
        if durable { groupNeedsSync = true }
    }

    // MARK: Groups

    package func beginGroup() {
        buffer.removeAll()
        groupRotated = false
        grouping = true
        groupNeedsSync = false
        groupHasUnsyncedLegacy = false
    }

    /// The whole group's lines in one write, then (per policy) one fdatasync:
    /// the group commit that lets several connections' batches share a sync.
    package func commitGroup() throws(SinkError) -> GroupCommit {
        guard grouping else { return GroupCommit() }
        grouping = false
        guard buffer.count > 0 else { return GroupCommit() }
        let rotated = try commit(durable: groupNeedsSync, notifyRotation: false) { groupRotated = true }
        if groupHasUnsyncedLegacy && !(groupNeedsSync && path != nil) { unsyncedLegacyEvents = true }
        return GroupCommit(rotated: rotated)
    }

    /// Writes the buffer (after a rotation when it would not fit). True when
    /// it rotated; `notifyRotation`: `onRotate` runs then (outside a group).
    @discardableResult
    private func commit(durable: Bool, notifyRotation: Bool = true, rotating: () -> Void = {}) throws(SinkError) -> Bool {
        var rotated = false
        if path != nil, rotateBytes > 0, size > 0, size + Int64(buffer.count) > rotateBytes {
            try rotate()
            rotated = true
            rotating()
            if notifyRotation { onRotate?() }
        }
        let start = size
        do {
            try withOutput { output throws(SystemError) in
                try output.writeAll(buffer.bytes)
                if durable, path != nil { try dataSync(output) }
            }
        } catch {
            throw undo(to: start, located(error))
        }
        size += Int64(buffer.count)
        return rotated
    }

    /// Every fdatasync of the output goes through here, to be counted.
    private func dataSync(_ output: borrowing FileDescriptor) throws(SystemError) {
        try output.dataSync()
        dataSyncs += 1
    }

    /// Cuts the file back to `start` so no part of a failed batch stays in it.
    private func undo(to start: Int64, _ failure: SinkError) -> SinkError {
        if let path {
            do {
                try withOutput { output throws(SystemError) in try output.truncate(to: start) }
            } catch {
                logger.error("cannot cut \(path) back to \(start) bytes after a failed \(failure.system.function): \(error.reason)")
            }
        }
        return failure
    }

    /// The error with the output's path, which a descriptor's calls do not know.
    private func located(_ error: SystemError) -> SinkError {
        var error = error
        if error.path == nil { error.path = path ?? "stdout" }
        return SinkError(error)
    }

    /// Runs `body` with the output; EBADF once the sink is closed.
    private func withOutput<T>(_ body: (borrowing FileDescriptor) throws(SystemError) -> T) throws(SystemError) -> T {
        switch file {
        case .some(let output): return try body(output)
        case .none: throw SystemError(function: "write", errno: EBADF, path: path ?? "stdout", detail: "the output is closed")
        }
    }

    package var position: SinkPosition? {
        guard path != nil, let status = try? withOutput({ output throws(SystemError) in try output.status() }) else { return nil }
        return SinkPosition(device: status.device, inode: status.inode, offset: size)
    }

    package func sync() throws(SinkError) {
        guard path != nil, policy != .never else { return }
        do {
            try withOutput { output throws(SystemError) in try dataSync(output) }
        } catch {
            throw located(error)
        }
        unsyncedLegacyEvents = false
    }

    package func tick() {
        guard unsyncedLegacyEvents else { return }
        do {
            try sync()
        } catch {
            logger.error("\(error)")
        }
    }

    package func close() {
        if path != nil, policy != .never { _ = try? withOutput { output throws(SystemError) in try output.dataSync() } }
        file = nil
    }

    // MARK: Rotation

    private func rotate() throws(SinkError) {
        guard let path else { return }
        let rotated = "\(path).\(nextRotation)"
        if policy != .never { _ = try? withOutput { output throws(SystemError) in try output.dataSync() } }
        do {
            try FileSystem.rename(path, to: rotated)
        } catch {
            throw SinkError(error)
        }
        let newOutput: FileDescriptor
        do {
            newOutput = try Self.openOutput(path)
        } catch {
            try? FileSystem.rename(rotated, to: path)
            throw SinkError(error)
        }
        file = consume newOutput  // closes the rotated file's descriptor
        size = 0
        nextRotation += 1
        for old in Self.rotatedFiles(of: path).dropLast(keepFiles) {
            try? FileSystem.removeFile(old.path)
        }
        logger.info("rotated output", metadata: ["to": "\(rotated)"])
    }

    /// The output's files oldest first: rotated `path.N` by N, then `path`.
    package static func files(of path: String) -> [String] {
        rotatedFiles(of: path).map(\.path) + [path]
    }

    static func rotatedFiles(of path: String) -> [(number: Int, path: String)] {
        let directory = FileSystem.directoryName(of: path)
        let prefix = FileSystem.baseName(of: path) + "."
        let names = (try? FileSystem.listDirectory(directory)) ?? []
        return names.compactMap { name -> (number: Int, path: String)? in
            guard name.hasPrefix(prefix), let number = Int(name.dropFirst(prefix.count)), number > 0 else { return nil }
            return (number, directory + "/" + name)
        }.sorted { $0.number < $1.number }
    }

    // MARK: Opening

    private static func openOutput(_ path: String) throws(SystemError) -> FileDescriptor {
        try FileDescriptor.open(path, O_RDWR | O_APPEND | O_CREAT, mode: 0o640)
    }

    /// A crash in the middle of a write can leave a last line without its
    /// newline; it is cut off so the next line does not run into it. The size
    /// of the file after.
    private static func removeTornLine(_ output: borrowing FileDescriptor, _ path: String, _ logger: Logger) throws(SystemError) -> Int64 {
        let end = try output.seekToEnd()
        guard end > 0 else { return end }
        let window = min(end, 1 << 20)  // a line is at most a few tens of KiB
        var tail = [UInt8](repeating: 0, count: Int(window))
        let read = try tail.withUnsafeMutableBytes { raw in
            Result { () throws(SystemError) in try output.read(into: raw, at: end - window) }
        }.get()
        guard read == Int(window) else {
            throw SystemError(function: "pread", errno: EIO, path: path, detail: "read \(read) of the last \(window) bytes")
        }
        guard tail.last != 0x0A else { return end }
        let keep = tail.lastIndex(of: 0x0A).map { end - window + Int64($0) + 1 } ?? (end - window)
        try output.truncate(to: keep)
        logger.warning("removed an incomplete last line from the output", metadata: ["path": "\(path)", "bytes": "\(end - keep)"])
        return keep
    }
}
