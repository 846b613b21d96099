import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The delivering thread's connection to its collectors: which one it talks
/// to, the version it negotiated there, whether the last attempt failed, the
/// backoff, and the counters and state that say so. One thread uses it.
///
/// Fast resume: while attempts fail, each one first asks "are you there?"
/// with a NULL call of `pingTimeout` (250 ms) before anything is sent again,
/// and the backoff between attempts stays at most `maxBackoff` (1 s by
/// default): delivery resumes about a second after the collector answers,
/// where a batch call that waited a whole call timeout for a stopped
/// collector, then a 5 s backoff, cost up to 7 s (issue 12).
///
/// Several collectors: a failure (timeout, refused, not registered, a
/// version it cannot speak, a sink error) moves the link to the next one
/// after `initialBackoff`, not after the growing backoff, which only applies
/// once every collector failed in turn. The caller resends its pending batch
/// there with the same numbers (at-least-once: a timed-out call may have been
/// executed by the one left). With `preferFirst` it goes back to the first
/// once a background probe finds it answering, between two attempts.
final class CollectorLink {
    private let clients: [CollectorClient]
    private let core: SenderCore
    private let logger: Logger
    /// The highest version to negotiate: the configuration's, at most 3 with a spool and 2 for the memory sender.
    private let highest: ProtocolVersion
    private var configuration: EventSender.Configuration { core.configuration }
    private let probe: PreferredCollectorProbe?

    /// The collector in use: an index into the configuration's endpoints.
    private(set) var active = 0
    var client: CollectorClient { clients[active] }
    var endpoint: RPCEndpoint { client.endpoint }

    private(set) var version: ProtocolVersion?
    /// The last attempt failed: the next one pings first.
    private(set) var failing = false
    private var everConnected = false
    private var backoff: Duration = .zero
    /// Collectors that failed in turn since the last answer: until each has, a failure moves on without the backoff.
    private var failedInTurn = 0
    /// Attempts at the current batch (a retry counts from the second).
    private var attempts = 0
    /// Events per batch the collector takes: halved each time it cannot
    /// decode a batch (GARBAGE_ARGS: a plain rpcgen server's buffer is
    /// smaller than the batch), back to the configured size on a new connection.
    private(set) var eventCap: Int
    /// Sink errors answered since the last batch stored: one episode, logged once.
    private var sinkErrorsInEpisode: UInt64 = 0
    private var sinkErrorSince: UInt64 = 0

    init(core: SenderCore, logger: Logger, highest: ProtocolVersion) {
        self.core = core
        self.logger = logger
        let configuration = core.configuration
        self.highest = min(highest, configuration.highestVersion)
        clients = configuration.endpoints.map {
            CollectorClient(endpoint: $0, program: configuration.program, timeout: configuration.callTimeout,
                            connectTimeout: configuration.connectTimeout)
        }
        eventCap = configuration.maxBatchEvents
        probe = configuration.preferFirst && configuration.endpoints.count > 1
            ? PreferredCollectorProbe(endpoint: configuration.endpoints[0], program: configuration.program, highest: self.highest,
                                      interval: configuration.preferredProbeInterval, logger: logger)
            : nil
    }

    static let pingTimeout: Duration = .milliseconds(250)

    /// Bytes of one call's arguments the transport takes: over UDP what a plain
    /// rpcgen server's default buffer holds (8,800 bytes with the call header).
    var maxArgumentBytes: Int {
        endpoint.transport == .udp
            ? min(configuration.maxBatchBytes, WireSize.defaultServerDatagram - WireSize.callHeaderWithoutAuth)
            : configuration.maxBatchBytes
    }

