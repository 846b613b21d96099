import CAuthRelayLinux
import Glibc

/// A dedicated, named OS thread: the sender owns its RPC handle and may block
/// in calls, so it must not run on the Swift concurrency pool or a shared queue.
struct SenderThread {
    private var thread: pthread_t

    private final class Start {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept by Linux).
    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            _ = CAuthRelayLinux_set_thread_name(String(start.name.prefix(15)))
            start.body()
            return nil
        }, start)
        precondition(status == 0, "pthread_create failed: \(String(cString: strerror(status)))")
        self.thread = thread
    }

    /// Waits for the thread to return.
    func join() {
        pthread_join(thread, nil)
    }
}

/// A wake-up signal for a thread that sleeps in poll(): an eventfd.
final class WakeSignal: @unchecked Sendable {
    // @unchecked: the descriptor is immutable; eventfd reads and writes are thread-safe.
    private let descriptor: Int32

    init() {
        descriptor = CAuthRelayLinux_eventfd()
        precondition(descriptor >= 0, "eventfd failed: \(String(cString: strerror(errno)))")
    }

    deinit { close(descriptor) }

    func signal() {
        _ = CAuthRelayLinux_eventfd_signal(descriptor)
    }

    /// Sleeps until signalled or `timeout` passes; clears the signal.
    func wait(timeout: Duration) {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        _ = poll(&poller, 1, Int32(clamping: milliseconds))
        _ = CAuthRelayLinux_eventfd_clear(descriptor)
    }
}
