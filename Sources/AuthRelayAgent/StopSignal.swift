import SystemSupport

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
}
