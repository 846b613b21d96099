import Glibc
import SystemSupport
import Testing

@Suite struct UnixSocketFileTests {
    @Test("bind(unixPath:mode:) gives the file exactly the mode, whatever the umask, and leaves nothing beside it",
          arguments: [0o600, 0o660, 0o666, 0o777] as [mode_t])
    func exactMode(mode: mode_t) throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-unix")
        defer { FileSystem.removeTree(directory) }
        let path = directory + "/a.sock"
        let socket = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        try socket.bind(unixPath: path, mode: mode)
        try socket.listen()
        #expect(try FileSystem.status(path, followingLinks: false)?.kind == .socket)
        #expect(try FileSystem.status(path, followingLinks: false)?.mode == UInt32(mode))
        #expect(try FileSystem.listDirectory(directory) == ["a.sock"])
        let client = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        #expect(try client.connect(to: .unix(path: path)))
    }

    @Test("a file already at the path is refused with EADDRINUSE, as bind(2) says it, and left alone")
    func existingPath() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-unix")
        defer { FileSystem.removeTree(directory) }
        let path = directory + "/taken"
        try FileSystem.writeFile(path, Array("mine".utf8))
        let socket = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        let error = try #require(throws: SystemError.self) { try socket.bind(unixPath: path, mode: 0o600) }
        #expect(error.errno == EADDRINUSE)
        #expect(error.path == path)
        #expect(FileSystem.readText(path) == "mine")
        #expect(try FileSystem.listDirectory(directory) == ["taken"])
    }

    @Test("a path that only just fits sockaddr_un is bound through the directory's descriptor")
    func longestPath() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-unix")
        defer { FileSystem.removeTree(directory) }
        let deep = directory + "/" + String(repeating: "d", count: 104 - directory.utf8.count)
        try FileSystem.makeDirectory(deep, mode: 0o700)
        let path = deep + "/s"
        #expect(path.utf8.count == 107)
        let socket = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        try socket.bind(unixPath: path, mode: 0o640)
        try socket.listen()
        #expect(try FileSystem.status(path, followingLinks: false)?.mode == 0o640)
        #expect(try FileSystem.listDirectory(deep) == ["s"])
        let client = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        #expect(try client.connect(to: .unix(path: path)))
        let error = try #require(throws: SystemError.self) { try socket.bind(unixPath: path + "x", mode: 0o600) }
        #expect(error.errno == ENAMETOOLONG)
    }
}

@Suite struct BorrowedDescriptorTests {
    @Test("a borrowed descriptor takes options and stays open")
    func borrowed() throws {
        let owner = try FileDescriptor.socket(family: AF_INET, .stream)
        try FileDescriptor.borrowing(owner.rawValue) { (socket) throws(SystemError) in try socket.setSendTimeout(.seconds(2)) }
        var value = timeval()
        var size = socklen_t(MemoryLayout<timeval>.size)
        #expect(getsockopt(owner.rawValue, SOL_SOCKET, SO_SNDTIMEO, &value, &size) == 0)
        #expect(value.tv_sec == 2 && value.tv_usec == 0)  // whole seconds: the kernel keeps the timeout in jiffies
        #expect(fcntl(owner.rawValue, F_GETFD) >= 0, "still open")
    }
}

@Suite struct ListDirectoryTests {
    /// Enough short names to fill readdir's buffer (32 KiB) more than once: its
    /// last entry ends near the buffer's end, where copying a whole dirent read
    /// past it (found by ASan in CI listing /dev/shm).
    @Test("3,000 short names: each listed once, read in place (no read past readdir's buffer under ASan)")
    func fullBuffers() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-list")
        defer { FileSystem.removeTree(directory) }
        let names = (0..<3000).map { "f\($0)" }
        for name in names { try FileSystem.writeFile(directory + "/" + name, []) }
        #expect(try FileSystem.listDirectory(directory).sorted() == names.sorted())
    }
}
