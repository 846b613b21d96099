import Synchronization

/// A fixed-capacity multi-producer queue that never blocks and never allocates
/// after creation (Dmitry Vyukov's bounded MPMC ring).
///
/// Why not a Mutex around a Deque: the producers are auth threads, and a lock
/// held by the slower sender thread (descheduled while holding it) would make
/// an auth decision wait. Here a producer only ever retries a compare-exchange
/// against another producer; it never waits for the consumer.
///
/// Each slot carries a sequence number that says whose turn it is: a producer
/// may fill slot `i` at position `p` when its sequence is `p`, a consumer may
/// empty it when its sequence is `p + 1`. Positions only grow (64-bit).
final class BoundedQueue<Element>: @unchecked Sendable {
    // @unchecked: slot contents are only touched by the one thread that won the
    // slot's turn, handed over through the slot's sequence (release/acquire).
    let capacity: Int
    private let mask: Int
    private let sequences: UnsafeMutablePointer<Atomic<Int>>
    private let slots: UnsafeMutablePointer<Element?>
    private let enqueuePosition = Atomic<Int>(0)
    private let dequeuePosition = Atomic<Int>(0)

    /// `capacity` is rounded up to a power of two.
    init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        sequences = .allocate(capacity: size)
        slots = .allocate(capacity: size)
        for index in 0..<size {
            (sequences + index).initialize(to: Atomic(index))
            (slots + index).initialize(to: nil)
        }
    }

    deinit {
        sequences.deinitialize(count: capacity)
        sequences.deallocate()
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// Approximate number of queued elements (exact when no call is in progress).
    var count: Int {
        max(0, enqueuePosition.load(ordering: .relaxed) - dequeuePosition.load(ordering: .relaxed))
    }

    /// Adds `element` at the tail; false when the queue is full. Never blocks.
    func enqueue(_ element: consuming Element) -> Bool {
        var position = enqueuePosition.load(ordering: .relaxed)
        while true {
            let slot = position & mask
            let sequence = sequences[slot].load(ordering: .acquiring)
            let difference = sequence - position
            if difference == 0 {
                let (won, current) = enqueuePosition.weakCompareExchange(
                    expected: position, desired: position + 1, ordering: .relaxed)
                if won {
                    slots[slot] = element
                    sequences[slot].store(position + 1, ordering: .releasing)
                    return true
                }
                position = current
            } else if difference < 0 {
                return false  // the slot still holds the element from one lap ago: full
            } else {
                position = enqueuePosition.load(ordering: .relaxed)
            }
        }
    }

    /// Removes the head; nil when empty. Safe from several threads (drop-oldest
    /// producers evict through it too).
    func dequeue() -> Element? {
        var position = dequeuePosition.load(ordering: .relaxed)
        while true {
            let slot = position & mask
            let sequence = sequences[slot].load(ordering: .acquiring)
            let difference = sequence - (position + 1)
            if difference == 0 {
                let (won, current) = dequeuePosition.weakCompareExchange(
                    expected: position, desired: position + 1, ordering: .relaxed)
                if won {
                    let element = slots[slot].take()
                    sequences[slot].store(position + mask + 1, ordering: .releasing)
                    return element
                }
                position = current
            } else if difference < 0 {
                return nil  // empty, or the producer of the head has not finished writing it
            } else {
                position = dequeuePosition.load(ordering: .relaxed)
            }
        }
    }
}
