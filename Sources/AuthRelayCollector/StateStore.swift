import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the collector keeps in --data-dir: `state.json` (the checkpoint) and
/// `lock` (held while a collector uses the directory).
///
/// Why a checkpoint plus the output's tail, not a state file alone: the state
/// must never claim less than the sink holds (a retry would be written twice)
/// nor more (a retry would be dropped as a duplicate and lost). A state file
/// written after each batch still leaves a crash window between the sink write
/// and the state write. So the sink is the truth: the checkpoint records the
/// highest sequences *together with* the output position they describe, and a
/// restart reads the output from that position on and applies every line after
/// it. The checkpoint is only an index that bounds that read.
final class StateStore {
    struct Checkpoint: Codable {
        struct Agent: Codable {
            var agent_id: String
            var boot_id: String
            var highest_seq: UInt64
            /// The last header drop report recorded (see SequenceTracker.DropReport).
            var drop_report_before_seq: UInt64?
            var drop_report_count: UInt64?
        }
        var format = 1
        var position: SinkPosition?
        var agents: [Agent]
    }

    let directory: String
    private let lockFD: Int32
    private var statePath: String { directory + "/state.json" }

    /// Creates the directory if needed and takes its lock.
    init(directory: String) throws(CollectorStartError) {
        self.directory = directory
        try Self.makeDirectories(directory)
        let fd = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .dataDirectory(path: directory, operation: "open lock", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            throw code == EWOULDBLOCK ? .dataDirectoryInUse(path: directory) : .dataDirectory(path: directory, operation: "flock", errno: code)
        }
        lockFD = fd
    }

    deinit { close(lockFD) }  // releases the lock

    /// mkdir -p, owner and group only.
    private static func makeDirectories(_ path: String) throws(CollectorStartError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o750) != 0 && errno != EEXIST {
                throw .dataDirectory(path: path, operation: "mkdir \(partial)", errno: errno)
            }
        }
    }

    func load() throws(CollectorStartError) -> Checkpoint? {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: statePath))
        } catch {
            if access(statePath, F_OK) != 0 { return nil }
            throw .state(path: statePath, reason: "\(error)")
        }
        do {
            return try JSONDecoder().decode(Checkpoint.self, from: data)
        } catch {
            throw .state(path: statePath, reason: "not a checkpoint (\(error)); move it away to start from the output alone")
        }
    }

    /// Writes the checkpoint atomically: a temporary file, then rename(2) over
    /// the old one. `durable`: fsync the file and the directory too.
    func save(_ checkpoint: Checkpoint, durable: Bool) throws(SinkError) {
        let temporary = statePath + ".tmp"
        let data: Data
        do {
            data = try JSONEncoder().encode(checkpoint)
        } catch {
            throw SinkError(operation: "encode", path: statePath, errno: EINVAL)
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SinkError(operation: "open", path: temporary, errno: errno) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let code = errno
        guard written == data.count else {
            close(fd)
            throw SinkError(operation: "write", path: temporary, errno: written < 0 ? code : EIO)
        }
        if durable && fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw SinkError(operation: "fsync", path: temporary, errno: code)
        }
        close(fd)
        guard rename(temporary, statePath) == 0 else { throw SinkError(operation: "rename", path: statePath, errno: errno) }
        if durable {
            let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directoryFD >= 0 {
                _ = fsync(directoryFD)
                close(directoryFD)
            }
        }
    }
}

/// Why the collector could not start: one line an operator can act on.
public enum CollectorStartError: Error, Sendable, CustomStringConvertible {
    case dataDirectory(path: String, operation: String, errno: Int32)
    case dataDirectoryInUse(path: String)
    case state(path: String, reason: String)
    case output(SinkError)

    public var description: String {
        switch self {
        case .dataDirectory(let path, let operation, let code):
            "data directory \(path): \(operation) failed: \(String(cString: strerror(code)))"
        case .dataDirectoryInUse(let path):
            "data directory \(path) is in use by another collector"
        case .state(let path, let reason):
            "state file \(path): \(reason)"
        case .output(let error):
            "cannot write the output: \(error)"
        }
    }
}
