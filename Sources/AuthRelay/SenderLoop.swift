import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The sender thread's work: batch, connect, negotiate, send, retry, account.
/// Everything here runs on that one thread, so none of it needs a lock.
final class SenderLoop: @unchecked Sendable {
    // @unchecked: created on the caller's thread, then used only by the sender thread.
    private let core: SenderCore
    private let logger: Logger
    private var configuration: EventSender.Configuration { core.configuration }

    private var nextSequence: UInt64 = 1
    /// Drops (dropped + evicted) already reported in a batch header.
    private var dropsReported: UInt64 = 0
    /// The batch being delivered; resent with the same numbers until acknowledged.
    private var pending: EventBatch?
    /// With version 1, how many of `pending`'s events are acknowledged.
    private var pendingAcknowledged = 0
    private var attempts = 0
    private var backoff: Duration = .zero
    private var version: ProtocolVersion?
    private var everConnected = false
    /// The pending batch's header carries the drops to report (set on its first version 2 send).
    private var pendingCarriesDrops = false
    /// The queue was found empty and the sender napped for a linger since the last event.
    private var napped = false

    init(core: SenderCore, logger: Logger) {
        self.core = core
        self.logger = logger
    }

    func run() {
        let client = CollectorClient(endpoint: configuration.endpoint, program: configuration.program,
                                     timeout: configuration.callTimeout, connectTimeout: configuration.connectTimeout)
        logger.info("sender started", metadata: ["collector": "\(configuration.endpoint)", "boot_id": "\(configuration.bootID)"])
        while !drainTimeIsUp {
            if pending == nil {
                pending = nextBatch()
                if pending == nil {
                    if core.isClosing { break }  // everything delivered
                    waitForEvents()
                    continue
                }
                napped = false
            }
            if deliver(client) {
                finishPending()
            } else {
                sleepBeforeRetry()
            }
        }
        shutDown(client)
    }

    /// The queue is empty. First nap for a linger without asking to be woken,
    /// then sleep until a submit wakes the sender. Waking costs the submitting
    /// auth thread a write(2) to a thread asleep on another CPU: 10 to 25 µs on
    /// a 2-vCPU VM, where without the nap it was the submit's p99 at 20,000
    /// submits/s (Docs/Performance.md).
    /// With the nap, events that keep coming less than a linger apart never
    /// pay it. Events that arrive during the nap have had their linger: the
    /// batch goes without another (see `nextBatch`).
    private func waitForEvents() {
        if !napped && configuration.linger > .zero {
            napped = true
            core.pause(configuration.linger)
        } else if core.waitForWork(timeout: .milliseconds(200)) {
            napped = false  // an event (or close) woke it: the next batch lingers as usual
        }
    }

    // MARK: Batching

    private var drainTimeIsUp: Bool {
        core.isClosing && Timestamps.monotonic() >= core.deadline
    }

    private var unreportedDrops: UInt64 {
        core.counters.dropped.load(ordering: .relaxed) + core.counters.evicted.load(ordering: .relaxed) - dropsReported
    }

    /// Takes up to a batch of events off the queue and numbers them. A batch with
    /// no events is made only to report drops, which version 2 can carry.
    private func nextBatch() -> EventBatch? {
        guard let first = core.take() else {
            guard version == .v2, unreportedDrops > 0 else { return nil }
            return makeBatch([])
        }
        if core.queuedCount + 1 < configuration.maxBatchEvents && !core.isClosing && configuration.linger > .zero && !napped {
            core.pause(configuration.linger)  // let a partial batch fill
        }
        // Each event is made ready (sanitized, numbered) as it is taken, in the
        // array the batch keeps: no second pass, no copy of the batch.
        var events: [Event] = []
        events.reserveCapacity(min(configuration.maxBatchEvents, core.queuedCount + 1))
        var bytes = append(first, to: &events)
        while events.count < configuration.maxBatchEvents, let event = core.take() {
            bytes += append(event, to: &events)
            if bytes >= configuration.maxBatchBytes { break }
        }
        return makeBatch(events)
    }

