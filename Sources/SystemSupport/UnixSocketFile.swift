import Glibc

extension FileDescriptor {
    /// Binds this AF_LOCAL socket at `path` with permission bits `mode`,
    /// exactly: the file is never, not even briefly, wider than `mode`, and the
    /// process umask is neither read nor changed (a library must not change it).
    ///
    /// bind(2) creates the file with 0777 less the umask, so it is bound inside
    /// a fresh private (0700) directory next to `path`, where no one else can
    /// reach it, chmod-ed there, then linked into place and its private name
    /// and directory removed. link(2), not rename(2): it refuses a file that
    /// appeared at `path` meanwhile (EADDRINUSE, as bind(2) says it) instead of
    /// replacing another server's socket.
    package func bind(unixPath path: String, mode: mode_t) throws(SystemError) {
        _ = try SocketAddress.unix(path: path)  // refuses a path that does not fit, before anything is made
        let directory = try Self.makePrivateDirectory(beside: path)
        defer { try? FileSystem.removeDirectory(directory) }
        let staged = directory + "/s"
        if let address = try? SocketAddress.unix(path: staged) {
            try bind(to: address)
        } else {
            // The private directory's name made the path too long for sockaddr_un:
            // reach the directory through its descriptor, a short path to the same place.
            let opened = try FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY)
            try bind(to: SocketAddress.unix(path: "/proc/self/fd/\(opened.rawValue)/s"))
        }
        defer { try? FileSystem.removeFile(staged) }
        try FileSystem.setMode(staged, mode)
        if Glibc.link(staged, path) != 0 {
            let code = Glibc.errno
            throw SystemError(function: code == EEXIST ? "bind" : "link", errno: code == EEXIST ? EADDRINUSE : code, path: path)
        }
    }

    /// mkdtemp(3) of ".XXXXXX" in the directory of `path`: mode 0700 (less the umask, never more).
    private static func makePrivateDirectory(beside path: String) throws(SystemError) -> String {
        let parent = FileSystem.directoryName(of: path)
        var template = Array("\(parent)/.XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SystemError(function: "mkdtemp", errno: Glibc.errno, path: "\(parent)/.XXXXXX")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
