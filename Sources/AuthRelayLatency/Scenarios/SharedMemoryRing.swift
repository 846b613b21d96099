import Synchronization
import SystemSupport

/// The floor under every local IPC: a single-producer single-consumer ring
/// in a file both processes map (SharedMemory), the consumer woken by a futex
/// when it sleeps. No system call on the data path; the only kernel work is
/// the wake-up of a side that went to sleep.
///
/// Layout, one 64-byte cache line per field one side writes (no false sharing):
///
///     0    magic, slot count, slot size   (written once by the creator)
///     64   head: events published         (producer)
///     128  tail: events consumed = ack    (consumer)
///     192  consumer sleeping: futex word  (1 while the consumer sleeps)
///     256  producer sleeping: futex word  (1 while the producer waits for its ack)
///     320  spin: ns to spin before sleeping (creator)
///     384  state: created, peer ready, stop (both)
///     512  slots: slotCount x slotSize, each a UInt32 length then the event's bytes
///
/// Sleeping is the Dekker pattern with sequentially consistent operations: a
/// side stores 1 in its futex word, then re-reads the counter it waits on
/// before FUTEX_WAIT; the other side stores the counter, then exchanges the
/// word to 0 and wakes it if it was 1. One of the two always sees the other,
/// and FUTEX_WAIT returns at once when the word is no longer 1, so no wake-up
/// is lost.
struct SharedMemoryRing {
    static let magic: UInt64 = 0x4152_5348_4d52_0001  // "ARSHMR", layout 1
    static let slotCount = 1024
    static let slotSize = 256
    static let regionSize = Offset.slots + slotCount * slotSize

    enum Offset {
        static let magic = 0, slotCount = 8, slotSize = 12
        static let head = 64, tail = 128, consumerSleeping = 192, producerSleeping = 256
        static let spin = 320, state = 384, slots = 512
    }

    enum State: UInt32 {
        case created = 0, peerReady = 1, stop = 2
    }

    let memory: SharedMemory

    /// Lays out a new region at `path` (which must not exist).
    static func create(_ path: String, spin: Duration) throws(SystemError) -> SharedMemoryRing {
        let ring = SharedMemoryRing(memory: try SharedMemory.create(path, size: regionSize))
        ring.memory.atomic(UInt32.self, at: Offset.slotCount).pointee.store(UInt32(slotCount), ordering: .relaxed)
        ring.memory.atomic(UInt32.self, at: Offset.slotSize).pointee.store(UInt32(slotSize), ordering: .relaxed)
        ring.spin.pointee.store(UInt64(max(0, spin.nanoseconds)), ordering: .relaxed)
        ring.memory.atomic(UInt64.self, at: Offset.magic).pointee.store(magic, ordering: .releasing)
        return ring
    }

    /// Maps the region another process created; refuses one of another layout.
    static func open(_ path: String) throws(LatencyError) -> SharedMemoryRing {
        let memory: SharedMemory
        do {
            memory = try SharedMemory.open(path)
        } catch {
            throw LatencyError("shared memory: cannot map \(path)", system: error)
        }
        let ring = SharedMemoryRing(memory: memory)
        guard memory.size == regionSize, memory.atomic(UInt64.self, at: Offset.magic).pointee.load(ordering: .acquiring) == magic,
              memory.atomic(UInt32.self, at: Offset.slotCount).pointee.load(ordering: .relaxed) == UInt32(slotCount),
              memory.atomic(UInt32.self, at: Offset.slotSize).pointee.load(ordering: .relaxed) == UInt32(slotSize)
        else {
            throw LatencyError("shared memory: \(path) is not a ring of this layout (\(slotCount) slots of \(slotSize) bytes)")
        }
        return ring
    }

    var head: UnsafeMutablePointer<Atomic<UInt64>> { memory.atomic(UInt64.self, at: Offset.head) }
    var tail: UnsafeMutablePointer<Atomic<UInt64>> { memory.atomic(UInt64.self, at: Offset.tail) }
    var consumerSleeping: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Offset.consumerSleeping) }
    var producerSleeping: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Offset.producerSleeping) }
    var spin: UnsafeMutablePointer<Atomic<UInt64>> { memory.atomic(UInt64.self, at: Offset.spin) }
    var stateWord: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Offset.state) }

    var state: State { State(rawValue: stateWord.pointee.load(ordering: .acquiring)) ?? .stop }

    func setState(_ state: State) {
        stateWord.pointee.store(state.rawValue, ordering: .releasing)
    }

    /// Slot `position % slotCount`: the length word, then room for the bytes.
    func slot(_ position: UInt64) -> UnsafeMutableRawBufferPointer {
        memory.bytes(at: Offset.slots + Int(position % UInt64(Self.slotCount)) * Self.slotSize, count: Self.slotSize)
    }

    /// Room for an event's bytes in a slot.
    static var slotPayload: Int { slotSize - 4 }

    /// Copies `bytes` into the slot at `position` (the producer, before it publishes).
    func write(_ bytes: UnsafeRawBufferPointer, at position: UInt64) {
        let slot = self.slot(position)
        slot.storeBytes(of: UInt32(bytes.count), toByteOffset: 0, as: UInt32.self)
        UnsafeMutableRawBufferPointer(rebasing: slot[4..<(4 + bytes.count)]).copyMemory(from: bytes)
    }

    /// Copies the event at `position` out into `buffer` (the consumer, before the
    /// slot may be reused); its length.
    func read(at position: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let slot = self.slot(position)
        let length = min(Int(slot.load(fromByteOffset: 0, as: UInt32.self)), Self.slotPayload, buffer.count)
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: slot[4..<(4 + length)]))
        return length
    }

    /// Waits until `counter` reaches `target` (or `giveUp` says so): spins for
    /// the region's spin time, then sleeps on `word` in slices of `slice`,
    /// asking `giveUp` after each. False when `giveUp` ended the wait.
    func wait(until counter: UnsafeMutablePointer<Atomic<UInt64>>, reaches target: UInt64,
              sleepingOn word: UnsafeMutablePointer<Atomic<UInt32>>, slice: Duration,
              giveUp: () -> Bool) throws(SystemError) -> Bool {
        if counter.pointee.load(ordering: .acquiring) >= target { return true }
        let spinNanoseconds = spin.pointee.load(ordering: .relaxed)
        if spinNanoseconds > 0 {
            let until = SystemClock.monotonicNanoseconds() + spinNanoseconds
            repeat {
                if counter.pointee.load(ordering: .acquiring) >= target { return true }
            } while SystemClock.monotonicNanoseconds() < until
        }
        while true {
            word.pointee.store(1, ordering: .sequentiallyConsistent)
            if counter.pointee.load(ordering: .sequentiallyConsistent) >= target {
                word.pointee.store(0, ordering: .relaxed)
                return true
            }
            // Woken, timed out or already changed: check again, and whether to go on.
            _ = try Futex.wait(word, whileEqualTo: 1, timeout: slice)
            word.pointee.store(0, ordering: .relaxed)
            if counter.pointee.load(ordering: .acquiring) >= target { return true }
            if giveUp() { return false }
        }
    }

    /// Publishes `value` in `counter` and wakes the other side if it sleeps on `word`.
    func publish(_ value: UInt64, in counter: UnsafeMutablePointer<Atomic<UInt64>>,
                 waking word: UnsafeMutablePointer<Atomic<UInt32>>) {
        counter.pointee.store(value, ordering: .sequentiallyConsistent)
        if word.pointee.exchange(0, ordering: .sequentiallyConsistent) == 1 { Futex.wake(word) }
    }
}
