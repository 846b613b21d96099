import AuthRelayProtocol
import AuthRelaySpool
import Logging
import ONCRPC
import SystemSupport

/// The delivery thread with a spool (`authrelay-send`): composes batches from
/// the window of live pieces, or from the spool when it fell behind (earlier
/// runs' leftovers first, with their own ids and numbers), sends the
/// pre-encoded events, and acknowledges them in the spool, which deletes a
/// segment once everything in it is acknowledged. The only thread that
/// talks to the collector; it never takes events off the queue.
final class DeliveryLoop: @unchecked Sendable {
    // @unchecked: created on the caller's thread, then used only by the delivery thread.
    private let core: SenderCore
    private let pipeline: SpoolPipeline
    private let logger: Logger
    private var configuration: EventSender.Configuration { core.configuration }

    private let current: BootCursor
    /// Earlier runs still to deliver, oldest first.
    private var earlier: [BootCursor] = []
    private var spool: Spool?
    private var pending: PendingBatch?

    init(core: SenderCore, pipeline: SpoolPipeline, logger: Logger) {
        self.core = core
        self.pipeline = pipeline
        self.logger = logger
        current = BootCursor(current: core.configuration.agentID, bootID: core.configuration.bootID,
                             window: pipeline.window, logger: logger)
    }

    func run() {
        let link = CollectorLink(core: core, logger: logger, highest: .v3)
        logger.info("sender started", metadata: ["collector": "\(configuration.endpoint)", "boot_id": "\(configuration.bootID)"])
        while !core.drainTimeIsUp {
            attachSpool()
            if pending == nil { pending = nextBatch(link) }
            guard pending != nil || hasEndsToReport(link) else {
                if isDone { break }
                pipeline.deliveryWake.wait(timeout: .milliseconds(200))
                continue
            }
            if !deliver(link) {
                link.sleepBeforeRetry { pipeline.closeWake.wait(timeout: $0) }
            }
        }
        shutDown(link)
    }

    /// Everything this run numbered is acknowledged, and nothing earlier is left.
    private var isDone: Bool {
        pipeline.spoolerFinished.load(ordering: .acquiring) && earlier.isEmpty && pending == nil
            && current.acknowledged >= pipeline.lastSequence.load(ordering: .acquiring)
    }

    // MARK: The spool and earlier runs

    /// Once the spooler opened the spool: this run reads back from it, and the
    /// earlier runs it found are delivered first.
    private func attachSpool() {
        guard spool == nil, let (spool, _) = pipeline.spool else { return }
        self.spool = spool
        current.attach(spool)
        for boot in spool.earlierBoots {
            guard boot.firstUnacknowledged != nil else {
                // Nothing left to deliver: its end is in the ledger; its directory can go.
                acknowledgeInSpool(boot: boot.bootID, through: boot.lastSequence ?? 0)
                continue
            }
            earlier.append(BootCursor(earlier: boot, spool: spool, logger: logger))
            logger.notice("delivering what an earlier run left in the spool", metadata: [
                "boot_id": "\(boot.bootID)", "ending": "\(boot.ending)", "from_seq": "\(boot.firstUnacknowledged ?? 0)",
                "last_seq": "\(boot.lastSequence.map(String.init) ?? "-")",
            ])
        }
    }

    private func acknowledgeInSpool(boot: String, through sequence: UInt64) {
        guard let spool else { return }
        do {
            try spool.acknowledge(boot: boot, through: sequence)
        } catch {
            logger.warning("spool could not forget acknowledged events", metadata: ["boot_id": "\(boot)", "error": "\(error)"])
        }
        pipeline.publishStats(of: spool, to: core.counters)
    }

    // MARK: Batching

    /// The next batch: an earlier run's first, then this run's.
    private func nextBatch(_ link: CollectorLink) -> PendingBatch? {
        while true {
            let cursor = earlier.first ?? current
            let limits = BatchLimits(version: link.version ?? .v3, maxEvents: link.eventCap, maxArgumentBytes: link.maxArgumentBytes)
            if let batch = BatchComposer.compose(cursor, limits: limits, status: core.counters.agentStatus, logger: logger) {
                if batch.batch.eventCount > 0 {
                    let timestamp = batch.batch.events.withUnsafeBytes { EventXDR.timestamp(in: $0, at: 0) }
                    core.counters.oldestUndelivered.store(max(timestamp, 1), ordering: .relaxed)
                }
                return batch
            }
            guard !cursor.isCurrent, case .nothing = cursor.piece(reaching: cursor.position) else { return nil }
            finishEarlier(cursor)
        }
    }

    /// An earlier run is delivered: the spool forgets it (its end stays in the ledger until reported).
    private func finishEarlier(_ cursor: BootCursor) {
        earlier.removeFirst()
        acknowledgeInSpool(boot: cursor.bootID, through: max(cursor.lastSequence ?? 0, cursor.acknowledged))
        logger.notice("delivered what an earlier run left", metadata: ["boot_id": "\(cursor.bootID)", "through": "\(cursor.acknowledged)"])
    }

