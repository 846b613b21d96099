import AuthRelayHarness
import AuthRelayPostgres
import Glibc
import Synchronization
import SystemSupport
import Testing

/// The server these tests run against: one temporary cluster shared by the
/// tests that leave it running (a database each), started at first use and
/// killed when the test process exits; tests that stop or kill the server
/// start a cluster of their own.
enum TestPostgres {
    /// Skipped where PostgreSQL's server is not installed, unless
    /// AUTHRELAY_REQUIRE_POSTGRES=1 (CI) makes its absence a failure.
    static let enabled = TemporaryPostgres.isInstalled || Processes.environmentValue("AUTHRELAY_REQUIRE_POSTGRES") == "1"

    private static let shared: Result<TemporaryPostgres, HarnessError> = {
        let result = Result { () throws(HarnessError) in try TemporaryPostgres() }
        atexit { TestPostgres.stopShared() }
        return result
    }()

    private static func stopShared() {
        if case .success(let cluster) = shared { cluster.remove() }
    }

    private static let databases = Atomic<Int>(0)

    /// The shared cluster and a new empty database in it.
    static func freshDatabase() throws -> (cluster: TemporaryPostgres, database: String) {
        let cluster = try shared.get()
        let database = "test_\(databases.add(1, ordering: .relaxed).newValue)"
        try cluster.createDatabase(database)
        return (cluster, database)
    }

    /// Settings for `database`: over the unix socket (trust), or over TCP with the password file.
    static func settings(_ cluster: TemporaryPostgres, _ database: String, tcp: Bool = false,
                         operationTimeout: Duration = .seconds(30)) -> ConnectionSettings {
        if tcp {
            return ConnectionSettings(conninfo: cluster.url(database: database), passwordFile: cluster.passwordFile,
                                      connectTimeout: .seconds(5), operationTimeout: operationTimeout)
        }
        return ConnectionSettings(conninfo: cluster.socketConnection(database: database), connectTimeout: .seconds(5),
                                  operationTimeout: operationTimeout)
    }

    /// A migrated store on a new database of the shared cluster.
    static func store(collectorID: String = "collector-a") throws -> (EventStore, TemporaryPostgres, String) {
        let (cluster, database) = try freshDatabase()
        let store = try EventStore.open(settings(cluster, database), collectorID: collectorID)
        try store.migrate()
        return (store, cluster, database)
    }
}

extension Trait where Self == ConditionTrait {
    static var needsPostgres: Self {
        .enabled(if: TestPostgres.enabled,
                 "PostgreSQL's server is not installed (scripts/setup-postgres.sh installs it; AUTHRELAY_REQUIRE_POSTGRES=1 fails instead)")
    }
}

/// Rows for the tests.
enum Rows {
    static func event(_ sequence: UInt64, agent: String = "agent-1", boot: String = "boot-1",
                      target: String = "/etc/hosts", verdict: String = "allow") -> EventRow {
        EventRow(source: .batch(agentID: agent, bootID: boot), sequence: sequence,
                 timestampNanoseconds: 1_700_000_000_000_000_000 + sequence, kind: "open", verdict: verdict,
                 decisionNanoseconds: 1234, pid: 4321, ppid: 1, uid: 1000, gid: 1000, flags: 1,
                 executablePath: "/usr/bin/cat", targetPath: target, digest: [0xde, 0xad, 0xbe, 0xef],
                 receivedNanoseconds: 1_700_000_000_500_000_000, peer: PeerCredentials(uid: 0, gid: 0, pid: 99))
    }

    static func events(_ range: ClosedRange<UInt64>, agent: String = "agent-1", boot: String = "boot-1") -> [EventRow] {
        range.map { event($0, agent: agent, boot: boot) }
    }

    static func loss(_ first: UInt64, _ last: UInt64, reason: LossRow.Reason = .queueFull, agent: String = "agent-1",
                     boot: String = "boot-1") -> LossRow {
        LossRow(agentID: agent, bootID: boot, reason: reason, extent: .range(first: first, last: last),
                receivedNanoseconds: 1_700_000_000_500_000_000)
    }

    static func bootEnd(agent: String = "agent-1", boot: String = "boot-1", ending: BootEndRow.Ending = .clean,
                        last: UInt64, reportedBy: String = "boot-2") -> BootEndRow {
        BootEndRow(agentID: agent, bootID: boot, ending: ending, lastSequence: last,
                   endedNanoseconds: 1_700_000_001_000_000_000, reportedBy: reportedBy,
                   receivedNanoseconds: 1_700_000_001_500_000_000)
    }
}

extension EventStore {
    /// One number from a query (a count).
    func number(_ sql: String, _ parameters: [String?] = []) throws -> Int {
        Int((try query(sql, parameters).first?.first ?? nil) ?? "") ?? -1
    }
}

/// Waits (bounded) until `condition` holds; false on timeout.
func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = SystemClock.deadline(after: timeout)
    while SystemClock.monotonicNanoseconds() < deadline {
        if try condition() { return true }
        SystemClock.sleep(.milliseconds(20))
    }
    return try condition()
}
