import AuthRelay
import CAuthRelayLinux
import Glibc
import Synchronization

/// The agent's stop: a wake-up eventfd that, once signalled, stays readable,
/// so every thread polling it (the answering loop, the supervisor) sees it.
public final class StopSignal: Sendable {
    private let wake = WakeSignal()

    public init() {}

    /// Poll it for POLLIN alongside the source's own descriptor.
    public var descriptor: Int32 { wake.descriptor }

    /// Asks everything that polls the descriptor to stop. Never cleared.
    public func signal() {
        wake.signal()
    }

    public var isSignalled: Bool { wait(timeout: .zero) }

    /// Sleeps until signalled or `timeout` passes; true when signalled.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        wake.wait(timeout: timeout, clearing: false)
    }

    /// Makes SIGTERM and SIGINT (or `signals`) signal `stop`. The handler only
    /// writes to the eventfd (async-signal-safe); whoever polls it does the rest.
    /// One stop signal per process: a later call replaces the earlier one.
    /// Call it from the main thread: it also unblocks the signals there, since
    /// a parent may have started us with them blocked (the mask survives exec).
    public static func route(_ signals: [Int32] = [SIGTERM, SIGINT], to stop: StopSignal) {
        routedDescriptor.store(stop.descriptor, ordering: .sequentiallyConsistent)
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for number in signals { sigaddset(&unblock, number) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in
                let descriptor = routedDescriptor.load(ordering: .relaxed)
                if descriptor >= 0 { _ = CAuthRelayLinux_eventfd_signal(descriptor) }
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
    }
}

/// The descriptor the signal handler writes to (a plain load: async-signal-safe).
private let routedDescriptor = Atomic<Int32>(-1)
