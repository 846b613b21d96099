import AuthRelayProtocol
import AuthRelaySpool
import Logging
import SystemSupport

/// The spooler thread (`authrelay-spool`): takes events off the queue (with a
/// linger, as the memory sender batches), numbers them, encodes them once to
/// XDR, appends them to the spool as one record, and offers the record to
/// the delivery thread's window. It never touches the network, so memory
/// keeps emptying while a call to a stopped collector waits for its timeout.
///
/// Every refused submit takes a sequence number in queue order (the count an
/// event carries in the queue, see `SenderCore`, or a jump in the queue positions
/// for drop-oldest evictions) and becomes a `queue_full` loss record there:
/// the collector's loss ranges match the timestamps.
///
/// When the spool cannot be written (or opened) it falls back to memory: one
/// log line, a counter, the records kept in the window only (bounded: when it
/// is full the spooler stops taking, the queue fills, and submits drop with
/// their places), and a try at the spool again every `retryInterval`.
final class Spooler: @unchecked Sendable {
    // @unchecked: created on the caller's thread, then used only by the spooler thread.
    private let core: SenderCore
    private let pipeline: SpoolPipeline
    private let logger: Logger
    private var configuration: EventSender.Configuration { core.configuration }
    private var options: EventSender.SpoolOptions { pipeline.options }

    private var spool: Spool?
    private var usable = false
    /// Between a failure (or a first open that failed) and the spool taking records again.
    private var inFallback = false
    /// CLOCK_MONOTONIC ns of the next try at an unusable spool.
    private var retryAt: UInt64 = 0
    private var nextSequence: UInt64 = 1
    /// The queue position the next event should have (a jump: evictions).
    private var expectedPosition = 0
    private var napped = false

    // The record being built: its events, numbered and sanitized, encoded when it is stored.
    private var events: [Event] = []
    private var recordBytes = 0

    /// Events per record: one batch.
    private var maxRecordEvents: Int { configuration.maxBatchEvents }
    /// Bytes per record: small against a segment, so eviction stays fine-grained.
    private var maxRecordBytes: Int { Int(min(Int64(256 << 10), options.segmentBytes / 4)) }

    init(core: SenderCore, pipeline: SpoolPipeline, logger: Logger) {
        self.core = core
        self.pipeline = pipeline
        self.logger = logger
    }

    func run() {
        openSpool()
        var drainedInFlight = false
        while true {
            guard let (first, firstPosition) = core.takePositioned() else {
                storeDropsPending()
                maintain()
                if core.isClosing {
                    // Submits that passed their closing check may still land: wait for them, take them, then end.
                    if drainedInFlight { break }
                    core.waitForSubmitsInFlight()
                    drainedInFlight = true
                    continue
                }
                core.waitForEvents(napped: &napped)
                continue
            }
            core.lingerForMore(batch: maxRecordEvents, napped: napped)
            napped = false
            add(first, position: firstPosition)
            while events.count < maxRecordEvents, recordBytes < maxRecordBytes, let (item, position) = core.takePositioned() {
                add(item, position: position)
            }
            storeRecord()
            maintain()
        }
        storeRecord()
        storeDropsPending()
        pipeline.lastSequence.store(nextSequence - 1, ordering: .releasing)
        pipeline.spoolerFinished.store(true, ordering: .releasing)
        pipeline.deliveryWake.signal()
    }

    // MARK: Numbering

    /// Numbers the drops before `event` (evictions, then refused submits: the
    /// count its `sequence` carries in the queue) and then the event itself.
    private func add(_ event: consuming Event, position: Int) {
        let lost = UInt64(max(0, position - expectedPosition)) + event.sequence
        expectedPosition = position + 1
        if lost > 0 {
            storeRecord()
            storeLoss(first: nextSequence, last: nextSequence + lost - 1)
            nextSequence += lost
        }
        if EventSanitizer.sanitize(&event) { core.counters.sanitized.add(1, ordering: .relaxed) }
        event.sequence = nextSequence
        nextSequence += 1
        recordBytes += event.encodedSize
        events.append(event)
    }

    /// Refused submits with no event after them yet: numbered now (the queue is empty).
    private func storeDropsPending() {
        let drops = core.takeDropsPending()
        guard drops > 0 else { return }
        storeRecord()
        storeLoss(first: nextSequence, last: nextSequence + drops - 1)
        nextSequence += drops
    }

    // MARK: Storing

