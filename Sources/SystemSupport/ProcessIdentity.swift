import Glibc

/// Who this process is, as an event reports a requester: its pid, its
/// parent's, and its real user and group.
package struct ProcessIdentity: Sendable, Equatable {
    package var pid: Int32
    package var ppid: Int32
    package var uid: UInt32
    package var gid: UInt32

    /// This process, now (the parent changes if it exits).
    package static var current: ProcessIdentity {
        ProcessIdentity(pid: getpid(), ppid: getppid(), uid: getuid(), gid: getgid())
    }
}
