import Glibc

// What the collector's sink needs beyond FileDescriptor.swift.

extension FileDescriptor {
    /// A descriptor of its own for the open file behind `rawValue`, which
    /// this process does not own (standard output, say): fcntl(F_DUPFD_CLOEXEC).
    /// Closing it leaves `rawValue` open.
    package static func duplicate(_ rawValue: Int32) throws(SystemError) -> FileDescriptor {
        FileDescriptor(adopting: try systemCall("fcntl(F_DUPFD_CLOEXEC)") { Glibc.fcntl(rawValue, F_DUPFD_CLOEXEC, 0) })
    }
}
