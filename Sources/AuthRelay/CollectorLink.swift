import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The delivering thread's connection to the collector: the version it
/// negotiated, whether the last attempt failed, the backoff, and the
/// counters and state that say so. One thread uses it.
///
/// Fast resume: while attempts fail, each one first asks "are you there?"
/// with a NULL call of `pingTimeout` (250 ms) before anything is sent again,
/// and the backoff between attempts stays at most `maxBackoff` (1 s by
/// default): delivery resumes about a second after the collector answers,
/// where a batch call that waited a whole call timeout for a stopped
/// collector, then a 5 s backoff, cost up to 7 s (issue 12).
final class CollectorLink {
    let client: CollectorClient
    private let core: SenderCore
    private let logger: Logger
    /// The highest version to negotiate: 3 with a spool, 2 for the memory sender.
    private let highest: ProtocolVersion
    private var configuration: EventSender.Configuration { core.configuration }

    private(set) var version: ProtocolVersion?
    /// The last attempt failed: the next one pings first.
    private(set) var failing = false
    private var everConnected = false
    private var backoff: Duration = .zero
    /// Attempts at the current batch (a retry counts from the second).
    private var attempts = 0
    /// Events per batch the collector takes: halved each time it cannot
    /// decode a batch (GARBAGE_ARGS: a plain rpcgen server's buffer is
    /// smaller than the batch), back to the configured size on a new connection.
    private(set) var eventCap: Int

    init(core: SenderCore, logger: Logger, highest: ProtocolVersion) {
        self.core = core
        self.logger = logger
        self.highest = highest
        let configuration = core.configuration
        client = CollectorClient(endpoint: configuration.endpoint, program: configuration.program,
                                 timeout: configuration.callTimeout, connectTimeout: configuration.connectTimeout)
        eventCap = configuration.maxBatchEvents
    }

    static let pingTimeout: Duration = .milliseconds(250)

    /// Bytes of one call's arguments the transport takes: over UDP what a plain
    /// rpcgen server's default buffer holds (8,800 bytes with the call header).
    var maxArgumentBytes: Int {
        configuration.endpoint.transport == .udp
            ? min(configuration.maxBatchBytes, WireSize.defaultServerDatagram - WireSize.callHeaderWithoutAuth)
            : configuration.maxBatchBytes
    }

    /// Makes the link ready for a call: negotiates when no version is known,
    /// and after a failure checks with a short NULL that the collector
    /// answers. False (the failure noted) when it is not there.
    func ready() -> Bool {
        if attempts > 0 { core.counters.retries.add(1, ordering: .relaxed) }
        attempts += 1
        // Pings and negotiation use the client's timeout; calls name their own.
        client.timeout = failing ? min(Self.pingTimeout, configuration.callTimeout) : callTimeout
        do {
            if let version {
                if failing { try client.ping(version: version, timeout: client.timeout) }
                return true
            }
            core.counters.state.store(EventSender.State.connecting.rawValue, ordering: .relaxed)
            if configuration.forceVersion1 {
                try client.ping(version: .v1)
                version = .v1
            } else {
                version = try client.negotiate(upTo: highest)
            }
            noteConnected()
            return true
        } catch {
            failed(error)
            return false
        }
    }

    /// The attempt got an answer (whatever its status): the collector is there.
    func succeeded() {
        failing = false
        attempts = 0
        backoff = .zero
        core.counters.state.store(EventSender.State.connected.rawValue, ordering: .relaxed)
    }

    func failed(_ error: CollectorError) {
        failing = true
        core.setLastError(error.description)
        if case .rpc(let rpc) = error, rpc.status != .timedOut {
            // A lost connection or a restarted collector: negotiate again (it may now be another version).
            version = nil
            eventCap = configuration.maxBatchEvents
        }
        logger.warning("delivery failed", metadata: ["error": "\(error)", "attempt": "\(attempts)"])
    }

    /// The collector could not decode a batch of `events` events: smaller ones from now on.
    /// False when it was a single event (nothing smaller to try).
    func halveBatches(from events: Int) -> Bool {
        guard events > 1 else { return false }
        eventCap = max(1, events / 2)
        logger.notice("collector could not decode a batch: splitting", metadata: ["events": "\(events)", "now": "\(eventCap)"])
        return true
    }

    /// The timeout for one call: the configured one, cut to what is left of a drain.
    var callTimeout: Duration {
        guard core.isClosing else { return configuration.callTimeout }
        let now = Timestamps.monotonic()
        let left = core.deadline > now ? core.deadline - now : 0
        return min(configuration.callTimeout, .nanoseconds(Int64(max(left, 1_000_000))))
    }

    /// Capped exponential backoff with ±20% jitter, cut short by close.
    func sleepBeforeRetry(in pause: (Duration) -> Void) {
        backoff = backoff == .zero ? configuration.initialBackoff : min(backoff * 2, configuration.maxBackoff)
        let jitter = Double.random(in: 0.8...1.2)
        core.counters.state.store(EventSender.State.backingOff.rawValue, ordering: .relaxed)
        var duration = backoff * jitter
        if core.isClosing {
            let now = Timestamps.monotonic()
            duration = min(duration, .nanoseconds(Int64(core.deadline > now ? core.deadline - now : 0)))
        }
        pause(duration)
    }

    private func noteConnected() {
        if everConnected { core.counters.reconnects.add(1, ordering: .relaxed) }
        everConnected = true
        failing = false
        core.counters.version.store(version?.rawValue ?? 0, ordering: .relaxed)
        core.counters.state.store(EventSender.State.connected.rawValue, ordering: .relaxed)
        logger.info("connected to collector", metadata: ["version": "\(version.map { "\($0)" } ?? "-")"])
    }
}
