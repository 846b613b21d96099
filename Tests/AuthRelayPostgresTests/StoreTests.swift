import AuthRelayHarness
import AuthRelayPostgres
import Synchronization
import SystemSupport
import Testing

@Suite(.needsPostgres) struct StoreTests {
    @Test("every field of an event reads back as stored, UInt32 extremes and NULL peers included")
    func roundTrip() throws {
        let (store, _, _) = try TestPostgres.store()
        var event = Rows.event(1)
        event.uid = .max
        event.gid = .max
        event.flags = .max
        event.pid = .min
        event.timestampNanoseconds = UInt64(Int64.max)
        event.targetPath = "/tmp/naïve \"quoted\"\ttab"
        event.digest = Array(0...255)
        var unix = Rows.event(2)
        unix.peer = nil
        unix.digest = []
        let receipt = try store.store(StoreBatch(events: [event, unix]))
        #expect(receipt.eventsStored == 2 && receipt.eventsDuplicate == 0)
        let rows = try store.query("""
            SELECT agent_id, boot_id, seq, timestamp_ns, kind, verdict, decision_ns, pid, ppid, uid, gid, flags, exe_path,
                   target_path, encode(digest, 'hex'), received_ns, peer_uid, peer_gid, peer_pid, collector_id
            FROM events ORDER BY seq
            """)
        let hex = event.digest.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        #expect(rows[0] == ["agent-1", "boot-1", "1", "\(Int64.max)", "open", "allow", "1234", "\(Int32.min)", "1",
                            "4294967295", "4294967295", "4294967295", "/usr/bin/cat", "/tmp/naïve \"quoted\"\ttab", hex,
                            "1700000000500000000", "0", "0", "99", "collector-a"])
        #expect(rows[1][14] == "" && rows[1][16] == nil && rows[1][17] == nil && rows[1][18] == nil)
    }

    @Test("a batch stored again is skipped row by row; only the new rows of an overlapping batch are stored")
    func duplicates() throws {
        let (store, _, _) = try TestPostgres.store()
        #expect(try store.store(StoreBatch(events: Rows.events(1...512))).eventsStored == 512)
        let again = try store.store(StoreBatch(events: Rows.events(1...512)))
        #expect(again.eventsStored == 0 && again.eventsDuplicate == 512)
        let overlap = try store.store(StoreBatch(events: Rows.events(257...768).reversed()))
        #expect(overlap.eventsStored == 256 && overlap.eventsDuplicate == 256)
        #expect(try store.number("SELECT count(*) FROM events") == 768)
        #expect(try store.number("SELECT count(DISTINCT seq) FROM events WHERE seq BETWEEN 1 AND 768") == 768)
    }

    @Test("legacy events have no key: each call's rows are stored, the same event twice is two rows")
    func legacy() throws {
        let (store, _, _) = try TestPostgres.store()
        var event = Rows.event(7)
        event.source = .legacy
        #expect(try store.store(StoreBatch(events: [event])).legacyEventsStored == 1)
        #expect(try store.store(StoreBatch(events: [event, Rows.event(7)])).legacyEventsStored == 1)
        #expect(try store.number("SELECT count(*) FROM legacy_events WHERE seq = 7") == 2)
        #expect(try store.number("SELECT count(*) FROM events") == 1)
        #expect(try store.query("SELECT source, count(*) FROM event_log GROUP BY source ORDER BY source")
                == [["batch", "1"], ["legacy", "2"]])
    }

    @Test("a retried loss report and a second boot-end report are recorded once; the first boot end wins")
    func lossAndBootEndUniqueness() throws {
        let (store, _, _) = try TestPostgres.store()
        let dropped = LossRow(agentID: "agent-1", bootID: "boot-1", reason: .agentDropped,
                              extent: .before(sequence: 20, count: 3), receivedNanoseconds: 1)
        let batch = StoreBatch(losses: [Rows.loss(5, 9), Rows.loss(12, 12, reason: .spoolEvicted), dropped],
                               bootEnds: [Rows.bootEnd(last: 30)])
        let first = try store.store(batch)
        #expect(first.lossesStored == 3 && first.bootEndsStored == 1)
        let retry = try store.store(batch)
        #expect(retry.lossesStored == 0 && retry.lossesDuplicate == 3 && retry.bootEndsDuplicate == 1)
        let other = try store.store(StoreBatch(bootEnds: [Rows.bootEnd(ending: .unclean, last: 31, reportedBy: "boot-3")]))
        #expect(other.bootEndsStored == 0)
        #expect(try store.query("SELECT ending, last_seq, reported_by FROM boot_ends") == [["clean", "30", "boot-2"]])
        #expect(try store.query("SELECT reason, first_seq, last_seq, before_seq, count FROM losses ORDER BY reason")
                == [["agent_dropped", nil, nil, "20", "3"], ["queue_full", "5", "9", nil, "5"], ["spool_evicted", "12", "12", nil, "1"]])
    }

    @Test("rows PostgreSQL cannot hold are invalidData, nothing of the batch is stored, and the store carries on")
    func invalidData() throws {
        let (store, _, _) = try TestPostgres.store()
        var over = Rows.event(2)
        over.sequence = UInt64(Int64.max) + 1
        let bigint = #expect(throws: StoreError.self) { try store.store(StoreBatch(events: [Rows.event(1), over])) }
        #expect(bigint?.kind == .invalidData && bigint?.isRetryable == false)
        var nul = Rows.event(3)
        nul.targetPath = "/etc/\u{0}shadow"
        let text = #expect(throws: StoreError.self) {
            try store.store(StoreBatch(events: [Rows.event(1)], losses: [Rows.loss(2, 2)], bootEnds: [Rows.bootEnd(last: 3)]) .appending(nul))
        }
        #expect(text?.kind == .invalidData && text?.sqlState == "22021")
        #expect(try store.number("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM losses) + (SELECT count(*) FROM boot_ends)") == 0)
        #expect(try store.store(StoreBatch(events: [Rows.event(1)])).eventsStored == 1)
    }

    @Test("a batch is visible to others only once store returns: all of it, or (before) none")
    func visibleOnlyAfterCommit() throws {
        let (store, cluster, database) = try TestPostgres.store()
        let settings = TestPostgres.settings(cluster, database)
        // Another session holds boot_ends, the last table the store writes: the
        // store's transaction has inserted its events and losses, then waits.
        let holder = try EventStore.open(settings, collectorID: "holder")
        _ = try holder.query("BEGIN")
        _ = try holder.query("LOCK TABLE boot_ends IN EXCLUSIVE MODE")
        let observer = try EventStore.open(settings, collectorID: "observer")
        let returned = Atomic<Bool>(false)
        let outcome = Locked<Result<StoreReceipt, StoreError>?>(nil)
        let batch = StoreBatch(events: Rows.events(1...512), losses: [Rows.loss(513, 520)], bootEnds: [Rows.bootEnd(last: 520)])
        nonisolated(unsafe) let writer = store
        let thread = NamedThread(name: "store") {
            let result = Result { () throws(StoreError) in try writer.store(batch) }
            outcome.withLock { $0 = result }
            returned.store(true, ordering: .releasing)
        }
        #expect(try eventually {
            try observer.number("SELECT count(*) FROM pg_locks WHERE relation = 'boot_ends'::regclass AND NOT granted") == 1
        })
        let returnedEarly = returned.load(ordering: .acquiring)
        #expect(!returnedEarly)
        #expect(try observer.number("SELECT count(*) FROM events") == 0)
        #expect(try observer.number("SELECT count(*) FROM losses") == 0)
        _ = try holder.query("COMMIT")
        thread.join()
        let receipt = try #require(outcome.withLock { $0 }).get()
        #expect(receipt.eventsStored == 512 && receipt.lossesStored == 1 && receipt.bootEndsStored == 1)
        #expect(try observer.number("SELECT count(*) FROM events") == 512)
    }
}

extension StoreBatch {
    func appending(_ event: EventRow) -> StoreBatch {
        var copy = self
        copy.events.append(event)
        return copy
    }
}
