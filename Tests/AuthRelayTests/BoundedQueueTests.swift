import Glibc
import SystemSupport
import Testing

@testable import AuthRelay

@Suite("BoundedQueue")
struct BoundedQueueTests {
    @Test("keeps order, refuses when full, and reuses slots")
    func fifoAndFull() {
        let queue = BoundedQueue<Int>(capacity: 4)
        #expect(queue.capacity == 4)
        for value in 0..<4 { #expect(queue.enqueue(value)) }
        #expect(!queue.enqueue(99))
        #expect(queue.count == 4)
        for lap in 0..<3 {
            for value in 0..<4 { #expect(queue.dequeue() == value + lap * 4) }
            #expect(queue.dequeue() == nil)
            for value in 0..<4 { #expect(queue.enqueue(value + (lap + 1) * 4)) }
        }
    }

    /// Real threads, as the auth threads are: producers and consumer run truly in
    /// parallel, and the test holds no Swift concurrency pool thread in a
    /// Task.yield spin (other tests share that pool). Every loop ends at one
    /// deadline, so a lost element or a starved thread fails the test instead of
    /// hanging it: before, the consumer gave up after 60 s (under ThreadSanitizer,
    /// beside the whole suite, it had not seen the 200,000) and the producers then
    /// retried forever against the full queue, so `waitForAll` never returned.
    @Test("four producers and a consumer lose and duplicate nothing")
    func concurrentProducers() {
        let queue = BoundedQueue<Int>(capacity: 1024)
        let perProducer = 50_000
        let producers = 4
        let total = producers * perProducer
        let deadline = ContinuousClock.now + .seconds(60)
        let threads = ThreadGroup()
        for producer in 0..<producers {
            threads.start(name: "producer-\(producer)") {
                for index in 0..<perProducer {
                    let value = producer * perProducer + index
                    while !queue.enqueue(value) {
                        if ContinuousClock.now >= deadline { return }  // the consumer gave up
                        sched_yield()  // full: the consumer catches up
                    }
                }
            }
        }
        var seen = [Int](repeating: 0, count: total)
        var received = 0
        while received < total && ContinuousClock.now < deadline {
            if let value = queue.dequeue() {
                seen[value] += 1
                received += 1
            } else {
                sched_yield()
            }
        }
        threads.joinAll()
        #expect(received == total)
        #expect(seen.allSatisfy { $0 == 1 })
    }
}