    /// Sanitizes `event`, gives it the next sequence number of the batch being
    /// built (the batch's first is `nextSequence`) and appends it; its encoded size.
    private func append(_ event: consuming Event, to events: inout [Event]) -> Int {
        sanitize(&event)
        event.sequence = nextSequence + UInt64(events.count)
        let size = event.encodedSize
        events.append(event)
        return size
    }

    /// `events` numbered from `nextSequence` by `append`. The drops go into the
    /// header when it is sent with version 2 (version 1 has no header).
    private func makeBatch(_ events: [Event]) -> EventBatch {
        let header = BatchHeader(agentID: configuration.agentID, bootID: configuration.bootID,
                                 firstSequence: nextSequence, dropped: 0)
        nextSequence += UInt64(events.count)
        if let oldest = events.first {
            core.counters.oldestUndelivered.store(max(oldest.timestampNanoseconds, 1), ordering: .relaxed)
        }
        return EventBatch(header: header, events: events)
    }

    /// Cuts fields to the protocol's bounds so an odd event is still delivered.
    private func sanitize(_ event: inout Event) {
        if (try? event.validate()) != nil { return }  // within every bound: the common case
        core.counters.sanitized.add(1, ordering: .relaxed)
        event.executablePath = Self.bounded(event.executablePath, Event.maxPathBytes)
        event.targetPath = Self.bounded(event.targetPath, Event.maxPathBytes)
        event.digest = Array(event.digest.prefix(Event.maxDigestBytes))
    }

    static func bounded(_ text: String, _ limit: Int) -> String {
        var result = text.replacingNUL()
        while result.utf8.count > limit { result.removeLast() }
        return result
    }

    // MARK: Delivering

    /// One attempt at the pending batch; true when it is done with (acknowledged or rejected).
    private func deliver(_ client: CollectorClient) -> Bool {
        guard let batch = pending else { return true }
        let timeout = callTimeout
        if attempts > 0 { core.counters.retries.add(1, ordering: .relaxed) }
        attempts += 1
        do {
            if version == nil {
                core.counters.state.store(EventSender.State.connecting.rawValue, ordering: .relaxed)
                if configuration.forceVersion1 {
                    try client.ping(version: .v1)
                    version = .v1
                } else {
                    version = try client.negotiate()
                }
                noteConnected()
            }
            if version == .v2 {
                let batch = readyForVersion2(batch)
                core.counters.sent.add(UInt64(batch.events.count), ordering: .relaxed)
                let ack = try client.report(batch, eventFieldsChecked: true, timeout: timeout)
                let done = accept(ack.status, events: batch.events.count)
                if done && ack.status == .ok { dropsReported += batch.header.dropped }
                return done
            }
            // Version 1: one call per event; a retry resumes after the last answered one.
            while pendingAcknowledged < batch.events.count {
                core.counters.sent.add(1, ordering: .relaxed)
                let ack = try client.report(batch.events[pendingAcknowledged], fieldsChecked: true, timeout: timeout)
                if ack.status == .sinkError {
                    core.setLastError("collector could not store event \(ack.sequence) (sink error); retrying")
                    return false
                }
                _ = accept(ack.status, events: 1)
                pendingAcknowledged += 1
            }
            return true
        } catch .invalid(let problem) {
            // The batch breaks a bound (a bad agent or boot id): resending cannot help.
            core.counters.rejected.add(UInt64(batch.events.count - pendingAcknowledged), ordering: .relaxed)
            core.setLastError("invalid batch, not sent: \(problem)")
            logger.error("invalid batch, not sent", metadata: ["problem": "\(problem)"])
            return true
        } catch {
            noteFailure(error)
            return false
        }
    }

    /// The pending batch as version 2 sends it: without the events a version 1
    /// collector already acknowledged (the collector may have changed version
    /// between attempts), and carrying the drops not reported yet. Kept as the
    /// pending batch, so a resend repeats exactly the same numbers and drops.
    private func readyForVersion2(_ batch: EventBatch) -> EventBatch {
        var batch = batch
        if pendingAcknowledged > 0 {
            batch.events.removeFirst(pendingAcknowledged)
            batch.header.firstSequence += UInt64(pendingAcknowledged)
            pendingAcknowledged = 0
        }
        if !pendingCarriesDrops {
            batch.header.dropped = unreportedDrops
            pendingCarriesDrops = true
        }
        pending = batch
        return batch
    }

