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

    @Test("four producers and a consumer lose and duplicate nothing")
    func concurrentProducers() async {
        let queue = BoundedQueue<Int>(capacity: 1024)
        let perProducer = 50_000
        let producers = 4
        var seen = [Int](repeating: 0, count: producers * perProducer)
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for index in 0..<perProducer {
                        let value = producer * perProducer + index
                        while !queue.enqueue(value) {
                            await Task.yield()  // full: the consumer catches up
                        }
                    }
                }
            }
            var received = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while received < producers * perProducer && ContinuousClock.now < deadline {
                if let value = queue.dequeue() {
                    seen[value] += 1
                    received += 1
                } else {
                    await Task.yield()
                }
            }
            await group.waitForAll()
        }
        #expect(seen.allSatisfy { $0 == 1 })
    }
}
