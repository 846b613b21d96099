import Glibc
import Synchronization
import SystemSupport
import Testing

@Suite struct SocketAddressTests {
    @Test("a unix path that does not fit sockaddr_un is refused with ENAMETOOLONG, never cut")
    func longUnixPath() throws {
        let fits = "/" + String(repeating: "a", count: 106)
        #expect(try SocketAddress.unix(path: fits).host == fits)
        let error = try #require(throws: SystemError.self) { try SocketAddress.unix(path: fits + "b") }
        #expect(error.errno == ENAMETOOLONG)
        #expect(error.function == "sockaddr_un")
        #expect(error.description.contains("at most 107 bytes"))
    }

    @Test("an empty unix path or one with a NUL is refused", arguments: ["", "/tmp/a\u{0}b"])
    func badUnixPath(_ path: String) {
        #expect(throws: SystemError.self) { try SocketAddress.unix(path: path) }
    }

    @Test("IPv4 literals, localhost, and what is not an address")
    func ipv4() throws {
        #expect(try SocketAddress.ipv4("127.0.0.1", port: 4000).description == "127.0.0.1:4000")
        #expect(try SocketAddress.ipv4("localhost", port: 1).host == "127.0.0.1")
        let error = try #require(throws: SystemError.self) { try SocketAddress.ipv4("not-an-address", port: 1) }
        #expect(error.description == "inet_pton not-an-address: Invalid argument (errno 22): not an IPv4 address")
    }

    @Test("resolving a name that does not exist says so")
    func unresolvable() {
        let error = #expect(throws: SystemError.self) {
            try SocketAddress.resolve(host: "no-such-host.invalid", port: 1, datagram: false)
        }
        #expect(error?.function == "getaddrinfo")
    }
}

@Suite struct FileDescriptorTests {
    @Test("a failed open names the call, the path and the errno")
    func failedOpen() throws {
        let error = try #require(throws: SystemError.self) { try FileDescriptor.open("/nonexistent/x", O_RDONLY) }
        #expect(error.errno == ENOENT)
        #expect(error.description == "open /nonexistent/x: No such file or directory (errno 2)")
    }

    @Test("a pipe carries bytes")
    func pipeRoundTrip() throws {
        let pipe = try FileDescriptor.pipe()
        try pipe.write.writeAll(Array("hello".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = try buffer.withUnsafeMutableBytes { raw in Result { () throws(SystemError) in try pipe.read.read(into: raw) } }.get()
        #expect(Array(buffer[0..<count]) == Array("hello".utf8))
    }

    @Test("a released descriptor is not closed by its old owner")
    func release() throws {
        let file = try FileDescriptor.open("/dev/null", O_RDONLY)
        let raw = file.releaseOwnership()
        #expect(fcntl(raw, F_GETFD) >= 0)
        Glibc.close(raw)
    }

    @Test("a non-blocking read with nothing there is wouldBlock, not an error")
    func wouldBlock() throws {
        let pipe = try FileDescriptor.pipe(nonBlocking: true)
        var buffer = [UInt8](repeating: 0, count: 4)
        let result = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(SystemError) in try pipe.read.readNonBlocking(into: raw) }
        }.get()
        guard case .wouldBlock = result else {
            Issue.record("expected wouldBlock, got \(result)")
            return
        }
    }

    @Test("poll sees a readable pipe, and times out on an empty one")
    func poll() throws {
        let pipe = try FileDescriptor.pipe()
        #expect(try pipe.read.wait(for: .readable, timeout: .milliseconds(10)).isEmpty)
        try pipe.write.writeAll([1])
        #expect(try pipe.read.wait(for: .readable, timeout: .seconds(5)).contains(.readable))
    }
}

@Suite struct FileSystemTests {
    @Test("replaceFile writes atomically; makeDirectories and removeTree")
    func files() throws {
        let root = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-test")
        defer { FileSystem.removeTree(root) }
        try FileSystem.makeDirectories(root + "/a/b/c", mode: 0o700)
        #expect(try FileSystem.status(root + "/a/b/c")?.kind == .directory)
        try FileSystem.replaceFile(root + "/a/state", with: Array("one".utf8), durable: true)
        try FileSystem.replaceFile(root + "/a/state", with: Array("two".utf8), durable: false)
        #expect(FileSystem.readText(root + "/a/state") == "two")
        #expect(!FileSystem.exists(root + "/a/state.tmp"))
        #expect(try FileSystem.status(root + "/a/state")?.mode == 0o600)
        FileSystem.removeTree(root + "/a")
        #expect(!FileSystem.exists(root + "/a"))
        #expect(try FileSystem.status(root + "/a") == nil)
    }
}

