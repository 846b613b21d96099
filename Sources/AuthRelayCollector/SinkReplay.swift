import Glibc
import Logging
import SystemSupport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension OutputLine {
    /// What a line proves was handled for its (agent, boot), for de-duplication
    /// after a restart: an event's seq, a gap's last missing seq, or the seq
    /// before a reported drop; with an agent_dropped line's report, to
    /// recognise a retried drop-only batch. Nil for legacy events (no ids).
    var handled: (key: AgentKey, highest: UInt64, dropReport: SequenceTracker.DropReport?)? {
        switch self {
        case .event(let event):
            guard let agent = event.agentID, let boot = event.bootID else { return nil }
            return (AgentKey(agentID: agent, bootID: boot), event.sequence, nil)
        case .loss(let line):
            let key = AgentKey(agentID: line.agentID, bootID: line.bootID)
            switch line.loss {
            case .sequenceGap(_, let last):
                return (key, last, nil)
            case .agentDropped(let count, let before):
                return (key, before &- 1, SequenceTracker.DropReport(beforeSequence: before, count: count))
            }
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
            if let index = files.firstIndex(where: { status(of: $0).map { ($0.device, $0.inode) == (position.device, position.inode) } ?? false }),
               position.offset <= status(of: files[index])?.size ?? -1 {
                start = (index, position.offset)
            } else {
                // The checkpoint names a file that is gone or shorter than it says
                // (e.g. lost on power failure under --fsync never): read everything.
                logger.warning("the state checkpoint does not match the output files; reading all of them",
                               metadata: ["files": "\(files.count)"])
            }
        }
        var total: Int64 = 0
        let decoder = JSONDecoder()
        var undecodable = 0
        for index in start.file..<files.count {
            let offset = index == start.file ? start.offset : 0
            do {
                total += try readLines(files[index], from: offset) { line in
                    if let decoded = try? decoder.decode(OutputLine.self, from: Data(line)) {
                        visit(decoded)
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
        return total
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
