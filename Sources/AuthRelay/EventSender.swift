import AuthRelayProtocol
import Logging
import ONCRPC
import Synchronization
import SystemSupport

/// Ships events to a collector without ever making the caller wait.
///
/// `submit(_:)` is what an auth thread calls: O(1), no lock, no allocation
/// beyond the event's own, no system call unless the sender thread sleeps, no
/// throw. Everything slow (batching, RPC, reconnecting, backoff) happens on one
/// dedicated sender thread that drains a bounded queue.
///
/// Delivery is at-least-once: the sender numbers events per (agent id, boot id)
/// as it takes them off the queue, and resends a batch with the same numbers
/// until the collector acknowledges it (a timed-out call may have been executed;
/// the collector removes duplicates). Every event is accounted for:
/// submitted = acknowledged + dropped + rejected + undelivered at shutdown.
public final class EventSender: Sendable {
    public enum OverflowPolicy: String, Sendable, CaseIterable {
        /// A full queue refuses the new event (keeps the oldest evidence).
        case dropNewest
        /// A full queue evicts its oldest event to take the new one.
        case dropOldest
    }

    public struct Configuration: Sendable {
        public var endpoint: RPCEndpoint
        public var program: UInt32 = AuthRelayProgram.program
        /// Identifies the agent; the collector de-duplicates per (agent id, boot id).
        public var agentID: String
        /// Identifies this sender's run: sequence numbers restart at 1 with each.
        public var bootID: String = EventSender.randomBootID()
        /// Queue capacity in events (rounded up to a power of two).
        public var capacity: Int = 16_384
        /// Bound on the bytes the queued events take on the wire (paths can be 4 KiB each).
        public var maxQueuedBytes: Int = 64 << 20
        public var overflow: OverflowPolicy = .dropNewest
        /// Events per REPORT_BATCH call (at most 512, the protocol bound).
        public var maxBatchEvents: Int = Event.maxBatchEvents
        /// Encoded bytes per batch; over UDP, keep it under 60 KiB.
        public var maxBatchBytes: Int = 1 << 20
        /// How long a partial batch waits for more events.
        public var linger: Duration = .milliseconds(2)
        /// Timeout of one RPC call.
        public var callTimeout: Duration = .seconds(2)
        public var connectTimeout: Duration = .seconds(1)
        /// Reconnect backoff: doubles from `initialBackoff` up to `maxBackoff`, with ±20% jitter.
        public var initialBackoff: Duration = .milliseconds(50)
        public var maxBackoff: Duration = .seconds(5)
        /// Speak version 1 (one call per event) even when the collector has version 2.
        public var forceVersion1 = false
        /// The sender thread's name, as `top -H` and /proc show it.
        public var threadName = "authrelay-send"

        public init(endpoint: RPCEndpoint, agentID: String) {
            self.endpoint = endpoint
            self.agentID = agentID
        }

        /// Checks the ids every batch header carries against the protocol's bounds
        /// (a sender with a bad id would have every batch refused).
        public func validate() throws(EventError) {
            try Event.checkString(agentID, field: "agent_id", limit: Event.maxIDBytes)
            try Event.checkString(bootID, field: "boot_id", limit: Event.maxIDBytes)
        }
    }

    public enum SubmitResult: Sendable, Equatable {
        case queued
        /// The queue was full (or over its byte bound) and the event was dropped and counted.
        case dropped
    }

    public enum State: UInt8, Sendable, CustomStringConvertible {
        case connecting, connected, backingOff, closed

        public var description: String {
            switch self {
            case .connecting: "connecting"
            case .connected: "connected"
            case .backingOff: "backing off"
            case .closed: "closed"
            }
        }
    }

    public let configuration: Configuration
    private let core: SenderCore
    private let thread = Mutex<NamedThread?>(nil)

    /// Starts the sender thread. It connects lazily and keeps trying while the
    /// collector is absent; `submit` is unaffected either way.
    public init(configuration: Configuration, logger: Logger) {
        var configuration = configuration
        configuration.maxBatchEvents = min(max(configuration.maxBatchEvents, 1), Event.maxBatchEvents)
        if configuration.endpoint.transport == .udp {
            // A datagram holds 65,000 bytes: a batch stops growing at 48 KiB, so even the
            // event that crosses that line (8.3 KB at the protocol's bounds) still fits.
            configuration.maxBatchBytes = min(configuration.maxBatchBytes, 48 << 10)
        }
        self.configuration = configuration
        core = SenderCore(configuration: configuration)
        let loop = SenderLoop(core: core, logger: logger)
        thread.withLock { $0 = NamedThread(name: configuration.threadName) { loop.run() } }
    }

    /// Never joins: the sender thread may sit in `clnt_call` for a whole call
    /// timeout, and the last reference may drop on an auth thread. It begins
    /// closing with a zero drain and lets the thread finish on its own; the
    /// thread holds only the core, which outlives this object as long as it runs.
    /// Use `close(drainTimeout:)` to wait for the report.
    deinit {
        core.beginClosing(drainTimeout: .zero)
        thread.withLock { $0.take()?.detach() }
    }

