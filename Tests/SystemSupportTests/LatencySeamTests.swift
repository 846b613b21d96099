import Glibc
import SystemSupport
import Testing

/// What the latency benchmarks added to the seam: an absolute sleep, a
/// shutdown that ends a blocked server thread, and this process's identity.
@Suite struct LatencySeamTests {
    @Test("sleep(untilMonotonic:) returns at the deadline, not before, and not long after")
    func absoluteSleep() {
        let deadline = SystemClock.monotonicNanoseconds() + 20_000_000
        SystemClock.sleep(untilMonotonic: deadline)
        let now = SystemClock.monotonicNanoseconds()
        #expect(now >= deadline)
        #expect(now - deadline < 2_000_000_000, "woke \(now - deadline) ns late")
        // A deadline already passed returns at once.
        let before = SystemClock.monotonicNanoseconds()
        SystemClock.sleep(untilMonotonic: before - 1_000_000)
        #expect(SystemClock.monotonicNanoseconds() - before < 1_000_000_000)
    }

    /// The listener, shared by the test and the thread blocked in accept(2) on it.
    private final class Listener: Sendable {
        let socket: FileDescriptor
        init(_ socket: consuming FileDescriptor) { self.socket = socket }
    }

    @Test("shutting a listening socket down ends a thread blocked in accept")
    func shutdownEndsAccept() throws {
        let socket = try FileDescriptor.socket(family: AF_INET, .stream)
        try socket.bind(to: .loopback(port: 0))
        try socket.listen()
        let listener = Listener(socket)
        let returned = WakeSignal()
        let thread = NamedThread(name: "test-accept") {
            _ = try? listener.socket.accept(nonBlocking: false)
            returned.signal()
        }
        SystemClock.sleep(.milliseconds(50))  // let it block in accept
        listener.socket.shutdownReadingAndWriting()
        let woke = returned.wait(timeout: .seconds(5))
        #expect(woke, "accept did not return after shutdown")
        if woke { thread.join() } else { thread.detach() }  // fail, never hang
    }

    @Test("the identity is this process's")
    func identity() {
        let identity = ProcessIdentity.current
        #expect(identity.pid == getpid())
        #expect(identity.ppid == getppid())
        #expect(identity.uid == getuid())
        #expect(identity.gid == getgid())
    }
}
