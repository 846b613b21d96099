@testable import AuthRelaySpool
import Synchronization
import SystemSupport
import Testing

@Suite struct SpoolConcurrencyTests {
    @Test("a spooler appending at the cap and a delivery thread reading and acknowledging: every sequence accounted once")
    func spoolerAndDelivery() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1", maxBytes: 6 * 4096)
        let total: UInt64 = 8 * 3000
        let appended = Atomic<UInt64>(0)
        let failure = Locked<String?>(nil)
        let deadline = SystemClock.deadline(after: .seconds(20))
        var spooler = Optional(NamedThread(name: "test-spooler") {
            var next: UInt64 = 1
            while next <= total && SystemClock.monotonicNanoseconds() < deadline {
                do {
                    try spool.append(events: eventPayload(first: next, count: 8), firstSequence: next, count: 8)
                } catch {
                    failure.withLock { $0 = "append: \(error)" }
                    return
                }
                next += 8
                appended.store(next - 1, ordering: .releasing)
            }
        })

        // The delivery side, here: read what is there, check it, acknowledge it.
        let reader = spool.reader(from: 1)
        var delivered: UInt64 = 0
        var lost: UInt64 = 0
        var expected: UInt64 = 1
        while expected <= total && SystemClock.monotonicNanoseconds() < deadline {
            guard let record = try reader.next() else {
                if failure.withLock({ $0 }) != nil { break }
                NamedThread.yield()
                continue
            }
            let read = Read(record)
            #expect(read.first <= expected && read.last >= expected, "\(read) after \(expected - 1)")
            switch read {
            case .events(let first, let count, let payload):
                #expect(payload == eventPayload(first: first, count: count))
                delivered += read.last - expected + 1
            case .loss(let loss):
                #expect(loss.reason == .evicted)
                lost += loss.count
            }
            expected = read.last + 1
            try spool.acknowledge(boot: "boot-1", through: expected - 1)
        }
        spooler.take()!.join()
        #expect(failure.withLock { $0 } == nil)
        #expect(appended.load(ordering: .acquiring) == total)
        #expect(expected == total + 1)
        #expect(delivered + lost == total)
        // Eviction counts what was not acknowledged: a record read but not yet
        // acknowledged when its segment went (one here) counts as evicted, and is delivered.
        let stats = spool.stats()
        #expect(stats.evictedEvents >= lost && stats.evictedEvents - lost <= 8 * stats.evictedSegments)
        #expect(spool.stats().bytes <= 6 * 4096)
    }
}
