import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// Collectors in front of one real PostgreSQL (a temporary cluster on
/// loopback), the agent's sender with its spool streaming to them: failover
/// by kill -9, the database restarted, one batch through two collectors, a
/// wrong password. Every event once in the events table, no gap in the view.
@Suite("PostgreSQL fleet", .serialized, .timeLimit(.minutes(5)), .enabled(if: FleetTest.enabled, FleetTest.skipReason))
struct PostgresFleetTests {
    init() { TestProcess.prepare() }

    @Test("two collectors, one database: kill -9 of the one in use mid-stream; every event once, no sequence gap")
    func failoverByKill() throws {
        let cluster = try FleetTest.cluster()
        defer { cluster.remove() }
        let directory = try TemporaryDirectory(prefix: "authrelay-fleet")
        defer { directory.remove() }
        let first = try FleetTest.collector(cluster, in: directory, name: "a")
        defer { first.stop() }
        let second = try FleetTest.collector(cluster, in: directory, name: "b")
        defer { second.stop() }
        let sender = SpoolTest.sender(first.tcp, failover: [second.tcp], spool: directory.file("spool"), agent: "fleet-agent")
        let total = 12_000
        let streaming = FleetTest.stream(sender, count: total, rate: 4000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged >= 2000 })
        _ = first.process.kill()
        let killedAt = sender.stats.acknowledged
        streaming.join()
        let report = sender.close(drainTimeout: .seconds(30))
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0 && report.stats.acknowledged == UInt64(total), "\(report.stats)")
        #expect(killedAt < UInt64(total), "the kill came mid-stream")

        let bootID = sender.configuration.bootID
        #expect(try FleetTest.eventCounts(cluster, bootID: bootID) == [total, total, 1, total])
        #expect(try FleetTest.gapCount(cluster) == 0)
        #expect(try FleetTest.numbers(cluster, "SELECT count(*) FROM losses") == [0])
        // The second collector stored the rest of the boot: the failover happened.
        let stats = try CollectorClient(endpoint: second.tcp).stats()
        #expect(stats.written > 0 && stats.written < UInt64(total), "\(stats)")
    }

    @Test("the agent program (synthetic source) with --collector A,B: kill -9 of A mid-stream; every event once in the table")
    func agentProcessFailover() throws {
        let cluster = try FleetTest.cluster()
        defer { cluster.remove() }
        let directory = try TemporaryDirectory(prefix: "authrelay-fleet")
        defer { directory.remove() }
        let first = try FleetTest.collector(cluster, in: directory, name: "a")
        defer { first.stop() }
        let second = try FleetTest.collector(cluster, in: directory, name: "b")
        defer { second.stop() }
        let agent = try ChildProcess(BuiltPrograms.path("authrelay"), [
            "agent", "--source", "synthetic", "--rate", "3000", "--duration", "4", "--agent-id", "fleet-process",
            "--collector", "tcp://127.0.0.1:\(first.tcpPort),tcp://127.0.0.1:\(second.tcpPort)",
            "--spool-dir", directory.file("agent-spool"), "--log-level", "info",
        ], outputIn: directory)
        try agent.waitFor("authrelay agent: ready")
        let stored = { try FleetTest.numbers(cluster, "SELECT count(*) FROM events WHERE agent_id = 'fleet-process'").first ?? 0 }
        #expect(try eventually(timeout: .seconds(10)) { try stored() >= 2000 })
        _ = first.process.kill()
        let ended = try agent.waitForExit(timeout: .seconds(60))
        #expect(ended == .exited(0), "\(agent.output)")
        let summary = agent.stdout
        let submitted = try #require(number(after: "events submitted", in: summary), "\(agent.output)")
        #expect(number(after: "acknowledged", in: summary) == submitted, "\(summary)")
        #expect(submitted > 6000)
        let total = Int(submitted)
        #expect(try FleetTest.numbers(cluster, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events WHERE agent_id = 'fleet-process'")
                == [total, total, 1, total])
        #expect(try FleetTest.gapCount(cluster) == 0)
        // The run told the collector that answered at its stop how it ended.
        #expect(try cluster.query("SELECT ending, last_seq FROM boot_ends WHERE agent_id = 'fleet-process'", database: "fleet")
                == "clean|\(total)")
        let stats = try CollectorClient(endpoint: second.tcp).stats()
        #expect(stats.written > 0, "the second collector took over: \(stats)")
    }

    @Test("PostgreSQL restarted mid-stream: nothing lost, nothing twice, one outage episode in the collector's log")
    func databaseRestart() throws {
        let cluster = try FleetTest.cluster()
        defer { cluster.remove() }
        let directory = try TemporaryDirectory(prefix: "authrelay-fleet")
        defer { directory.remove() }
        let collector = try FleetTest.collector(cluster, in: directory, name: "a")
        defer { collector.stop() }
        let sender = SpoolTest.sender(collector.tcp, spool: directory.file("spool"), agent: "restart-agent")
        let total = 10_000
        let streaming = FleetTest.stream(sender, count: total, rate: 4000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged >= 2000 })
        cluster.stop()
        let acknowledgedWhileDown = sender.stats.acknowledged
        SystemClock.sleep(.seconds(1))
        // Nothing is acknowledged while the database is down (a call in flight at the stop may still finish).
        #expect(sender.stats.acknowledged <= acknowledgedWhileDown + 512)
        try cluster.start()
        streaming.join()
        let report = sender.close(drainTimeout: .seconds(30))
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0 && report.stats.acknowledged == UInt64(total), "\(report.stats)")

        #expect(try FleetTest.eventCounts(cluster, bootID: sender.configuration.bootID) == [total, total, 1, total])
        #expect(try FleetTest.gapCount(cluster) == 0)
        #expect(FleetTest.logCount(collector, "database unavailable") == 1, "\(collector.process.output)")
        #expect(FleetTest.logCount(collector, "database back") == 1)
        let stats = try CollectorClient(endpoint: collector.tcp).stats()
        #expect(stats.sinkErrors > 0, "the refused reports are counted: \(stats)")
    }

    @Test("the same batch through both collectors: stored once, both answer OK")
    func sameBatchTwice() throws {
        let cluster = try FleetTest.cluster()
        defer { cluster.remove() }
        let directory = try TemporaryDirectory(prefix: "authrelay-fleet")
        defer { directory.remove() }
        let first = try FleetTest.collector(cluster, in: directory, name: "a")
        defer { first.stop() }
        let second = try FleetTest.collector(cluster, in: directory, name: "b")
        defer { second.stop() }
        let batch = Sample.batchV3(agent: "dup-agent", boot: "dup-boot", first: 1, events: Array(1...100),
                                   losses: [])
        let lossy = Sample.batchV3(agent: "dup-agent", boot: "dup-boot", first: 101, events: Array(106...110),
                                   losses: [LossRange(first: 101, last: 105, reason: .queueFull)])
        let end = BootEnd(agentID: "dup-agent", bootID: "dup-boot", ending: .unclean, lastSequence: 110, endedNanoseconds: 77,
                          reportedBy: "dup-boot-2")
        for collector in [first, second] {
            let client = Version3Client(collector.tcp)
            #expect(try client.report(batch).status == .ok)
            #expect(try client.report(lossy).status == .ok)
            #expect(try client.reportBootEnd(end) == .ok)
            // Version 1: no ids to de-duplicate by, so each copy is a row of legacy_events.
            #expect(try CollectorClient(endpoint: collector.tcp).report(Sample.numbered(7)).status == .ok)
        }
        #expect(try FleetTest.numbers(cluster, "SELECT count(*), min(ending), min(last_seq) FROM boot_ends WHERE boot_id = 'dup-boot'")
                .first == 1)
        #expect(try cluster.query("SELECT ending, last_seq, reported_by FROM boot_ends", database: "fleet") == "unclean|110|dup-boot-2")
        #expect(try FleetTest.numbers(cluster, "SELECT count(*), min(seq) FROM legacy_events") == [2, 7])
        #expect(try FleetTest.eventCounts(cluster, bootID: "dup-boot") == [105, 105, 1, 110])
        #expect(try FleetTest.numbers(cluster, "SELECT count(*), sum(last_seq - first_seq + 1) FROM losses WHERE boot_id = 'dup-boot'") == [1, 5])
        #expect(try FleetTest.gapCount(cluster) == 0)
        let stats = try CollectorClient(endpoint: second.tcp).stats()
        #expect(stats.written == 1 && stats.duplicates == 105, "the second collector stored only its version 1 event: \(stats)")

        // A sequence PostgreSQL's bigint cannot hold: that batch REJECTED (resending cannot help), the next one stored.
        let client = Version3Client(first.tcp)
        let huge = UInt64(Int64.max) + 1
        #expect(try client.report(Sample.batchV3(agent: "big-agent", boot: "big-boot", first: huge, events: [huge])).status == .rejected)
        #expect(try client.report(Sample.batchV3(agent: "ok-agent", boot: "ok-boot", first: 1, events: [1, 2])).status == .ok)
        #expect(try FleetTest.eventCounts(cluster, bootID: "ok-boot") == [2, 2, 1, 2])
        #expect(FleetTest.logCount(first, "over PostgreSQL's bigint") == 1)
        #expect(FleetTest.logCount(first, "database unavailable") == 0, "the rows' fault is no outage")
    }

    @Test("a wrong password: one clear episode in the log (authentication failed), every report SINK_ERROR, nothing stored")
    func wrongPassword() throws {
        let cluster = try FleetTest.cluster()
        defer { cluster.remove() }
        let directory = try TemporaryDirectory(prefix: "authrelay-fleet")
        defer { directory.remove() }
        let wrong = directory.file("wrong-password")
        try FileSystem.writeFile(wrong, Array("not-the-password\n".utf8))
        let collector = try FleetTest.collector(cluster, in: directory, name: "a", passwordFile: wrong)
        defer { collector.stop() }
        let client = Version3Client(collector.tcp)
        for attempt in 0..<5 {
            let ack = try client.report(Sample.batchV3(agent: "pw-agent", boot: "pw-boot", first: 1, events: Array(1...10)))
            #expect(ack.status == .sinkError, "attempt \(attempt)")
            SystemClock.sleep(.milliseconds(150))
        }
        #expect(FleetTest.logCount(collector, "database unavailable") == 1, "\(collector.process.output)")
        #expect(FleetTest.logCount(collector, "authentication failed") >= 1)
        #expect(try FleetTest.numbers(cluster, "SELECT count(*) FROM pg_tables WHERE tablename = 'events'") == [0],
                "never connected: not even the schema")
        let stats = try CollectorClient(endpoint: collector.tcp).stats()
        #expect(stats.written == 0 && stats.sinkErrors == 5, "\(stats)")
    }

    @Test("a database that hangs (the collector's backend SIGSTOPped): GET_STATS still answers at once; after the operation timeout the collector drops the connection; resumed, every event once")
    func databaseHangs() throws {
        let cluster = try FleetTest.cluster()
        defer { cluster.remove() }
        let directory = try TemporaryDirectory(prefix: "authrelay-fleet")
        defer { directory.remove() }
        let collector = try FleetTest.collector(cluster, in: directory, name: "a")
        defer { collector.stop() }
        let sender = SpoolTest.sender(collector.tcp, spool: directory.file("spool"), agent: "hang-agent")
        let total = 6000
        let streaming = FleetTest.stream(sender, count: total, rate: 2000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged >= 1000 })
        let backend = try #require(Int32(try cluster.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'authrelayd' AND datname = 'fleet'", database: "fleet")))
        #expect(Processes.signal(backend, SIGSTOP))
        defer { _ = Processes.signal(backend, SIGCONT) }
        SystemClock.sleep(.seconds(2))
        // The writer waits on the database; the poll loop does not.
        let asked = SystemClock.monotonicNanoseconds()
        let stats = try CollectorClient(endpoint: collector.tcp, timeout: .seconds(2)).stats()
        let answeredIn = Duration.nanoseconds(Int64(SystemClock.monotonicNanoseconds() - asked))
        #expect(answeredIn < .milliseconds(500), "GET_STATS took \(answeredIn) while the database hung")
        let acknowledgedWhileHung = sender.stats.acknowledged
        #expect(stats.written >= acknowledgedWhileHung)
        streaming.join()
        // The writer gives up on the hung backend after the operation timeout (10 s here).
        #expect(eventually(timeout: .seconds(30)) { FleetTest.logCount(collector, "connection lost") >= 1 },
                "\(collector.process.output)")
        // A backend stopped inside a transaction keeps its rows' locks, so the
        // new connection's retry of the same rows waits for it, as it would for
        // any hung server process (CI caught this 1 run in 3). Resumed, it finds
        // its client gone, rolls back and lets go.
        _ = Processes.signal(backend, SIGCONT)
        let report = sender.close(drainTimeout: .seconds(40))
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0 && report.stats.acknowledged == UInt64(total), "\(report.stats)")
        #expect(try FleetTest.eventCounts(cluster, bootID: sender.configuration.bootID) == [total, total, 1, total])
        #expect(try FleetTest.gapCount(cluster) == 0)
        #expect(FleetTest.logCount(collector, "database unavailable") == 1, "\(collector.process.output)")
        #expect(FleetTest.logCount(collector, "database back") == 1)
    }
}
