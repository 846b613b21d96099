import AuthRelayPostgres
import Testing

@Suite(.needsPostgres) struct SequenceGapTests {
    @Test("gaps are what no event and no loss range covers, from 1 to the highest number or the boot's last")
    func gaps() throws {
        let (store, _, _) = try TestPostgres.store()
        try store.store(StoreBatch(events: Rows.events(3...10) + Rows.events(15...20), losses: [Rows.loss(11, 12)]))
        #expect(try store.sequenceGaps() == [
            SequenceGap(agentID: "agent-1", bootID: "boot-1", firstSequence: 1, lastSequence: 2, count: 2),
            SequenceGap(agentID: "agent-1", bootID: "boot-1", firstSequence: 13, lastSequence: 14, count: 2),
        ])
        // The boot ended at 25: 21-25 never arrived either.
        try store.store(StoreBatch(events: Rows.events(1...2), bootEnds: [Rows.bootEnd(last: 25)]))
        #expect(try store.sequenceGaps(agentID: "agent-1") == [
            SequenceGap(agentID: "agent-1", bootID: "boot-1", firstSequence: 13, lastSequence: 14, count: 2),
            SequenceGap(agentID: "agent-1", bootID: "boot-1", firstSequence: 21, lastSequence: 25, count: 5),
        ])
    }

    @Test("where several collectors' events meet there is no gap; a v2 drop count covers no numbers")
    func collectorsMeet() throws {
        let (first, cluster, database) = try TestPostgres.store(collectorID: "collector-1")
        let second = try EventStore.open(TestPostgres.settings(cluster, database), collectorID: "collector-2")
        for start in stride(from: UInt64(1), to: 1000, by: 100) {
            let store = start % 200 == 1 ? first : second
            try store.store(StoreBatch(events: Rows.events(start...(start + 99), agent: "agent-2")))
        }
        try first.store(StoreBatch(events: Rows.events(1...5, agent: "agent-3") + Rows.events(9...9, agent: "agent-3"),
                                   losses: [LossRow(agentID: "agent-3", bootID: "boot-1", reason: .agentDropped,
                                                    extent: .before(sequence: 9, count: 3), receivedNanoseconds: 1)]))
        #expect(try second.sequenceGaps(agentID: "agent-2") == [])
        #expect(try second.sequenceGaps() == [
            SequenceGap(agentID: "agent-3", bootID: "boot-1", firstSequence: 6, lastSequence: 8, count: 3),
        ])
        // Loss ranges that overlap events or each other cover once.
        try first.store(StoreBatch(losses: [Rows.loss(4, 7, reason: .spoolCorrupt, agent: "agent-3"),
                                            Rows.loss(7, 8, reason: .refused, agent: "agent-3")]))
        #expect(try second.sequenceGaps() == [])
    }
}
