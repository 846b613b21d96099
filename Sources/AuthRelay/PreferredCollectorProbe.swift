import AuthRelayProtocol
import Logging
import ONCRPC
import Synchronization
import SystemSupport

/// With `preferFirst`: while the sender talks to another collector, a thread
/// of its own (`authrelay-probe`) asks the first one "are you there?" once
/// every `interval` (a negotiation with 250 ms timeouts), and says when it
/// answers. In the background because a stopped collector takes the whole
/// timeout to not answer: asked from the delivery thread, every probe would
/// stall delivery for it.
final class PreferredCollectorProbe: Sendable {
    /// What the probing thread and the delivery thread share.
    private final class Shared: Sendable {
        let wanted = Atomic<Bool>(false)
        let answered = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(false)
        let wake = WakeSignal()
    }

    private let shared = Shared()
    private let thread = Locked<NamedThread?>(nil)

    static let timeout: Duration = .milliseconds(250)

    init(endpoint: RPCEndpoint, program: UInt32, highest: ProtocolVersion, interval: Duration, logger: Logger) {
        let shared = self.shared
        thread.withLock {
            $0 = NamedThread(name: "authrelay-probe") {
                let client = CollectorClient(endpoint: endpoint, program: program, timeout: Self.timeout, connectTimeout: Self.timeout)
                while !shared.stopped.load(ordering: .acquiring) {
                    // A wake-up (probing asked for, or close) only starts the wait again: one probe per interval at most.
                    let wanted = shared.wanted.load(ordering: .acquiring)
                    guard !shared.wake.wait(timeout: wanted ? interval : .seconds(3600)) else { continue }
                    guard shared.wanted.load(ordering: .acquiring), !shared.answered.load(ordering: .acquiring) else { continue }
                    do {
                        try client.negotiate(upTo: highest)
                        shared.answered.store(true, ordering: .releasing)
                        logger.info("the preferred collector answers again", metadata: ["collector": "\(endpoint)"])
                    } catch {
                        logger.debug("the preferred collector does not answer", metadata: ["collector": "\(endpoint)", "error": "\(error)"])
                    }
                    client.disconnect()
                }
            }
        }
    }

    deinit {
        close()
    }

    /// The sender left the first collector: probe it from now on.
    func start() {
        shared.answered.store(false, ordering: .releasing)
        shared.wanted.store(true, ordering: .releasing)
        shared.wake.signal()
    }

    /// The sender is back on the first collector.
    func pause() {
        shared.wanted.store(false, ordering: .releasing)
        shared.answered.store(false, ordering: .releasing)
    }

    /// The first collector answered a probe since `start()`.
    var firstAnswers: Bool { shared.answered.load(ordering: .acquiring) }

    /// Ends the thread (within one probe's timeouts) and waits for it.
    func close() {
        shared.stopped.store(true, ordering: .releasing)
        shared.wake.signal()
        thread.withLock { $0.take()?.join() }
    }
}
