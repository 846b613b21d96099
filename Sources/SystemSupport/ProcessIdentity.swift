import Glibc

extension Processes {
    /// The parent's pid (getppid).
    package static var parentID: pid_t { getppid() }

    /// The real user and group ids (getuid, getgid): who started this process.
    package static var userID: UInt32 { getuid() }
    package static var groupID: UInt32 { getgid() }
}

/// Who this process is, as an event reports a requester: its pid, its
/// parent's, and its real user and group.
package struct ProcessIdentity: Sendable, Equatable {
    package var pid: Int32
    package var ppid: Int32
    package var uid: UInt32
    package var gid: UInt32

    /// This process, now (the parent changes if it exits).
    package static var current: ProcessIdentity {
        ProcessIdentity(pid: Processes.currentID, ppid: Processes.parentID, uid: Processes.userID, gid: Processes.groupID)
    }
}