    /// The timeout for one call: the configured one, cut to what is left of a drain.
    private var callTimeout: Duration {
        guard core.isClosing else { return configuration.callTimeout }
        let now = Timestamps.monotonic()
        let left = core.deadline > now ? core.deadline - now : 0
        return min(configuration.callTimeout, .nanoseconds(Int64(max(left, 1_000_000))))
    }

    /// Counts a report's answer; true unless it should be sent again.
    private func accept(_ status: ReportStatus, events: Int) -> Bool {
        switch status {
        case .ok:
            core.counters.acknowledged.add(UInt64(events), ordering: .relaxed)
            return true
        case .sinkError:
            core.setLastError("collector could not store the batch (sink error); retrying")
            return false
        case .rejected, .unauthorized, .other:
            // Sending the same events again cannot help: count them and go on.
            core.counters.rejected.add(UInt64(events), ordering: .relaxed)
            core.setLastError("collector answered \(status) for \(events) events")
            logger.error("collector refused events", metadata: ["status": "\(status)", "events": "\(events)"])
            return true
        }
    }

    private func noteConnected() {
        if everConnected { core.counters.reconnects.add(1, ordering: .relaxed) }
        everConnected = true
        core.counters.version.store(version?.rawValue ?? 0, ordering: .relaxed)
        core.counters.state.store(EventSender.State.connected.rawValue, ordering: .relaxed)
        logger.info("connected to collector", metadata: ["version": "\(version.map { "\($0)" } ?? "-")"])
    }

    private func noteFailure(_ error: CollectorError) {
        core.setLastError(error.description)
        if case .rpc(let rpc) = error, rpc.status != .timedOut {
            // A lost connection or a restarted collector: negotiate again (it may now be version 1).
            version = nil
        }
        logger.warning("delivery failed", metadata: ["error": "\(error)", "attempt": "\(attempts)"])
    }

    private func finishPending() {
        pending = nil
        pendingAcknowledged = 0
        pendingCarriesDrops = false
        attempts = 0
        backoff = .zero
        core.counters.oldestUndelivered.store(0, ordering: .relaxed)
    }

    /// Capped exponential backoff with ±20% jitter, cut short by close.
    private func sleepBeforeRetry() {
        backoff = backoff == .zero ? configuration.initialBackoff : min(backoff * 2, configuration.maxBackoff)
        let jitter = Double.random(in: 0.8...1.2)
        core.counters.state.store(EventSender.State.backingOff.rawValue, ordering: .relaxed)
        var pause = backoff * jitter
        if core.isClosing {
            let now = Timestamps.monotonic()
            pause = min(pause, .nanoseconds(Int64(core.deadline > now ? core.deadline - now : 0)))
        }
        core.pause(pause)
    }

    // MARK: Shutting down

    private func shutDown(_ client: CollectorClient) {
        core.waitForSubmitsInFlight()
        var undelivered = UInt64((pending?.events.count ?? 0) - pendingAcknowledged)
        while core.take() != nil { undelivered += 1 }
        client.disconnect()
        core.counters.state.store(EventSender.State.closed.rawValue, ordering: .relaxed)
        let report = ShutdownReport(stats: core.stats, undelivered: undelivered)
        core.finish(report)
        if undelivered > 0 || unreportedDrops > 0 {
            logger.warning("sender stopped with events not delivered", metadata: [
                "undelivered": "\(undelivered)", "dropped": "\(report.stats.dropped + report.stats.evicted)",
                "drops_not_reported_to_collector": "\(unreportedDrops)",
            ])
        } else {
            logger.info("sender stopped", metadata: ["acknowledged": "\(report.stats.acknowledged)"])
        }
    }
}

extension String {
    /// An XDR string ends at the first NUL: replace NULs so nothing after one is lost.
    func replacingNUL() -> String {
        guard utf8.contains(0) else { return self }
        return String(decoding: utf8.map { $0 == 0 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }
}
