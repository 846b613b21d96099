import AuthRelayHarness
import AuthRelayPostgres
import Glibc
import Synchronization
import SystemSupport
import Testing

/// The database going away under a store: each test has a cluster of its own
/// to stop, kill and restart (serialized: each starts a server).
@Suite(.needsPostgres, .serialized) struct ServerLossTests {
    @Test("the server stopped or killed in the middle of a store: a classified failure, nothing half-stored, then a reconnect stores it",
          arguments: [false, true])
    func stoppedMidStore(crash: Bool) throws {
        let cluster = try TemporaryPostgres()
        let settings = TestPostgres.settings(cluster, "postgres", tcp: true)
        let store = try EventStore.open(settings, collectorID: "collector-a")
        try store.migrate()
        // As in the visibility test: the store's transaction has written its
        // events and losses and waits on boot_ends when the server goes.
        let holder = try EventStore.open(settings, collectorID: "holder")
        _ = try holder.query("BEGIN")
        _ = try holder.query("LOCK TABLE boot_ends IN EXCLUSIVE MODE")
        let batch = StoreBatch(events: Rows.events(1...512), losses: [Rows.loss(513, 520)], bootEnds: [Rows.bootEnd(last: 520)])
        let outcome = Locked<Result<StoreReceipt, StoreError>?>(nil)
        nonisolated(unsafe) let writer = store
        let thread = NamedThread(name: "store") {
            let result = Result { () throws(StoreError) in try writer.store(batch) }
            outcome.withLock { $0 = result }
        }
        #expect(try eventually {
            try holder.number("SELECT count(*) FROM pg_locks WHERE relation = 'boot_ends'::regclass AND NOT granted") == 1
        })
        if crash { cluster.kill() } else { cluster.stop() }
        thread.join()
        let failure = #expect(throws: StoreError.self) { try #require(outcome.withLock { $0 }).get() }
        // A shutdown tells the session why (FATAL 57P01); a crash just closes it.
        #expect(failure?.kind == (crash ? .connectionLost : .serverRestarting), "\(String(describing: failure))")
        #expect(failure?.sqlState == (crash ? nil : "57P01"))
        #expect(failure?.isRetryable == true)
        #expect(!store.isConnected)

        try cluster.start()
        var backoff = Backoff(first: .milliseconds(50), limit: .milliseconds(500))
        let deadline = SystemClock.deadline(after: .seconds(60))
        #expect(store.reconnect(backoff: &backoff, shouldStop: { SystemClock.monotonicNanoseconds() > deadline }))
        #expect(try store.number("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM losses) + (SELECT count(*) FROM boot_ends)") == 0)
        let receipt = try store.store(batch)
        #expect(receipt.eventsStored == 512 && receipt.lossesStored == 1 && receipt.bootEndsStored == 1)
    }

    @Test("no server: connecting fails as connectionLost; reconnect with backoff succeeds once it is back, telling each failed attempt")
    func reconnectsWhenBack() throws {
        let cluster = try TemporaryPostgres()
        let store = EventStore(settings: TestPostgres.settings(cluster, "postgres", tcp: true), collectorID: "c")
        try store.connect()
        try store.migrate()
        cluster.stop()
        let down = #expect(throws: StoreError.self) { try store.store(StoreBatch(events: Rows.events(1...10))) }
        #expect(down.map { [.serverRestarting, .connectionLost].contains($0.kind) } == true, "\(String(describing: down))")
        let refused = #expect(throws: StoreError.self) { try store.connect() }
        #expect(refused?.kind == .connectionLost && refused?.operation == "connect", "\(String(describing: refused))")

        let restarter = NamedThread(name: "restart") {
            SystemClock.sleep(.milliseconds(700))
            try? cluster.start()
        }
        var failures: [StoreError] = []
        var backoff = Backoff(first: .milliseconds(50), limit: .milliseconds(200))
        let deadline = SystemClock.deadline(after: .seconds(60))
        let connected = store.reconnect(backoff: &backoff, shouldStop: { SystemClock.monotonicNanoseconds() > deadline },
                                        onFailure: { error, _ in failures.append(error) })
        restarter.join()
        #expect(connected)
        #expect(!failures.isEmpty)
        #expect(failures.allSatisfy { [.connectionLost, .serverRestarting].contains($0.kind) }, "\(failures)")
        #expect(try store.store(StoreBatch(events: Rows.events(1...10))).eventsStored == 10)
    }

    @Test("TemporaryPostgres: the server is our child by pid; a kill -9 and a restart keep what was committed")
    func clusterDrill() throws {
        let cluster = try TemporaryPostgres()
        let pid = try #require(cluster.pid)
        #expect(Processes.children(of: Processes.currentID).contains(pid))
        #expect(!Processes.children(of: pid).isEmpty)  // its workers
        try cluster.psql(["-c", "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)"])
        cluster.kill()
        #expect(!cluster.isRunning)
        #expect(Processes.state(pid) == nil)
        try cluster.restart()
        #expect(try cluster.query("SELECT sum(n) FROM t") == "3")
        try cluster.restart(crash: true)
        #expect(try cluster.query("SELECT count(*) FROM t") == "2")
        cluster.stop()
        #expect(!cluster.isRunning)
    }
}

