import Glibc
import SystemSupport

/// The spool directory's rules: ours alone (created 0700, refused when
/// another user owns it or others may write in it) and one process at a time
/// (an flock on `lock`: two agents appending to one boot would interleave).
enum SpoolDirectory {
    static func prepare(_ path: String) throws(SpoolError) {
        do {
            if try FileSystem.status(path) == nil { try FileSystem.makeDirectories(path, mode: 0o700) }
        } catch {
            throw .unwritable(error)
        }
        let status: FileStatus?
        do { status = try FileSystem.status(path) } catch { throw .unreadable(error) }
        guard let status, status.kind == .directory else { throw .notADirectory(path: path) }
        let user = Processes.effectiveUserID
        if status.owner != user {
            throw .unsafeDirectory(path: path, reason: "owned by uid \(status.owner), this process runs as uid \(user)")
        }
        if status.mode & 0o022 != 0 {
            throw .unsafeDirectory(path: path, reason: "group- or world-writable (mode \(String(status.mode, radix: 8)))")
        }
    }

    /// The directory's lock, held as long as the descriptor is open.
    static func lock(_ path: String) throws(SpoolError) -> FileDescriptor {
        let lockPath = path + "/" + SpoolFormat.lockName
        do throws(SystemError) {
            let file = try FileDescriptor.open(lockPath, O_RDWR | O_CREAT, mode: 0o600)
            // A child that another thread is starting holds a copy of every
            // descriptor until its exec closes them: a lock just released can
            // take that long to be free. A predecessor dying takes about as long.
            let deadline = SystemClock.deadline(after: .milliseconds(500))
            while try !file.lockExclusively() {
                if SystemClock.monotonicNanoseconds() >= deadline {
                    throw SystemError(function: "flock", errno: EWOULDBLOCK, path: lockPath)
                }
                SystemClock.sleep(.milliseconds(5))
            }
            return file
        } catch where error.errno == EWOULDBLOCK {
            throw .inUse(path: path)
        } catch {
            throw .unwritable(error)
        }
    }

    /// The lock file's device and inode: a directory removed and made again has a new one to take.
    static func lockIdentity(in path: String) -> [UInt64]? {
        (try? FileSystem.status(path + "/" + SpoolFormat.lockName)).map { [$0.device, $0.inode] }
    }

    /// A boot directory name: what a valid boot id can be.
    static func isBootName(_ name: String) -> Bool {
        name != SpoolFormat.lockName && name != "." && name != ".." && !name.isEmpty && name.utf8.count <= Spool.maxIDBytes
            && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }
}
