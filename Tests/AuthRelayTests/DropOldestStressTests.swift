import AuthRelayProtocol
import Synchronization
import SystemSupport
import Testing
import TestSupport

@testable import AuthRelay

/// The queue refuses an enqueue while a consumer is between taking the head's
/// position and freeing its slot, one short of full. A drop-oldest submit
/// that evicted then (found under ASan stress) lost an event for nothing, and
/// when the consumer stayed preempted it evicted twice and dropped the new
/// event too. No hook in the queue can hold a consumer there, so this makes
/// the kernel do it: more consumers than CPUs, on a queue of two slots, so
/// that some are preempted mid-take while one producer submits. Bounded in
/// time; what it checks holds whatever the timing: with one producer, a
/// submit evicts at most once (after one eviction the queue is not full
/// again until this producer adds), and every event is accounted for.
@Suite("Drop-oldest under preemption")
struct DropOldestStressTests {
    final class Consumers: Sendable {
        let stop = Atomic<Bool>(false)
        let taken = Atomic<UInt64>(0)
    }

    @Test("a submit never evicts twice; submitted = taken + evicted + dropped")
    func preemptedConsumers() {
        var configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent/stress.sock"), agentID: "stress")
        configuration.capacity = 2
        configuration.overflow = .dropOldest
        let core = SenderCore(configuration: configuration)
        let shared = Consumers()
        let group = ThreadGroup()
        for index in 0..<4 {
            group.start(name: "stress-take-\(index)") {
                while !shared.stop.load(ordering: .relaxed) {
                    if core.takePositioned() != nil { shared.taken.add(1, ordering: .relaxed) }
                }
            }
        }
        let event = Sample.event()
        let deadline = SystemClock.deadline(after: .milliseconds(1500))
        var submits = 0
        var doubleEvictions = 0
        var evictingSubmits = 0
        var dropped = 0
        var evictedAndDropped = 0
        while SystemClock.monotonicNanoseconds() < deadline {
            for _ in 0..<1000 {
                let before = core.counters.evicted.load(ordering: .relaxed)
                let result = core.submit(event)
                let evicted = core.counters.evicted.load(ordering: .relaxed) - before
                if evicted >= 2 { doubleEvictions += 1 }
                if evicted > 0 { evictingSubmits += 1 }
                if result == .dropped { dropped += 1 }
                if result == .dropped && evicted > 0 { evictedAndDropped += 1 }
            }
            submits += 1000
        }
        shared.stop.store(true, ordering: .relaxed)
        group.joinAll()
        var left: UInt64 = 0
        while core.takePositioned() != nil { left += 1 }
        let stats = core.stats
        print("drop-oldest stress: \(submits) submits, \(evictingSubmits) evicted, \(doubleEvictions) evicted twice, \(dropped) dropped, \(evictedAndDropped) evicted and dropped")
        #expect(doubleEvictions == 0, "a submit evicted twice: it evicted for a slot being freed")
        #expect(stats.submitted == UInt64(submits))
        #expect(stats.dropped == UInt64(dropped))
        #expect(stats.submitted == shared.taken.load(ordering: .relaxed) + left + stats.evicted + stats.dropped, "\(stats)")
    }
}