    /// The pending batch composed again from its start, for the version the link has now.
    private func recompose(_ link: CollectorLink) {
        guard let old = pending else { return }
        old.cursor.position = old.start
        pending = nil
        pending = nextBatch(link)
    }

    // MARK: Delivering

    /// One attempt at what is due (boot ends, the pending batch); false when
    /// it failed and the next one should wait.
    private func deliver(_ link: CollectorLink) -> Bool {
        guard link.ready() else { return false }
        if link.version == .v3, !reportBootEnds(link) { return false }
        guard let version = link.version, let batch = pending else { return true }
        if batch.version != version || (version != .v3 && !batch.batch.losses.isEmpty) {
            recompose(link)
            return true
        }
        if version == .v1 { return deliverOneByOne(link) }
        do {
            core.counters.sent.add(UInt64(batch.batch.eventCount), ordering: .relaxed)
            let ack = try link.client.report(encoded: batch.batch, version: version, timeout: link.callTimeout)
            link.succeeded()
            guard link.answered(ack.status, about: "sequences \(batch.start)...\(batch.batch.lastSequence)") else { return false }
            if ack.status == .ok {
                complete(batch)
            } else {
                refuse(batch, because: "collector answered \(ack.status)")
            }
            return true
        } catch .rpc(let error) where error.status == .cantDecodeArguments {
            link.succeeded()  // it answered: it cannot take a batch this big
            if link.halveBatches(from: batch.batch.eventCount) {
                recompose(link)
            } else {
                refuse(batch, because: "collector cannot decode it (GARBAGE_ARGS)")
            }
            return true
        } catch .invalid(let problem) {
            refuse(batch, because: "invalid batch, not sent: \(problem)")
            return true
        } catch {
            link.failed(error)
            return false
        }
    }

    /// Version 1: one call per event; a retry resumes after the last answered one.
    private func deliverOneByOne(_ link: CollectorLink) -> Bool {
        guard var batch = pending else { return true }
        let ends = batch.batch.events.withUnsafeBytes { EventXDR.boundaries(of: $0, count: batch.batch.eventCount) } ?? []
        while batch.eventsAcknowledged < ends.count {
            let start = batch.eventsAcknowledged == 0 ? 0 : ends[batch.eventsAcknowledged - 1]
            let end = ends[batch.eventsAcknowledged]
            core.counters.sent.add(1, ordering: .relaxed)
            do {
                let ack = try batch.batch.events.withUnsafeBytes { raw in
                    Result { () throws(CollectorError) in
                        try link.client.report(encodedEvent: UnsafeRawBufferPointer(rebasing: raw[start..<end]), timeout: link.callTimeout)
                    }
                }.get()
                link.succeeded()
                guard link.answered(ack.status, about: "event \(ack.sequence)") else {
                    pending = batch
                    return false
                }
                if ack.status != .ok && batch.cursor.isCurrent { core.counters.rejected.add(1, ordering: .relaxed) }
                count(acknowledged: ack.status == .ok ? 1 : 0, of: batch.cursor)
                batch.eventsAcknowledged += 1
                batch.start = batch.batch.lastSequence + 1 - UInt64(ends.count - batch.eventsAcknowledged)
            } catch {
                link.failed(error)
                pending = batch
                return false
            }
        }
        complete(batch, eventsCounted: true)
        return true
    }

    /// The collector has the batch: acknowledged here and in the spool.
    private func complete(_ batch: PendingBatch, eventsCounted: Bool = false) {
        let cursor = batch.cursor
        cursor.acknowledge(through: batch.batch.lastSequence)
        if !eventsCounted { count(acknowledged: batch.batch.eventCount, of: cursor) }
        if cursor.isCurrent { core.counters.spoolLost.add(batch.spoolLost, ordering: .relaxed) }
        core.counters.replayed.add(UInt64(batch.fromDisk), ordering: .relaxed)
        core.counters.oldestUndelivered.store(0, ordering: .relaxed)
        acknowledgeInSpool(boot: cursor.bootID, through: batch.batch.lastSequence)
        pending = nil
    }

    private func count(acknowledged events: Int, of cursor: BootCursor) {
        guard events > 0 else { return }
        if cursor.isCurrent {
            core.counters.acknowledged.add(UInt64(events), ordering: .relaxed)
        } else {
            core.counters.earlierRunsDelivered.add(UInt64(events), ordering: .relaxed)
        }
    }