    private func storeRecord() {
        guard let first = events.first?.sequence else { return }
        let count = events.count
        // One allocation per record, every byte written once (no zero fill first).
        let payload = [UInt8](unsafeUninitializedCapacity: recordBytes) { buffer, initialized in
            var offset = 0
            events.withUnsafeBufferPointer { events in
                for index in events.indices { offset += EventXDR.encode(events[index], to: buffer.baseAddress! + offset) }
            }
            initialized = offset
        }
        events.removeAll(keepingCapacity: true)
        recordBytes = 0
        let piece = StoredPiece(first: first, last: first + UInt64(count) - 1, content: .events(count: count, bytes: payload[...]))
        var onDisk = false
        if usable, let spool {
            do {
                try spool.append(events: payload, firstSequence: first, count: UInt32(count))
                onDisk = true
                core.counters.spooled.add(UInt64(count), ordering: .relaxed)
                pipeline.publishStats(of: spool, to: core.counters)
            } catch {
                fallBack(error)
            }
        }
        if !onDisk && !waitForMemory(piece.byteCount) {
            // Closing, out of time, and memory is full: these are lost from memory.
            core.counters.dropped.add(UInt64(count), ordering: .relaxed)
            storeLoss(first: piece.first, last: piece.last)
            return
        }
        pipeline.window.offer(piece, onDisk: onDisk)
        core.counters.stored.add(UInt64(count), ordering: .relaxed)
        pipeline.deliveryWake.signal()
    }

    /// A `queue_full` range, in the spool when it takes it, and in the window.
    private func storeLoss(first: UInt64, last: UInt64) {
        if usable, let spool {
            do {
                try spool.appendLoss(first: first, last: last, reason: .queueFull)
            } catch {
                fallBack(error)
            }
        }
        pipeline.window.offer(StoredPiece(first: first, last: last, content: .loss(.queueFull)), onDisk: usable)
        pipeline.deliveryWake.signal()
    }

    /// With the spool unusable, waits for the window to have room for `bytes`
    /// (the delivery empties it), trying the spool again meanwhile. The queue
    /// fills while it waits, and submits drop with their places. False when
    /// closing ran out of time first.
    private func waitForMemory(_ bytes: Int) -> Bool {
        while !pipeline.window.hasRoomInMemory(bytes) {
            if core.drainTimeIsUp { return false }
            core.pause(.milliseconds(10))
            maintain()
        }
        return true
    }

    // MARK: The spool's health

    private func openSpool() {
        let configuration = SpoolConfiguration(directory: options.directory, agentID: self.configuration.agentID,
                                               bootID: self.configuration.bootID, maxBytes: options.maxBytes,
                                               segmentBytes: options.segmentBytes,
                                               durability: options.sync == .segment ? .onSegmentClose : .none)
        do {
            let spool = try Spool.open(configuration)
            let ledger = BootEndLedger(directory: options.directory)
            let earlier = spool.earlierBoots
            do {
                try ledger.add(earlier.map { BootEnd($0, reportedBy: self.configuration.bootID) })
            } catch {
                logger.error("cannot write down how earlier runs ended", metadata: ["error": "\(error)"])
            }
            self.spool = spool
            pipeline.publish(spool, ledger: ledger)
            pipeline.publishStats(of: spool, to: core.counters)
            becameUsable(earlier: earlier.count)
        } catch {
            fallBack(error)
        }
    }

    private func becameUsable(earlier: Int) {
        let wasFallback = inFallback
        usable = true
        inFallback = false
        core.counters.spoolState.store(SenderStats.SpoolState.disk.rawValue, ordering: .relaxed)
        if wasFallback {
            logger.notice("spool usable again: spooling to disk", metadata: ["directory": "\(options.directory)"])
        } else {
            logger.info("spooling to disk", metadata: ["directory": "\(options.directory)", "earlier_runs": "\(earlier)"])
        }
    }

    /// The spool failed (or would not open): memory from now on, said once.
    private func fallBack(_ error: any Error) {
        retryAt = SystemClock.monotonicNanoseconds() + UInt64(options.retryInterval.nanoseconds)
        usable = false
        guard !inFallback else { return }
        inFallback = true
        core.counters.memoryFallbacks.add(1, ordering: .relaxed)
        core.counters.spoolState.store(SenderStats.SpoolState.memory.rawValue, ordering: .relaxed)
        core.setLastError("spool unusable: \(error)")
        logger.error("spool unusable: keeping events in memory only until it can be written again", metadata: [
            "directory": "\(options.directory)", "error": "\(error)",
            "memory_bytes": "\(options.memoryBytes)", "retry_seconds": "\(options.retryInterval.shortDescription)",
        ])
    }

    /// Between records: the spool's periodic sync, and a try at an unusable spool when one is due.
    private func maintain() {
        if usable, let spool {
            do { try spool.tick() } catch { fallBack(error) }
            return
        }
        guard SystemClock.monotonicNanoseconds() >= retryAt else { return }
        guard let spool else {
            openSpool()
            return
        }
        do {
            try spool.reopen()
            pipeline.publishStats(of: spool, to: core.counters)
            becameUsable(earlier: 0)
        } catch {
            retryAt = SystemClock.monotonicNanoseconds() + UInt64(options.retryInterval.nanoseconds)
        }
    }
}
