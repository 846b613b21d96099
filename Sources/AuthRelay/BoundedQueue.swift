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
    /// The producers' position and the consumer's, each alone in its own
    /// 128-byte block (a cache line and the neighbour the CPU fetches with it).
    /// Side by side in this object they shared a line with each other and with
    /// the read-only fields above, so every dequeue cost the next enqueue a
    /// cache miss and every enqueue cost the next dequeue one.
    private let enqueuePosition: UnsafeMutablePointer<Atomic<Int>>
    private let dequeuePosition: UnsafeMutablePointer<Atomic<Int>>
    private static var positionBlockBytes: Int { 128 }

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
        let block = UnsafeMutableRawPointer.allocate(byteCount: 2 * Self.positionBlockBytes, alignment: Self.positionBlockBytes)
        enqueuePosition = block.bindMemory(to: Atomic<Int>.self, capacity: 1)
        enqueuePosition.initialize(to: Atomic(0))
        dequeuePosition = (block + Self.positionBlockBytes).bindMemory(to: Atomic<Int>.self, capacity: 1)
        dequeuePosition.initialize(to: Atomic(0))
    }

    deinit {
        sequences.deinitialize(count: capacity)
        sequences.deallocate()
        slots.deinitialize(count: capacity)
        slots.deallocate()
        enqueuePosition.deinitialize(count: 1)
        dequeuePosition.deinitialize(count: 1)
        UnsafeMutableRawPointer(enqueuePosition).deallocate()
    }

    /// Approximate number of queued elements (exact when no call is in progress).
    var count: Int {
        max(0, enqueuePosition.pointee.load(ordering: .relaxed) - dequeuePosition.pointee.load(ordering: .relaxed))
    }

    /// Adds `element` at the tail; false when the queue is full. Never blocks.
    func enqueue(_ element: consuming Element) -> Bool {
        var position = enqueuePosition.pointee.load(ordering: .relaxed)
        while true {
            let slot = position & mask
            let sequence = sequences[slot].load(ordering: .acquiring)
            let difference = sequence - position
            if difference == 0 {
                let (won, current) = enqueuePosition.pointee.weakCompareExchange(
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
                position = enqueuePosition.pointee.load(ordering: .relaxed)
            }
        }
    }

    /// Removes the head; nil when empty. Safe from several threads (drop-oldest
    /// producers evict through it too).
    func dequeue() -> Element? {
        dequeuePositioned()?.element
    }

    /// Removes the head and says which position it held (0 for the first
    /// element ever enqueued). Positions are queue order: a consumer that
    /// gets position p + k after p knows k elements were taken by others
    /// (drop-oldest evictions) in between.
    func dequeuePositioned() -> (element: Element, position: Int)? {
        var position = dequeuePosition.pointee.load(ordering: .relaxed)
        while true {
            let slot = position & mask
            let sequence = sequences[slot].load(ordering: .acquiring)
            let difference = sequence - (position + 1)
            if difference == 0 {
                let (won, current) = dequeuePosition.pointee.weakCompareExchange(
                    expected: position, desired: position + 1, ordering: .relaxed)
                if won {
                    let element = slots[slot].take()!
                    sequences[slot].store(position + mask + 1, ordering: .releasing)
                    return (element, position)
                }
                position = current
            } else if difference < 0 {
                return nil  // empty, or the producer of the head has not finished writing it
            } else {
                position = dequeuePosition.pointee.load(ordering: .relaxed)
            }
        }
    }
}
