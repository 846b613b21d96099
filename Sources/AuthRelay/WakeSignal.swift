import CAuthRelayLinux
import Glibc

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
