import CAuthRelayLinux
import Glibc

/// A wake-up signal for threads that sleep in poll(): an eventfd. Signalling
/// is one write(2), safe from any thread and from a signal handler.
package final class WakeSignal: Sendable {
    /// Poll it for POLLIN alongside other descriptors.
    package let descriptor: Int32

    package init() {
        descriptor = CAuthRelayLinux_eventfd()
        precondition(descriptor >= 0, "eventfd failed: \(String(cString: strerror(errno)))")
    }

    deinit { close(descriptor) }

    package func signal() {
        _ = CAuthRelayLinux_eventfd_signal(descriptor)
    }

    /// Sleeps until signalled or `timeout` passes; true when signalled. With
    /// `clearing`, the signal is consumed (one wake-up per signal); without,
    /// it stays set for every other waiter.
    @discardableResult
    package func wait(timeout: Duration, clearing: Bool = true) -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        let signalled = poll(&poller, 1, Int32(clamping: milliseconds)) > 0
        if clearing { _ = CAuthRelayLinux_eventfd_clear(descriptor) }
        return signalled
    }
}