    /// Makes the link ready for a call: back to the first collector when it
    /// is preferred and answers again, negotiates when no version is known,
    /// and after a failure checks with a short NULL that the collector
    /// answers. False (the failure noted) when it is not there.
    func ready() -> Bool {
        if attempts > 0 { core.counters.retries.add(1, ordering: .relaxed) }
        attempts += 1
        if active != 0, let probe, probe.firstAnswers {
            switchTo(0, because: "the preferred collector answers again")
        }
        // Pings and negotiation use the client's timeout; calls name their own.
        client.timeout = failing ? min(Self.pingTimeout, configuration.callTimeout) : callTimeout
        do {
            if let version {
                if failing { try client.ping(version: version, timeout: client.timeout) }
                return true
            }
            core.counters.state.store(EventSender.State.connecting.rawValue, ordering: .relaxed)
            version = try client.negotiate(upTo: highest)
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
        core.counters.state.store(EventSender.State.connected.rawValue, ordering: .relaxed)
    }

    func failed(_ error: CollectorError) {
        let wasWorking = !failing
        failing = true
        core.setLastError("\(endpoint): \(error)")
        logger.warning("delivery failed", metadata: ["collector": "\(endpoint)", "error": "\(error)", "attempt": "\(attempts)"])
        if clients.count > 1 {
            moveOn(because: "\(error)", loud: wasWorking)
        } else if case .rpc(let rpc) = error, rpc.status != .timedOut {
            // A lost connection or a restarted collector: negotiate again (it may now be another version).
            forgetVersion()
        }
    }

    // MARK: Sink errors

    /// What the collector answered a report: false for SINK_ERROR (see
    /// `sinkError`), which the caller sends again; any other answer ends a
    /// sink error episode and the backoff.
    func answered(_ status: ReportStatus, about what: @autoclosure () -> String) -> Bool {
        guard status != .sinkError else {
            sinkError(what())
            return false
        }
        stored()
        return true
    }

    /// The collector answered SINK_ERROR (it could not store what it was
    /// sent: its disk, its database): counted; logged once per episode, with
    /// the reason, until it stores again. With several collectors the next
    /// one is tried. The backoff grows as for a failure.
    private func sinkError(_ what: String) {
        core.counters.sinkErrors.add(1, ordering: .relaxed)
        let reason = "collector \(endpoint) could not store \(what) (SINK_ERROR: its disk or database failed)"
        core.setLastError(reason + "; retrying")
        if sinkErrorsInEpisode == 0 {
            core.counters.sinkErrorEpisodes.add(1, ordering: .relaxed)
            sinkErrorSince = Timestamps.monotonic()
            logger.error("collector cannot store events: keeping them and retrying (logged once until it stores again)", metadata: [
                "reason": "\(reason)", "collector": "\(endpoint)",
            ])
        }
        sinkErrorsInEpisode += 1
        failing = true
        if clients.count > 1 { moveOn(because: "sink error", loud: sinkErrorsInEpisode == 1) }
    }

    /// The collector took what it was sent (stored, or refused as breaking a rule).
    private func stored() {
        backoff = .zero
        failedInTurn = 0
        guard sinkErrorsInEpisode > 0 else { return }
        let lasted = Duration.nanoseconds(Int64(Timestamps.monotonic() - sinkErrorSince))
        logger.notice("collector stores events again", metadata: [
            "collector": "\(endpoint)", "sink_errors": "\(sinkErrorsInEpisode)", "lasted": "\(lasted.shortDescription)",
        ])
        sinkErrorsInEpisode = 0
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

    /// Capped exponential backoff with ±20% jitter, cut short by close. With
    /// several collectors, `initialBackoff` only until each has failed in turn.
    func sleepBeforeRetry(in pause: (Duration) -> Void) {
        let nextCollectorUntried = failedInTurn > 0 && failedInTurn < clients.count
        if nextCollectorUntried {
            backoff = configuration.initialBackoff
        } else {
            failedInTurn = 0
            backoff = backoff == .zero ? configuration.initialBackoff : min(backoff * 2, configuration.maxBackoff)
        }
        let jitter = Double.random(in: 0.8...1.2)
        core.counters.state.store(EventSender.State.backingOff.rawValue, ordering: .relaxed)
        var duration = backoff * jitter
        if core.isClosing {
            let now = Timestamps.monotonic()
            duration = min(duration, .nanoseconds(Int64(core.deadline > now ? core.deadline - now : 0)))
        }
        pause(duration)
    }

    /// Closes the connections and the probe (at the sender's end).
    func close() {
        probe?.close()
        for client in clients { client.disconnect() }
    }

    // MARK: Switching collectors

    /// A failure here: the next collector in the list.
    private func moveOn(because reason: String, loud: Bool) {
        failedInTurn += 1
        let next = (active + 1) % clients.count
        if loud {
            logger.warning("collector failed: moving to the next one", metadata: [
                "from": "\(endpoint)", "to": "\(clients[next].endpoint)", "reason": "\(reason)",
            ])
        } else {
            logger.debug("trying the next collector", metadata: ["from": "\(endpoint)", "to": "\(clients[next].endpoint)"])
        }
        switchTo(next, because: reason)
    }

    private func switchTo(_ index: Int, because reason: String) {
        guard index != active else { return }
        client.disconnect()
        active = index
        forgetVersion()
        core.counters.failovers.add(1, ordering: .relaxed)
        core.counters.activeCollector.store(index, ordering: .relaxed)
        if index == 0 {
            probe?.pause()
            failing = false  // the probe just heard it
            logger.notice("back to the preferred collector", metadata: ["collector": "\(endpoint)", "reason": "\(reason)"])
        } else {
            probe?.start()
        }
    }

    private func forgetVersion() {
        version = nil
        eventCap = configuration.maxBatchEvents
    }

    private func noteConnected() {
        if everConnected { core.counters.reconnects.add(1, ordering: .relaxed) }
        everConnected = true
        failing = false
        core.counters.version.store(version?.rawValue ?? 0, ordering: .relaxed)
        core.counters.state.store(EventSender.State.connected.rawValue, ordering: .relaxed)
        logger.info("connected to collector", metadata: ["collector": "\(endpoint)", "version": "\(version.map { "\($0)" } ?? "-")"])
    }
}
