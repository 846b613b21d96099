import Glibc
import SystemSupport

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
            /// A boot_end line was written for this run (absent: no).
            var boot_end: Bool?
            /// Its last line is in the file `position` names (absent, from an older
            /// collector: assumed so). What the output must hold if that file is intact.
            var in_current_file: Bool?
        }
        var format = 1
        var position: SinkPosition?
        var agents: [Agent]
        /// When a start found neither checkpoint nor output (see CollectorCore.historyLostAt); absent: never.
        var history_lost_ns: UInt64?
        /// The `state_lost` line of that start was written.
        var state_lost_noted: Bool?
    }

    let directory: String
    /// Held open, and locked, while this collector uses the directory.
    private let lock: FileDescriptor
    private var statePath: String { directory + "/state.json" }

    /// Creates the directory if needed and takes its lock.
    init(directory: String) throws(CollectorStartError) {
        self.directory = directory
        let lock = try Self.openLock(directory)
        let locked: Bool
        do {
            locked = try lock.lockExclusively()
        } catch {
            throw .dataDirectory(path: directory, error)
        }
        guard locked else { throw .dataDirectoryInUse(path: directory) }
        self.lock = lock  // closing it releases the lock
    }

    /// mkdir -p (owner and group only), then the lock file.
    private static func openLock(_ directory: String) throws(CollectorStartError) -> FileDescriptor {
        do {
            try FileSystem.makeDirectories(directory, mode: 0o750)
            return try FileDescriptor.open(directory + "/lock", O_RDWR | O_CREAT, mode: 0o600)
        } catch {
            throw .dataDirectory(path: directory, error)
        }
    }

    func load() throws(CollectorStartError) -> Checkpoint? {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(statePath)
        } catch where error.errno == ENOENT {
            return nil
        } catch {
            throw .dataDirectory(path: directory, error)
        }
        do {
            return try JSONDecoder().decode(Checkpoint.self, from: Data(bytes))
        } catch {
            throw .state(path: statePath, reason: "not a checkpoint (\(error)); move it away to start from the output alone")
        }
    }

    /// Writes the checkpoint atomically: a temporary file, then rename(2) over
    /// the old one. `durable`: fsync the file and the directory too.
    func save(_ checkpoint: Checkpoint, durable: Bool) throws(SinkError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(checkpoint)
        } catch {
            throw SinkError(SystemError(function: "JSONEncoder", errno: EINVAL, path: statePath, detail: "\(error)"))
        }
        do {
            try FileSystem.replaceFile(statePath, with: Array(data), mode: 0o600, durable: durable)
        } catch {
            throw SinkError(error)
        }
    }
}
