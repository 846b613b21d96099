import Glibc
import Logging
import SystemSupport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension OutputLine {
    /// What a line read back at start proves was handled.
    enum Replayed: Equatable {
        /// Sequences of `key` up to `highest` were handled: an event's seq, a
        /// loss range's last seq, or the seq before a reported drop; with an
        /// agent_dropped line's report, to recognise a retried drop-only batch.
        case handled(key: AgentKey, highest: UInt64, dropReport: SequenceTracker.DropReport?)
        /// The run's end was written: it is not written again.
        case bootEnd(AgentKey)
        /// A start without history, and its `state_lost` line.
        case stateLost(startedNanoseconds: UInt64)
    }

    /// Nil for legacy events (no ids).
    var replayed: Replayed? {
        switch self {
        case .event(let event):
            guard let agent = event.agentID, let boot = event.bootID else { return nil }
            return .handled(key: AgentKey(agentID: agent, bootID: boot), highest: event.sequence, dropReport: nil)
        case .loss(let line):
            let key = AgentKey(agentID: line.agentID, bootID: line.bootID)
            switch line.loss {
            case .sequenceGap(_, let last), .range(_, let last, _):
                return .handled(key: key, highest: last, dropReport: nil)
            case .agentDropped(let count, let before):
                return .handled(key: key, highest: before &- 1, dropReport: SequenceTracker.DropReport(beforeSequence: before, count: count))
            }
        case .bootEnd(let line):
            return .bootEnd(AgentKey(agentID: line.agentID, bootID: line.bootID))
        case .stateLost(let line):
            return .stateLost(startedNanoseconds: line.startedNanoseconds)
        }
    }
}

/// Reads the JSON Lines output back from a checkpoint's position to its end.
package enum SinkReplay {
    /// Calls `visit` for every line written after `position` in `files` (oldest
    /// first). Without a usable position every file is read. Returns the bytes read.
    @discardableResult
    package static func replay(files: [String], from position: SinkPosition?, logger: Logger,
                               _ visit: (OutputLine) -> Void) throws(SinkError) -> Int64 {
        var start = (file: 0, offset: Int64(0))
        if let position {
            if let found = self.start(in: files, at: position) {
                start = found
            } else {
                logger.warning("the state checkpoint does not match the output files; reading all of them",
                               metadata: ["files": "\(files.count)"])
            }
        }
        return try replay(files: files, from: start, logger: logger) { line, _ in visit(line) }.bytes
    }

    /// Where the checkpoint's `position` is in `files`: the file (by device and
    /// inode, which rotation's rename keeps) and the offset; nil when no file is
    /// that one or it is shorter than the offset (truncated, deleted, or lost on
    /// power failure under --fsync never).
    package static func start(in files: [String], at position: SinkPosition) -> (file: Int, offset: Int64)? {
        guard let index = files.firstIndex(where: { status(of: $0).map { ($0.device, $0.inode) == (position.device, position.inode) } ?? false }),
              position.offset <= status(of: files[index])?.size ?? -1
        else { return nil }
        return (index, position.offset)
    }

    /// Calls `visit` with every line from `start` on and the index of its file.
    /// Returns the bytes read and the lines decoded.
    package static func replay(files: [String], from start: (file: Int, offset: Int64), logger: Logger,
                               _ visit: (OutputLine, Int) -> Void) throws(SinkError) -> (bytes: Int64, lines: Int) {
        var total: Int64 = 0
        var decoded = 0
        let decoder = JSONDecoder()
        var undecodable = 0
        for index in start.file..<files.count {
            let offset = index == start.file ? start.offset : 0
            do {
                total += try readLines(files[index], from: offset) { line in
                    if let line = try? decoder.decode(OutputLine.self, from: Data(line)) {
                        decoded += 1
                        visit(line, index)
                    } else {
                        undecodable += 1
                    }
                }
            } catch {
                var error = error
                if error.path == nil { error.path = files[index] }
                throw SinkError(error)
            }
        }
        if undecodable > 0 {
            logger.warning("skipped lines that are not JSON while reading the output back", metadata: ["lines": "\(undecodable)"])
        }
        return (total, decoded)
    }

    private static func status(of path: String) -> FileStatus? {
        (try? FileSystem.status(path)) ?? nil
    }

    /// A file of the output that rotation may have removed meanwhile: nil when it is gone.
    private static func openIfPresent(_ path: String) throws(SystemError) -> FileDescriptor? {
        do {
            return try FileDescriptor.open(path, O_RDONLY)
        } catch where error.errno == ENOENT {
            return nil
        }
    }

    /// Calls `body` with every complete line (without its newline) from `offset`.
    private static func readLines(_ path: String, from offset: Int64, _ body: (UnsafeRawBufferPointer) -> Void) throws(SystemError) -> Int64 {
        guard let file = try openIfPresent(path) else { return 0 }
        let chunk = 1 << 20
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        var position = offset
        while true {
            let count = try buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SystemError) in try file.read(into: raw, at: position) }
            }.get()
            if count == 0 { break }
            position += Int64(count)
            buffer.withUnsafeBytes { raw in
                var lineStart = 0
                for index in 0..<count where raw[index] == 0x0A {
                    if pending.isEmpty {
                        body(UnsafeRawBufferPointer(rebasing: raw[lineStart..<index]))
                    } else {
                        pending.append(contentsOf: raw[lineStart..<index])
                        pending.withUnsafeBytes { body($0) }
                        pending.removeAll(keepingCapacity: true)
                    }
                    lineStart = index + 1
                }
                pending.append(contentsOf: raw[lineStart..<count])
            }
        }
        return position - offset
    }
}