    /// The collector refused the batch (it breaks a rule): never sent again.
    /// A version 3 collector is told the range as a `refused` loss instead.
    private func refuse(_ batch: PendingBatch, because reason: String) {
        let cursor = batch.cursor
        if cursor.isCurrent { core.counters.rejected.add(UInt64(batch.batch.eventCount), ordering: .relaxed) }
        core.setLastError("\(reason) for sequences \(batch.start)...\(batch.batch.lastSequence)")
        logger.error("collector refused events", metadata: [
            "reason": "\(reason)", "boot_id": "\(cursor.bootID)", "first_seq": "\(batch.start)", "last_seq": "\(batch.batch.lastSequence)",
        ])
        pending = nil
        if batch.version == .v3 && batch.batch.eventCount > 0 {
            cursor.giveUp(batch.start...batch.batch.lastSequence, reason: .refused)
            cursor.position = batch.start
        } else {
            cursor.acknowledge(through: batch.batch.lastSequence)
            acknowledgeInSpool(boot: cursor.bootID, through: batch.batch.lastSequence)
        }
    }

    // MARK: Boot ends

    private func hasEndsToReport(_ link: CollectorLink) -> Bool {
        guard link.version == nil || link.version == .v3, let (_, ledger) = pipeline.spool else { return false }
        return !ledger.pending.isEmpty
    }

    /// Reports how earlier runs ended (version 3); false when the collector did not answer.
    private func reportBootEnds(_ link: CollectorLink) -> Bool {
        guard let (_, ledger) = pipeline.spool else { return true }
        for end in ledger.pending {
            var report = end
            report.reportedBy = configuration.bootID  // the run that tells the collector
            do {
                let status = try link.client.reportBootEnd(report, timeout: link.callTimeout)
                link.succeeded()
                guard link.answered(status, about: "how boot \(end.bootID) ended") else { return false }
                logger.notice("reported how an earlier run ended", metadata: [
                    "boot_id": "\(end.bootID)", "ending": "\(end.ending)", "last_seq": "\(end.lastSequence)", "status": "\(status)",
                ])
            } catch .rpc(let error) where error.status == .procedureUnavailable {
                logger.warning("collector does not take boot ends", metadata: ["error": "\(error)"])
            } catch {
                link.failed(error)
                return false
            }
            do { try ledger.remove(end) } catch {
                logger.warning("cannot cross a reported boot end off", metadata: ["error": "\(error)"])
            }
        }
        return true
    }

    // MARK: Shutting down

    private func shutDown(_ link: CollectorLink) {
        // The spooler numbers what is left in the queue right after close: its last sequence is final then.
        let deadline = SystemClock.deadline(after: .seconds(5))
        while !pipeline.spoolerFinished.load(ordering: .acquiring) && SystemClock.monotonicNanoseconds() < deadline {
            SystemClock.sleep(.milliseconds(2))
        }
        let last = pipeline.lastSequence.load(ordering: .acquiring)
        if let spool {
            do {
                try spool.markClean(lastSequence: last)
            } catch {
                logger.error("spool could not record the clean stop", metadata: ["error": "\(error)"])
            }
            pipeline.publishStats(of: spool, to: core.counters)
        }
        reportCleanEnd(link, last: last)
        link.close()
        core.counters.state.store(EventSender.State.closed.rawValue, ordering: .relaxed)

        let counters = core.counters
        let owed = counters.stored.load(ordering: .relaxed)
        let settled = counters.acknowledged.load(ordering: .relaxed) + counters.rejected.load(ordering: .relaxed)
            + counters.spoolLost.load(ordering: .relaxed)
        let undelivered = owed > settled ? owed - settled : 0
        let memoryOnly = pipeline.window.memoryOnlyEvents
        let leftInSpool = spool == nil ? 0 : undelivered - min(undelivered, memoryOnly)
        let report = ShutdownReport(stats: core.stats, undelivered: undelivered, leftInSpool: leftInSpool)
        core.finish(report)
        if undelivered > 0 {
            logger.warning("sender stopped with events not delivered", metadata: [
                "undelivered": "\(undelivered)", "left_in_spool": "\(leftInSpool)",
                "dropped": "\(report.stats.dropped + report.stats.evicted)", "last_seq": "\(last)",
            ])
        } else {
            logger.info("sender stopped", metadata: ["acknowledged": "\(report.stats.acknowledged)", "last_seq": "\(last)"])
        }
    }

    /// A clean stop tells a version 3 collector it ended, and its last
    /// sequence, when the collector is answering; otherwise the next run does
    /// (the spool's state says clean).
    private func reportCleanEnd(_ link: CollectorLink, last: UInt64) {
        guard link.version == .v3, !link.failing else { return }
        let end = BootEnd(agentID: configuration.agentID, bootID: configuration.bootID, ending: .clean, lastSequence: last,
                          endedNanoseconds: Timestamps.realtime(), reportedBy: configuration.bootID)
        do {
            _ = try link.client.reportBootEnd(end, timeout: max(link.callTimeout, .milliseconds(250)))
        } catch {
            logger.warning("could not report the clean stop; the next run will", metadata: ["error": "\(error)"])
        }
    }
}
