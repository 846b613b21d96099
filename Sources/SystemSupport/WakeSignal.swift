import CSystemSupport
import Glibc

/// A wake-up signal for threads that sleep in poll(): an eventfd. Signalling
/// is one write(2), safe from any thread. The descriptor lives as long as the
/// object, so a late signal never writes into a closed and reused descriptor:
/// hold the object, not the number.
package final class WakeSignal: Sendable {
    private let eventDescriptor: FileDescriptor

    package init() {
        let fd = CSystemSupport_eventfd()
        precondition(fd >= 0, "eventfd failed: \(errnoDescription(Glibc.errno))")
        eventDescriptor = FileDescriptor(adopting: fd)
    }

    /// Poll it for `.readable` alongside other descriptors (valid while this object lives).
    package var descriptor: Int32 { eventDescriptor.rawValue }

    package func signal() {
        _ = CSystemSupport_eventfd_signal(eventDescriptor.rawValue)
    }

    /// Consumes a signal, if one is set.
    package func clear() {
        _ = CSystemSupport_eventfd_clear(eventDescriptor.rawValue)
    }

    /// Sleeps until signalled or `timeout` passes; true when signalled. With
    /// `clearing`, the signal is consumed (one wake-up per signal); without,
    /// it stays set for every other waiter.
    @discardableResult
    package func wait(timeout: Duration, clearing: Bool = true) -> Bool {
        let signalled = !((try? eventDescriptor.wait(for: .readable, timeout: timeout)) ?? []).isEmpty
        if clearing { clear() }
        return signalled
    }
}
