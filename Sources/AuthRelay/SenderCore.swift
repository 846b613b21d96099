import AuthRelayProtocol
import Synchronization
import SystemSupport

/// The state the auth threads and the sender's threads share: the queue, the
/// counters and the sleep/wake handshake. The sender's threads hold it, not
/// the `EventSender`, so dropping the last `EventSender` closes the sender.
///
/// In the queue an event's `sequence` is not its number yet (the consumer
/// numbers events as it takes them): it holds the submits refused since the
/// last event that carried such a count (queue full, or over its byte bound).
/// They happened before this event, and the spooler gives them the numbers
/// before its own. A field of the event rather than a wrapper around it: a
/// wrapper cost a copy of the event (three retains) on each side of the queue.
final class SenderCore: Sendable {
    let configuration: EventSender.Configuration
    let counters = SenderCounters()
    private let queue: BoundedQueue<Event>
    private let wake = WakeSignal()
    private let sleeping = Atomic<Bool>(false)
    /// Refused submits no queued event carries yet (see above).
    private let dropsPending = Atomic<UInt64>(0)
    /// CLOCK_MONOTONIC ns by which a drain must end; 0 while open. One atomic for
    /// "closing" and "until when", so the sender never sees one without the other.
    private let drainDeadline = Atomic<UInt64>(0)
    /// Submits between their closing check and their enqueue: shutdown waits for
    /// them, so no event lands in the queue after the last drain.
    private let submitsInFlight = Atomic<Int>(0)
    private let report = Locked<ShutdownReport?>(nil)
    private let lastError = Locked<String?>(nil)

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
            dropsPending.add(1, ordering: .relaxed)
            return .dropped
        }
        // A load, not an exchange, in the common case: no write to a shared line.
        let dropsBefore = dropsPending.load(ordering: .relaxed) == 0 ? 0 : dropsPending.exchange(0, ordering: .relaxed)
        // Each try enqueues a fresh copy, so the common case copies the event once, into the queue.
        guard queue.enqueue(Self.carrying(event, dropsBefore)) || enqueueAfterRefusal(event, dropsBefore) else {
            counters.dropped.add(1, ordering: .relaxed)
            dropsPending.add(1 + dropsBefore, ordering: .relaxed)
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

    /// Tries a refused enqueue again. The queue refuses when it is full, and
    /// also when a consumer has taken the head's position but not yet freed
    /// its slot (preempted between the two): the queue is one short of full
    /// and the slot it refused will be free in a moment. Evicting then would
    /// lose an event for nothing (found under ASan stress: two evictions, and
    /// the new event dropped all the same). So: while not full, try again a
    /// bounded number of times, yielding the CPU, without evicting; when full,
    /// `.dropOldest` evicts the head (twice at most: another producer may take
    /// the freed slot). False: the event is to be dropped and counted.
    private func enqueueAfterRefusal(_ event: Event, _ dropsBefore: UInt64) -> Bool {
        var evictions = 0
        for attempt in 0..<Self.retriesWhileSlotFrees {
            if queue.count < queue.capacity {
                // A consumer on the other CPU frees it within nanoseconds; one preempted needs a CPU back.
                if attempt >= Self.retriesWhileSlotFrees / 2 { NamedThread.yield() }
            } else if configuration.overflow == .dropOldest && evictions < 2 {
                evictions += 1
                // The consumer finds each eviction as a jump in the queue positions it gets.
                if let evicted = queue.dequeue() {
                    counters.queuedBytes.subtract(evicted.encodedSize, ordering: .relaxed)
                    counters.evicted.add(1, ordering: .relaxed)
                    // Drops it carried move to the next event (their place shifts by this eviction at most).
                    if evicted.sequence > 0 { dropsPending.add(evicted.sequence, ordering: .relaxed) }
                }
            } else {
                return false  // full
            }
            if queue.enqueue(Self.carrying(event, dropsBefore)) { return true }
        }
        return false
    }

    /// Tries at a slot being freed, the second half after a sched_yield(2)
    /// each: bounded, because an auth thread must not wait long for a
    /// consumer that lost its CPU (past this, the event is dropped and counted).
    static let retriesWhileSlotFrees = 8

    /// `event` as the queue holds it: `sequence` = the drops before it.
    private static func carrying(_ event: Event, _ dropsBefore: UInt64) -> Event {
        var queued = event
        queued.sequence = dropsBefore
        return queued
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
        onClose.withLock { $0?() }
    }

    /// Called once by `beginClosing` (the delivery thread's wake-up, with a spool).
    let onClose = Locked<(@Sendable () -> Void)?>(nil)

    /// Waits (bounded) for submits that passed their closing check before close.
    func waitForSubmitsInFlight() {
        for _ in 0..<100_000 where submitsInFlight.load(ordering: .acquiring) != 0 {
            NamedThread.yield()
        }
    }

    var shutdownReport: ShutdownReport {
        report.withLock { $0 } ?? ShutdownReport(stats: stats, undelivered: 0)
    }

    // MARK: For the queue's consumer (the sender loop, or the spooler)

    var isClosing: Bool { drainDeadline.load(ordering: .acquiring) != 0 }
    /// CLOCK_MONOTONIC ns by which closing must end.
    var deadline: UInt64 { drainDeadline.load(ordering: .acquiring) }
    var drainTimeIsUp: Bool { isClosing && Timestamps.monotonic() >= deadline }
    var queuedCount: Int { queue.count }

    /// The head, its `sequence` field cleared of the drop count (the memory sender numbers it).
    func take() -> Event? {
        guard var (event, _) = takePositioned() else { return nil }
        event.sequence = 0
        return event
    }

    /// The head as queued (`sequence` = the drops before it) and its queue
    /// position (a jump since the last one = events evicted in between).
    func takePositioned() -> (event: Event, position: Int)? {
        guard let (event, position) = queue.dequeuePositioned() else { return nil }
        counters.queuedBytes.subtract(event.encodedSize, ordering: .relaxed)
        return (event, position)
    }

    /// Refused submits no queued event carries, taken (the queue was found empty).
    func takeDropsPending() -> UInt64 {
        dropsPending.load(ordering: .relaxed) == 0 ? 0 : dropsPending.exchange(0, ordering: .relaxed)
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

    /// The queue is empty. First nap for a linger without asking to be woken,
    /// then sleep until a submit wakes the consumer. Waking costs the submitting
    /// auth thread a write(2) to a thread asleep on another CPU: 10 to 25 µs on
    /// a 2-vCPU VM, where without the nap it was the submit's p99 at 20,000
    /// submits/s (Docs/Performance.md).
    /// With the nap, events that keep coming less than a linger apart never
    /// pay it. Events that arrive during the nap have had their linger: the
    /// batch goes without another (see `lingerForMore`). `sleep` bounds the sleep.
    func waitForEvents(napped: inout Bool, sleep: Duration = .milliseconds(200)) {
        if !napped && configuration.linger > .zero {
            napped = true
            pause(configuration.linger)
        } else if waitForWork(timeout: sleep) {
            napped = false  // an event (or close) woke it: the next batch lingers as usual
        }
    }

    /// With one event taken and fewer than `batch` more queued, lets a partial
    /// batch fill for a linger (not when closing, nor after a nap: see above).
    func lingerForMore(batch: Int, napped: Bool) {
        if queuedCount + 1 < batch && !isClosing && configuration.linger > .zero && !napped {
            pause(configuration.linger)
        }
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