@Suite(.needsPostgres) struct ConnectionFailureTests {
    @Test("over TCP the password comes from the file; a wrong one or none is authenticationFailed")
    func authentication() throws {
        let (cluster, database) = try TestPostgres.freshDatabase()
        let good = TestPostgres.settings(cluster, database, tcp: true)
        #expect(try EventStore.open(good, collectorID: "c").number("SELECT 1") == 1)
        let directory = try TemporaryDirectory(prefix: "authrelay-pg-auth")
        let wrongFile = directory.file("wrong")
        try FileSystem.writeFile(wrongFile, Array("not-the-password\n".utf8), mode: 0o600)
        var wrong = good
        wrong.passwordFile = wrongFile
        let refused = #expect(throws: StoreError.self) { try EventStore.open(wrong, collectorID: "c") }
        #expect(refused?.kind == .authenticationFailed && refused?.message.contains("password authentication failed") == true,
                "\(String(describing: refused))")
        var missing = good
        missing.passwordFile = directory.file("absent")
        let unreadable = #expect(throws: StoreError.self) { try EventStore.open(missing, collectorID: "c") }
        #expect(unreadable?.kind == .authenticationFailed && unreadable?.system?.errno == ENOENT)
        var none = good
        none.passwordFile = nil
        none.conninfo += "?passfile=/nonexistent"
        let noPassword = #expect(throws: StoreError.self) { try EventStore.open(none, collectorID: "c") }
        #expect(noPassword?.kind == .authenticationFailed, "\(String(describing: noPassword))")
    }

    @Test("a server that stops answering fails the call as connectionLost within the operation timeout; the next call reconnects")
    func hungServer() throws {
        let (cluster, database) = try TestPostgres.freshDatabase()
        let store = try EventStore.open(TestPostgres.settings(cluster, database, operationTimeout: .seconds(2)), collectorID: "c")
        try store.migrate()
        let backend = Int32(try store.number("SELECT pg_backend_pid()"))
        #expect(Processes.signal(backend, SIGSTOP))
        defer { Processes.signal(backend, SIGCONT) }
        let began = SystemClock.monotonicNanoseconds()
        let hung = #expect(throws: StoreError.self) { try store.store(StoreBatch(events: Rows.events(1...512))) }
        let waited = Duration.nanoseconds(Int64(SystemClock.monotonicNanoseconds() - began))
        #expect(hung?.kind == .connectionLost && hung?.message.contains("no answer") == true, "\(String(describing: hung))")
        #expect(waited >= .seconds(2) && waited < .seconds(6), "waited \(waited)")
        #expect(!store.isConnected)
        Processes.signal(backend, SIGCONT)
        #expect(try store.store(StoreBatch(events: Rows.events(1...512))).eventsStored == 512)
    }
}
