import Glibc

/// A user of this machine as the password database has it (getpwnam_r):
/// what running a program as another user (PostgreSQL's, which refuses to
/// run as root) and handing it a directory need.
package struct UserAccount: Sendable, Equatable {
    package var name: String
    package var uid: UInt32
    package var gid: UInt32
    package var home: String

    /// The account called `name`; nil when there is none.
    package static func named(_ name: String) throws(SystemError) -> UserAccount? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let code = buffer.withUnsafeMutableBufferPointer { getpwnam_r(name, &entry, $0.baseAddress!, $0.count, &found) }
        if code != 0 { throw SystemError(function: "getpwnam_r", errno: code, path: name) }
        guard found != nil else { return nil }
        return UserAccount(name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid,
                           home: String(cString: entry.pw_dir))
    }

    /// True when this process runs as root (effective uid 0).
    package static var isRoot: Bool { geteuid() == 0 }
}

extension FileSystem {
    /// chown(2) (following links).
    package static func changeOwner(_ path: String, uid: UInt32, gid: UInt32) throws(SystemError) {
        if chown(path, uid, gid) != 0 { throw SystemError(function: "chown", errno: Glibc.errno, path: path) }
    }
}

extension Processes {
    /// The pids `pid` has started and not yet lost: what a drill that kills
    /// a server with all its workers must name. /proc/PID/task/TID/children
    /// lists the children of one thread, so every thread's are read.
    package static func children(of pid: pid_t) -> [pid_t] {
        let threads = (try? FileSystem.listDirectory("/proc/\(pid)/task")) ?? []
        return threads.flatMap { thread in
            let text = FileSystem.readText("/proc/\(pid)/task/\(thread)/children") ?? ""
            return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
        }
    }
}
