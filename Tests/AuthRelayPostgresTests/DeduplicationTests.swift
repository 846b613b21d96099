import AuthRelayHarness
import AuthRelayPostgres
import Synchronization
import SystemSupport
import Testing

@Suite(.needsPostgres) struct DeduplicationTests {
    @Test("two collectors storing overlapping batches at once: every event once, stored counts add up, no deadlock")
    func overlappingAtOnce() throws {
        let (cluster, database) = try TestPostgres.freshDatabase()
        let settings = TestPostgres.settings(cluster, database)
        try EventStore.open(settings, collectorID: "migrator").migrate()
        // Windows of 512 every 256 numbers over two agents: each number is in
        // two windows of each collector, and the collectors go opposite ways.
        let windows: [StoreBatch] = (0..<16).map { index in
            let first = UInt64(index * 256 + 1)
            return StoreBatch(events: Rows.events(first...(first + 511), agent: "agent-a")
                              + Rows.events(first...(first + 511), agent: "agent-b"))
        }
        let stored = Atomic<Int>(0)
        let failures = Locked<[String]>([])
        let start = Atomic<Bool>(false)
        let group = ThreadGroup()
        for (name, order) in [("collector-1", Array(windows.indices)), ("collector-2", windows.indices.reversed())] {
            group.start(name: name) {
                do {
                    let store = try EventStore.open(settings, collectorID: name)
                    while !start.load(ordering: .acquiring) { SystemClock.sleep(.milliseconds(1)) }
                    for index in order {
                        let receipt = try store.store(windows[index])
                        stored.add(receipt.eventsStored, ordering: .relaxed)
                        #expect(receipt.eventsStored + receipt.eventsDuplicate == 1024)
                    }
                } catch {
                    failures.withLock { $0.append("\(name): \(error)") }
                }
            }
        }
        start.store(true, ordering: .releasing)
        group.joinAll()
        #expect(failures.withLock { $0 } == [])
        let distinct = 2 * (15 * 256 + 512)
        #expect(stored.load(ordering: .relaxed) == distinct)
        let check = try EventStore.open(settings, collectorID: "check")
        #expect(try check.number("SELECT count(*) FROM events") == distinct)
        #expect(try check.number("SELECT count(*) FROM (SELECT DISTINCT agent_id, boot_id, seq FROM events) k") == distinct)
        #expect(try check.sequenceGaps() == [])
        // Both collectors wrote part of it.
        #expect(try check.number("SELECT count(DISTINCT collector_id) FROM events") == 2)
    }

    @Test("a group of batches from several agents commits as one, unsorted input included")
    func groupCommit() throws {
        let (store, _, _) = try TestPostgres.store()
        var group = StoreBatch()
        group.append(StoreBatch(events: Rows.events(1...100, agent: "z").reversed(), losses: [Rows.loss(101, 110, agent: "z")]))
        group.append(StoreBatch(events: Rows.events(1...100, agent: "a"), bootEnds: [Rows.bootEnd(agent: "a", last: 100)]))
        group.append(StoreBatch(events: Rows.events(50...150, agent: "z")))
        let receipt = try store.store(group)
        #expect(receipt.eventsStored == 250 && receipt.eventsDuplicate == 51)
        #expect(receipt.lossesStored == 1 && receipt.bootEndsStored == 1)
        #expect(try store.number("SELECT count(*) FROM events") == 250)
    }
}
