import AuthRelayHarness
import AuthRelayPostgres
import Synchronization
import SystemSupport
import Testing

@Suite(.needsPostgres) struct SchemaTests {
    @Test("migrate creates version 1 on an empty database and finds nothing to do the second time")
    func idempotent() throws {
        let (cluster, database) = try TestPostgres.freshDatabase()
        let store = try EventStore.open(TestPostgres.settings(cluster, database), collectorID: "c")
        let first = try store.migrate()
        #expect(first == Schema.Migration(found: 0, now: Schema.latestVersion, applied: Schema.steps.map(\.version)))
        let second = try store.migrate()
        #expect(second == Schema.Migration(found: Schema.latestVersion, now: Schema.latestVersion, applied: []))
        let tables = try store.query("""
            SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'
            """)
        #expect(tables == [["boot_ends,event_log,events,legacy_events,losses,schema_version,sequence_gaps"]])
        #expect(try store.number("SELECT count(*) FROM schema_version") == Schema.steps.count)
    }

    @Test("four collectors migrating one empty database at once: one applies, the others wait and find it done")
    func concurrent() throws {
        let (cluster, database) = try TestPostgres.freshDatabase()
        let settings = TestPostgres.settings(cluster, database)
        let results = Locked<[Result<Schema.Migration, StoreError>]>([])
        let group = ThreadGroup()
        let start = Atomic<Bool>(false)
        for index in 0..<4 {
            group.start(name: "migrate-\(index)") {
                let store = EventStore(settings: settings, collectorID: "c\(index)")
                let connected = Result { () throws(StoreError) in try store.connect() }
                while !start.load(ordering: .acquiring) { SystemClock.sleep(.milliseconds(1)) }
                let result = connected.flatMap { Result { () throws(StoreError) in try store.migrate() } }
                results.withLock { $0.append(result) }
            }
        }
        start.store(true, ordering: .releasing)
        group.joinAll()
        let migrations = try results.withLock { try $0.map { try $0.get() } }
        #expect(migrations.count == 4)
        #expect(migrations.filter { !$0.applied.isEmpty }.count == 1)
        #expect(migrations.allSatisfy { $0.now == Schema.latestVersion })
        let store = try EventStore.open(settings, collectorID: "check")
        #expect(try store.number("SELECT count(*) FROM schema_version") == Schema.steps.count)
    }
}