    /// Queues `event` for delivery, or drops and counts it when the queue is full.
    /// Never blocks, never throws, never does I/O; safe from any number of threads.
    @discardableResult
    public func submit(_ event: Event) -> SubmitResult {
        core.submit(event)
    }

    /// A snapshot of the counters; never blocks the sender.
    public var stats: SenderStats { core.stats }

    /// Stops accepting events, delivers what it can within `drainTimeout`, and
    /// reports what it could not. Later calls return the same report.
    @discardableResult
    public func close(drainTimeout: Duration) -> ShutdownReport {
        core.beginClosing(drainTimeout: drainTimeout)
        // Joined under the lock: a second close waits for the first one's report.
        thread.withLock { $0.take()?.join() }
        return core.shutdownReport
    }

    /// 128 random bits as hex: a boot id that never repeats across runs.
    public static func randomBootID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// The state the auth threads and the sender thread share: the queue, the
/// counters and the sleep/wake handshake. The sender loop holds it, not the
/// `EventSender`, so dropping the last `EventSender` closes the sender.
final class SenderCore: Sendable {
    let configuration: EventSender.Configuration
    let counters = SenderCounters()
    private let queue: BoundedQueue<Event>
    private let wake = WakeSignal()
    private let sleeping = Atomic<Bool>(false)
    /// CLOCK_MONOTONIC ns by which a drain must end; 0 while open. One atomic for
    /// "closing" and "until when", so the sender never sees one without the other.
    private let drainDeadline = Atomic<UInt64>(0)
    /// Submits between their closing check and their enqueue: shutdown waits for
    /// them, so no event lands in the queue after the last drain.
    private let submitsInFlight = Atomic<Int>(0)
    private let report = Mutex<ShutdownReport?>(nil)
    private let lastError = Mutex<String?>(nil)

    init(configuration: EventSender.Configuration) {
        self.configuration = configuration
        queue = BoundedQueue(capacity: configuration.capacity)
    }

    // MARK: The auth path

    func submit(_ event: Event) -> EventSender.SubmitResult {
        submitsInFlight.add(1, ordering: .sequentiallyConsistent)
        defer { submitsInFlight.subtract(1, ordering: .releasing) }
        if drainDeadline.load(ordering: .sequentiallyConsistent) != 0 {
            // After close: refused, and counted apart, so the shutdown report's
            // balance (taken once no submit is in flight) stays exact.
            counters.refusedAfterClose.add(1, ordering: .relaxed)
            return .dropped
        }
        counters.submitted.add(1, ordering: .relaxed)
        let size = event.encodedSize
        if counters.queuedBytes.load(ordering: .relaxed) + size > configuration.maxQueuedBytes {
            counters.dropped.add(1, ordering: .relaxed)
            return .dropped
        }
        var queued = queue.enqueue(event)
        if !queued && configuration.overflow == .dropOldest {
            // Evict the head; twice at most, since another producer may take the freed slot.
            for _ in 0..<2 where !queued {
                if let evicted = queue.dequeue() {
                    counters.queuedBytes.subtract(evicted.encodedSize, ordering: .relaxed)
                    counters.evicted.add(1, ordering: .relaxed)
                }
                queued = queue.enqueue(event)
            }
        }
        guard queued else {
            counters.dropped.add(1, ordering: .relaxed)
            return .dropped
        }
        counters.queuedBytes.add(size, ordering: .relaxed)
        counters.noteDepth(queue.count)
        // Pairs with the fence in waitForWork: either the sender sees this event
        // before it sleeps, or this thread sees it sleeping and wakes it.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .relaxed), sleeping.exchange(false, ordering: .relaxed) {
            wake.signal()
        }
        return .queued
    }

    // MARK: Reading and closing

    var stats: SenderStats {
        counters.snapshot(queueDepth: queue.count, lastError: lastError.withLock { $0 })
    }

    func beginClosing(drainTimeout: Duration) {
        let deadline = max(1, Timestamps.monotonic() + UInt64(max(0, drainTimeout.nanoseconds)))
        guard drainDeadline.compareExchange(expected: 0, desired: deadline, ordering: .sequentiallyConsistent).exchanged
        else { return }
        wake.signal()
    }

    /// Waits (bounded) for submits that passed their closing check before close.
    func waitForSubmitsInFlight() {
        for _ in 0..<100_000 where submitsInFlight.load(ordering: .acquiring) != 0 {
            NamedThread.yield()
        }
    }

    var shutdownReport: ShutdownReport {
        report.withLock { $0 } ?? ShutdownReport(stats: stats, undelivered: 0)
    }

    // MARK: For the sender loop

    var isClosing: Bool { drainDeadline.load(ordering: .acquiring) != 0 }
    /// CLOCK_MONOTONIC ns by which closing must end.
    var deadline: UInt64 { drainDeadline.load(ordering: .acquiring) }
    var queuedCount: Int { queue.count }

    func take() -> Event? {
        guard let event = queue.dequeue() else { return nil }
        counters.queuedBytes.subtract(event.encodedSize, ordering: .relaxed)
        return event
    }

