import Glibc

extension Processes {
    /// The parent's pid (getppid).
    package static var parentID: pid_t { getppid() }

    /// The real user and group ids (getuid, getgid): who started this process.
    package static var userID: UInt32 { getuid() }
    package static var groupID: UInt32 { getgid() }
}