@Suite struct ThreadAndSignalTests {
    @Test("a wake signal wakes a waiter once; without a signal the wait times out")
    func wakeSignal() {
        let wake = WakeSignal()
        #expect(!wake.wait(timeout: .milliseconds(5)))
        wake.signal()
        #expect(wake.wait(timeout: .seconds(5)))
        #expect(!wake.wait(timeout: .milliseconds(5)))
    }

    @Test("threads of a group all run before joinAll returns")
    func threadGroup() {
        let counter = Atomic<Int>(0)
        let group = ThreadGroup()
        for _ in 0..<4 { group.start(name: "test-worker") { counter.add(1, ordering: .relaxed) } }
        group.joinAll()
        #expect(counter.load(ordering: .relaxed) == 4)
    }

    @Test("a child's exit status and a kill are told apart")
    func processes() throws {
        let exited = try Processes.spawn("/bin/sh", ["-c", "exit 3"])
        #expect(Processes.reap(exited, blocking: true) == .exited(3))
        let sleeping = try Processes.spawn("/bin/sleep", ["30"])
        #expect(Processes.reap(sleeping, blocking: false) == nil)
        Processes.signal(sleeping, SIGKILL)
        #expect(Processes.reap(sleeping, blocking: true) == .signalled(SIGKILL))
    }
}

/// The order services stopped in.
private final class StopLog: Sendable {
    let names = Locked<[String]>([])
    var all: [String] { names.withLock { $0 } }
}

/// Records when it stops.
private final class RecordingService: Service {
    let name: String
    let log: StopLog
    private let stop = WakeSignal()
    private let endsAfter: Duration?

    init(_ name: String, log: StopLog, endsAfter: Duration? = nil) {
        self.name = name
        self.log = log
        self.endsAfter = endsAfter
    }

    func run() {
        if let endsAfter {
            stop.wait(timeout: endsAfter)
        } else {
            while !stop.wait(timeout: .seconds(60)) {}
        }
        log.names.withLock { $0.append(name) }
    }

    func requestStop() { stop.signal() }
}

@Suite struct ServiceGroupTests {
    @Test("a service that ends stops the others, last started first")
    func reverseOrder() {
        let log = StopLog()
        let group = ServiceGroup(services: [RecordingService("first", log: log), RecordingService("second", log: log),
                                            RecordingService("third", log: log, endsAfter: .milliseconds(50))],
                                 stopSignals: [], logger: .init(label: "test"))
        #expect(group.run() == .serviceEnded("third"))
        #expect(log.all == ["third", "second", "first"])
    }

    @Test("a routed signal stops the group")
    func signal() {
        let log = StopLog()
        // SIGUSR2, not SIGTERM: a routed signal stays routed for the test process's life.
        let group = ServiceGroup(services: [RecordingService("only", log: log)], stopSignals: [SIGUSR2], logger: .init(label: "test"))
        let sender = NamedThread(name: "test-signal") {
            SystemClock.sleep(.milliseconds(100))
            kill(getpid(), SIGUSR2)
        }
        #expect(group.run() == .signal(SIGUSR2))
        sender.join()
        #expect(log.all == ["only"])
    }
}

@Suite struct LockedTests {
    @Test("two threads adding under the lock lose nothing")
    func counter() {
        let counter = Locked(0)
        let threads = ThreadGroup()
        for _ in 0..<2 {
            threads.start(name: "locked-test") { for _ in 0..<100_000 { counter.withLock { $0 += 1 } } }
        }
        threads.joinAll()
        #expect(counter.withLock { $0 } == 200_000)
    }

    @Test("a non-copyable value can live behind the lock and be taken once")
    func nonCopyable() {
        let thread = Locked<NamedThread?>(NamedThread(name: "locked-test") {})
        thread.withLock { $0.take()?.join() }
        #expect(thread.withLock { $0 == nil })
    }
}