    /// Sleeps until an event is submitted, close is called, or `timeout` passes;
    /// false when the timeout passed with no wake-up.
    @discardableResult
    func waitForWork(timeout: Duration) -> Bool {
        sleeping.store(true, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if queue.count > 0 || isClosing {
            sleeping.store(false, ordering: .relaxed)
            // Counted but not takeable: a producer between its claim and its write. Let it run.
            if queue.count > 0 { NamedThread.yield() }
            return true
        }
        let woken = wake.wait(timeout: timeout)
        sleeping.store(false, ordering: .relaxed)
        return woken
    }

    /// Sleeps for `duration`, or until woken (close signals once).
    func pause(_ duration: Duration) {
        wake.wait(timeout: duration)
    }

    func finish(_ shutdown: ShutdownReport) {
        report.withLock { $0 = shutdown }
    }

    func setLastError(_ text: String?) {
        lastError.withLock { $0 = text }
    }
}

/// What the sender had not delivered when it stopped.
public struct ShutdownReport: Sendable, Equatable {
    public var stats: SenderStats
    /// Events submitted and queued but never acknowledged (the drain ran out of time or the collector was gone).
    public var undelivered: UInt64

    /// submitted == acknowledged + dropped + evicted + rejected + undelivered.
    public var isBalanced: Bool {
        stats.submitted == stats.acknowledged + stats.dropped + stats.evicted + stats.rejected + undelivered
    }
}

public struct SenderStats: Sendable, Equatable {
    public var queueDepth: Int
    public var highWaterMark: Int
    /// How long the batch being delivered has waited, measured from its first
    /// event's own timestamp (nil when nothing is being delivered). Events still
    /// in the queue are younger.
    public var oldestUndeliveredAge: Duration?
    public var submitted: UInt64
    /// Events put on the wire, counting resends.
    public var sent: UInt64
    public var acknowledged: UInt64
    /// Refused at submit: queue full or over its byte bound.
    public var dropped: UInt64
    /// Evicted from a full queue under `.dropOldest`.
    public var evicted: UInt64
    /// Refused by the collector as breaking a protocol rule (never retried).
    public var rejected: UInt64
    /// Batches (or version 1 events) sent again after a failed call.
    public var retries: UInt64
    public var reconnects: UInt64
    /// Fields cut to a protocol bound before sending (the event is still delivered).
    public var sanitized: UInt64
    /// Refused because they came after `close`; not part of `submitted`.
    public var refusedAfterClose: UInt64
    public var collectorVersion: ProtocolVersion?
    public var state: EventSender.State
    public var lastError: String?
}

/// The sender's counters: atomics, written by producers and the sender thread, read by anyone.
final class SenderCounters: Sendable {
    let submitted = Atomic<UInt64>(0)
    let sent = Atomic<UInt64>(0)
    let acknowledged = Atomic<UInt64>(0)
    let dropped = Atomic<UInt64>(0)
    let refusedAfterClose = Atomic<UInt64>(0)
    let evicted = Atomic<UInt64>(0)
    let rejected = Atomic<UInt64>(0)
    let retries = Atomic<UInt64>(0)
    let reconnects = Atomic<UInt64>(0)
    let sanitized = Atomic<UInt64>(0)
    let queuedBytes = Atomic<Int>(0)
    let highWaterMark = Atomic<Int>(0)
    /// CLOCK_REALTIME ns of the oldest unacknowledged event; 0 when none.
    let oldestUndelivered = Atomic<UInt64>(0)
    let version = Atomic<UInt32>(0)
    let state = Atomic<UInt8>(EventSender.State.connecting.rawValue)

    func noteDepth(_ depth: Int) {
        var current = highWaterMark.load(ordering: .relaxed)
        while depth > current {
            let (exchanged, now) = highWaterMark.weakCompareExchange(expected: current, desired: depth, ordering: .relaxed)
            if exchanged { return }
            current = now
        }
    }

    func snapshot(queueDepth: Int, lastError: String?) -> SenderStats {
        let oldest = oldestUndelivered.load(ordering: .relaxed)
        var age: Duration?
        if oldest != 0 {
            let nowNanoseconds = Timestamps.realtime()
            age = .nanoseconds(Int64(nowNanoseconds > oldest ? nowNanoseconds - oldest : 0))
        }
        return SenderStats(
            queueDepth: queueDepth, highWaterMark: highWaterMark.load(ordering: .relaxed), oldestUndeliveredAge: age,
            submitted: submitted.load(ordering: .relaxed), sent: sent.load(ordering: .relaxed),
            acknowledged: acknowledged.load(ordering: .relaxed), dropped: dropped.load(ordering: .relaxed),
            evicted: evicted.load(ordering: .relaxed), rejected: rejected.load(ordering: .relaxed),
            retries: retries.load(ordering: .relaxed), reconnects: reconnects.load(ordering: .relaxed),
            sanitized: sanitized.load(ordering: .relaxed), refusedAfterClose: refusedAfterClose.load(ordering: .relaxed),
            collectorVersion: ProtocolVersion(rawValue: version.load(ordering: .relaxed)),
            state: EventSender.State(rawValue: state.load(ordering: .relaxed)) ?? .connecting,
            lastError: lastError)
    }
}
