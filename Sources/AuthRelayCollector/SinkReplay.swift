import Glibc
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The fields of an output line that de-duplication needs back after a restart.
struct ReplayedLine: Decodable {
    var type: String
    var reason: String?
    var agent_id: String?
    var boot_id: String?
    var seq: UInt64?
    var last_seq: UInt64?
    var before_seq: UInt64?
    var count: UInt64?

    /// The highest sequence this line proves was handled for its (agent, boot):
    /// an event's seq, a gap's last missing seq, or the seq before a reported drop.
    var handledKey: (AgentKey, UInt64)? {
        guard let agent = agent_id, let boot = boot_id else { return nil }  // legacy events have none
        let key = AgentKey(agentID: agent, bootID: boot)
        switch (type, reason) {
        case ("event", _): return seq.map { (key, $0) }
        case ("loss", "sequence_gap"): return last_seq.map { (key, $0) }
        case ("loss", "agent_dropped"): return before_seq.map { (key, $0 &- 1) }
        default: return nil
        }
    }

    /// An agent_dropped line's report, to recognise a retried drop-only batch.
    var dropReport: SequenceTracker.DropReport? {
        guard type == "loss", reason == "agent_dropped", let before = before_seq, let count else { return nil }
        return SequenceTracker.DropReport(beforeSequence: before, count: count)
    }
}

/// Reads the JSON Lines output back from a checkpoint's position to its end.
enum SinkReplay {
    /// Calls `visit` for every line written after `position` in `files` (oldest
    /// first). Without a usable position every file is read. Returns the bytes read.
    @discardableResult
    static func replay(files: [String], from position: SinkPosition?, logger: Logger, _ visit: (ReplayedLine) -> Void) throws(SinkError) -> Int64 {
        var start = (file: 0, offset: Int64(0))
        if let position {
            if let index = files.firstIndex(where: { identity(of: $0).map { $0 == (position.device, position.inode) } ?? false }),
               position.offset <= size(of: files[index]) {
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
            total += try readLines(files[index], from: offset) { line in
                if let decoded = try? decoder.decode(ReplayedLine.self, from: Data(line)) {
                    visit(decoded)
                } else {
                    undecodable += 1
                }
            }
        }
        if undecodable > 0 {
            logger.warning("skipped lines that are not JSON while reading the output back", metadata: ["lines": "\(undecodable)"])
        }
        return total
    }

    private static func identity(of path: String) -> (UInt64, UInt64)? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }

    private static func size(of path: String) -> Int64 {
        var status = stat()
        return stat(path, &status) == 0 ? Int64(status.st_size) : -1
    }

    /// Calls `body` with every complete line (without its newline) from `offset`.
    private static func readLines(_ path: String, from offset: Int64, _ body: (UnsafeRawBufferPointer) -> Void) throws(SinkError) -> Int64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return 0 }
            throw SinkError(operation: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        let chunk = 1 << 20
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        var position = offset
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, chunk, off_t(position)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SinkError(operation: "read", path: path, errno: errno)
            }
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
