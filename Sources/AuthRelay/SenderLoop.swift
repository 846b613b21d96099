import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The memory sender's thread (no spool): batch, connect, negotiate, send,
/// retry, account. Everything here runs on that one thread, so none of it
/// needs a lock. Events are numbered as they leave the queue; drops are
/// counted and reported in the next version 2 header (they have no number).
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
    /// Numbered events that go before anything new from the queue: an event
    /// that would have taken a batch past its byte bound, or the second half
    /// of a batch the collector could not decode.
    private var carried: [Event] = []
    /// The pending batch's header carries the drops to report (set on its first version 2 send).
    private var pendingCarriesDrops = false
    /// The queue was found empty and the sender napped for a linger since the last event.
    private var napped = false

    init(core: SenderCore, logger: Logger) {
        self.core = core
        self.logger = logger
    }

    func run() {
        let link = CollectorLink(core: core, logger: logger, highest: .v2)
        logger.info("sender started", metadata: ["collector": "\(configuration.endpoint)", "boot_id": "\(configuration.bootID)"])
        while !core.drainTimeIsUp {
            if pending == nil {
                pending = nextBatch(link)
                if pending == nil {
                    if core.isClosing { break }  // everything delivered
                    core.waitForEvents(napped: &napped)
                    continue
                }
                napped = false
            }
            if deliver(link) {
                finishPending()
            } else {
                link.sleepBeforeRetry(in: core.pause)
            }
        }
        shutDown(link)
    }

    // MARK: Batching

    private var unreportedDrops: UInt64 {
        core.counters.dropped.load(ordering: .relaxed) + core.counters.evicted.load(ordering: .relaxed) - dropsReported
    }

    /// Takes up to a batch of events off the queue and numbers them. A batch with
    /// no events is made only to report drops, which version 2 can carry.
    private func nextBatch(_ link: CollectorLink) -> EventBatch? {
        let maxEvents = min(configuration.maxBatchEvents, link.eventCap)
        let maxBytes = link.maxArgumentBytes - WireSize.largestBatchHeader - 4
        var events: [Event] = []
        var bytes = 0
        // Carried events are numbered already: they go first, as they are.
        while let event = carried.first, events.count < maxEvents, events.isEmpty || bytes + event.encodedSize <= maxBytes {
            bytes += event.encodedSize
            events.append(carried.removeFirst())
        }
        if events.isEmpty {
            guard let first = core.take() else {
                guard link.version == .v2, unreportedDrops > 0 else { return nil }
                return makeBatch([])
            }
            core.lingerForMore(batch: maxEvents, napped: napped)
            // Each event is made ready (sanitized, numbered) as it is taken, in the
            // array the batch keeps: no second pass, no copy of the batch.
            events.reserveCapacity(min(maxEvents, core.queuedCount + 1))
            bytes += append(first, to: &events)
        }
        guard carried.isEmpty else { return makeBatch(events) }
        while events.count < maxEvents, bytes < configuration.maxBatchBytes, let event = core.take() {
            let size = append(event, to: &events)
            if bytes + size > maxBytes {
                carried.append(events.removeLast())  // it starts the next batch, with its number
                break
            }
            bytes += size
        }
        return makeBatch(events)
    }

    /// Sanitizes `event`, gives it the next sequence number and appends it; its encoded size.
    private func append(_ event: consuming Event, to events: inout [Event]) -> Int {
        sanitize(&event)
        event.sequence = nextSequence
        nextSequence += 1
        let size = event.encodedSize
        events.append(event)
        return size
    }

    /// `events` numbered by `append`. The drops go into the header when it is
    /// sent with version 2 (version 1 has no header).
    private func makeBatch(_ events: [Event]) -> EventBatch {
        let header = BatchHeader(agentID: configuration.agentID, bootID: configuration.bootID,
                                 firstSequence: events.first?.sequence ?? nextSequence, dropped: 0)
        if let oldest = events.first {
            core.counters.oldestUndelivered.store(max(oldest.timestampNanoseconds, 1), ordering: .relaxed)
        }
        return EventBatch(header: header, events: events)
    }

    /// Cuts fields to the protocol's bounds so an odd event is still delivered.
    private func sanitize(_ event: inout Event) {
        if EventSanitizer.sanitize(&event) { core.counters.sanitized.add(1, ordering: .relaxed) }
    }

    // MARK: Delivering

    /// One attempt at the pending batch; true when it is done with (acknowledged or rejected).
    private func deliver(_ link: CollectorLink) -> Bool {
        guard let batch = pending else { return true }
        guard link.ready() else { return false }
        let timeout = link.callTimeout
        let client = link.client
        do {
            if link.version == .v2 {
                let batch = readyForVersion2(batch)
                core.counters.sent.add(UInt64(batch.events.count), ordering: .relaxed)
                let ack = try client.report(batch, eventFieldsChecked: true, timeout: timeout)
                link.succeeded()
                let done = settle(ack.status, events: batch.events.count, link: link,
                                  what: "sequences \(batch.header.firstSequence)...\(batch.header.firstSequence + UInt64(max(batch.events.count, 1)) - 1)")
                if done && ack.status == .ok { dropsReported += batch.header.dropped }
                return done
            }
            // Version 1: one call per event; a retry resumes after the last answered one.
            while pendingAcknowledged < batch.events.count {
                core.counters.sent.add(1, ordering: .relaxed)
                let ack = try client.report(batch.events[pendingAcknowledged], fieldsChecked: true, timeout: timeout)
                link.succeeded()
                guard settle(ack.status, events: 1, link: link, what: "event \(ack.sequence)") else { return false }
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
            if case .rpc(let rpc) = error, rpc.status == .cantDecodeArguments {
                link.succeeded()  // it answered: it cannot take a batch this big
                return split(link, batch)
            }
            link.failed(error)
            return false
        }
    }

    /// GARBAGE_ARGS: a batch of n > 1 events goes again as two; a single event
    /// the collector cannot decode is rejected (resending it cannot help).
    private func split(_ link: CollectorLink, _ batch: EventBatch) -> Bool {
        let events = Array(batch.events.dropFirst(pendingAcknowledged))
        guard link.halveBatches(from: events.count) else {
            core.counters.rejected.add(UInt64(events.count), ordering: .relaxed)
            core.setLastError("collector cannot decode event \(batch.header.firstSequence + UInt64(pendingAcknowledged)); not sent again")
            return true
        }
        let half = events.count / 2
        var first = pending!
        first.events = Array(events.prefix(half))
        first.header.firstSequence = events[0].sequence
        carried.insert(contentsOf: events.dropFirst(half), at: 0)
        pending = first
        pendingAcknowledged = 0
        return false
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

    /// Counts a report's answer; true unless it should be sent again (a sink error).
    private func settle(_ status: ReportStatus, events: Int, link: CollectorLink, what: @autoclosure () -> String) -> Bool {
        guard link.answered(status, about: what()) else { return false }
        switch status {
        case .ok:
            core.counters.acknowledged.add(UInt64(events), ordering: .relaxed)
            return true
        case .sinkError:
            return false
        case .rejected, .unauthorized, .other:
            // Sending the same events again cannot help: count them and go on.
            core.counters.rejected.add(UInt64(events), ordering: .relaxed)
            core.setLastError("collector answered \(status) for \(events) events")
            logger.error("collector refused events", metadata: ["status": "\(status)", "events": "\(events)"])
            return true
        }
    }

    private func finishPending() {
        pending = nil
        pendingAcknowledged = 0
        pendingCarriesDrops = false
        core.counters.oldestUndelivered.store(0, ordering: .relaxed)
    }

    // MARK: Shutting down

    private func shutDown(_ link: CollectorLink) {
        core.waitForSubmitsInFlight()
        var undelivered = UInt64((pending?.events.count ?? 0) - pendingAcknowledged + carried.count)
        while core.take() != nil { undelivered += 1 }
        link.close()
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

/// Brings an event within the protocol's bounds, once, as the sender takes it.
enum EventSanitizer {
    /// True when a field had to be cut (the event is still delivered).
    static func sanitize(_ event: inout Event) -> Bool {
        if (try? event.validate()) != nil { return false }  // within every bound: the common case
        event.executablePath = bounded(event.executablePath, Event.maxPathBytes)
        event.targetPath = bounded(event.targetPath, Event.maxPathBytes)
        event.digest = Array(event.digest.prefix(Event.maxDigestBytes))
        return true
    }

    static func bounded(_ text: String, _ limit: Int) -> String {
        var result = text.replacingNUL()
        while result.utf8.count > limit { result.removeLast() }
        return result
    }
}

extension String {
    /// An XDR string ends at the first NUL: replace NULs so nothing after one is lost.
    func replacingNUL() -> String {
        guard utf8.contains(0) else { return self }
        return String(decoding: utf8.map { $0 == 0 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }
}
