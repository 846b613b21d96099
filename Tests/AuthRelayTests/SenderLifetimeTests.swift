import AuthRelay
import AuthRelayProtocol
import Glibc  // AF_UNIX
import Logging
import SystemSupport
import Testing
import TestSupport

/// Dropping the last `EventSender` must not wait for the sender thread: it may
/// sit in clnt_call for a whole call timeout, on whatever thread let go of it.
@Suite("EventSender lifetime")
struct SenderLifetimeTests {
    /// The sender calls a collector that never answers.
    init() { TestProcess.prepare() }

    /// The names of this process's threads (/proc/self/task/*/comm; Linux keeps 15 bytes, so tests use short ones).
    static func threadNames() -> [String] {
        ((try? FileSystem.listDirectory("/proc/self/task")) ?? []).compactMap { task in
            FileSystem.readText("/proc/self/task/\(task)/comm").map { String($0.prefix { $0 != "\n" }) }
        }
    }

    @Test("deinit returns while a call is in flight, and the detached thread ends by itself")
    func deinitDoesNotJoin() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "authrelay-lifetime")
        defer { FileSystem.removeTree(directory) }
        let path = directory + "/silent.sock"
        // Listens, never accepts: connect succeeds (the backlog) and every call waits for its timeout.
        let listener = try FileDescriptor.socket(family: AF_UNIX, .stream)
        try listener.bind(to: .unix(path: path))
        try listener.listen()

        let threadName = "arl-\(UInt16.random(in: 0...UInt16.max))"
        var configuration = EventSender.Configuration(endpoint: .unix(path: path), agentID: "lifetime")
        configuration.callTimeout = .seconds(3)
        configuration.connectTimeout = .seconds(1)
        configuration.threadName = threadName
        var sender: EventSender? = EventSender(configuration: configuration, logger: Logger(label: "test"))
        sender!.submit(Sample.event())

        // The sender has connected once the listener has a connection waiting; then it is in its first call.
        let ready = try listener.wait(for: .readable, timeout: .seconds(5))
        try #require(!ready.isEmpty, "the sender never connected")
        SystemClock.sleep(.milliseconds(100))
        #expect(Self.threadNames().contains(threadName))

        let start = SystemClock.monotonicNanoseconds()
        sender = nil
        let deinitTook = Duration.nanoseconds(Int64(SystemClock.monotonicNanoseconds() - start))
        #expect(deinitTook < .seconds(1), "deinit took \(deinitTook): it waited for the call (3 s timeout)")

        // Closing the listener resets the connection: the call fails, the zero drain is over, the thread ends.
        try listener.close()
        let deadline = SystemClock.deadline(after: .seconds(10))
        while Self.threadNames().contains(threadName) && SystemClock.monotonicNanoseconds() < deadline {
            SystemClock.sleep(.milliseconds(10))
        }
        #expect(!Self.threadNames().contains(threadName), "the detached sender thread is still running")
    }

    @Test("close still waits for the sender thread and returns a balanced report")
    func closeJoins() {
        let threadName = "arc-\(UInt16.random(in: 0...UInt16.max))"
        var configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent/authrelay.sock"), agentID: "lifetime")
        configuration.initialBackoff = .milliseconds(10)
        configuration.threadName = threadName
        let sender = EventSender(configuration: configuration, logger: Logger(label: "test"))
        for sequence in UInt64(1)...10 { sender.submit(Sample.event(sequence: sequence)) }
        let report = sender.close(drainTimeout: .milliseconds(50))
        #expect(report.undelivered == 10)
        #expect(report.isBalanced)
        #expect(report.stats.state == .closed)
        #expect(!Self.threadNames().contains(threadName), "close returned before the sender thread ended")
        #expect(sender.close(drainTimeout: .zero) == report, "a second close returns the same report")
    }
}
