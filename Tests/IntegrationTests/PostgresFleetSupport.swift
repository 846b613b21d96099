import AuthRelay
import AuthRelayHarness
import SystemSupport
import TestSupport
import Testing

/// What the PostgreSQL fleet tests share: a temporary cluster with a
/// database, authrelayd processes storing into it, and the checks of the
/// events table (every event once, no gaps).
enum FleetTest {
    /// Skipped where PostgreSQL's server is not installed, unless
    /// AUTHRELAY_REQUIRE_POSTGRES=1 (CI) makes its absence a failure.
    static let enabled = TemporaryPostgres.isInstalled || Processes.environmentValue("AUTHRELAY_REQUIRE_POSTGRES") == "1"
    static let skipReason: Comment = "PostgreSQL's server is not installed (scripts/setup-postgres.sh; AUTHRELAY_REQUIRE_POSTGRES=1 fails instead)"

    /// A cluster of its own (these tests stop and restart it) and a database "fleet" in it.
    static func cluster() throws -> TemporaryPostgres {
        let cluster = try TemporaryPostgres()
        try cluster.createDatabase("fleet")
        return cluster
    }

    /// authrelayd storing into `cluster`'s database over TCP with the password
    /// file (or `passwordFile`); tcp and unix listeners on loopback, no rpcbind.
    static func collector(_ cluster: TemporaryPostgres, in directory: TemporaryDirectory, name: String,
                          passwordFile: String? = nil) throws -> StartedCollector {
        try StartedCollector(in: directory, dataDirectory: directory.file("data-\(name)"), extra: [
            "--transports", "tcp,unix", "--sink", "postgres", "--postgres-url", cluster.url(database: "fleet"),
            "--postgres-password-file", passwordFile ?? cluster.passwordFile,
        ])
    }

    /// One number per line of `sql`'s single row.
    static func numbers(_ cluster: TemporaryPostgres, _ sql: String) throws -> [Int] {
        try cluster.query(sql, database: "fleet").split(separator: "|").map { Int($0) ?? -1 }
    }

    /// Events of `bootID` in the table: rows, distinct sequences, lowest, highest.
    static func eventCounts(_ cluster: TemporaryPostgres, bootID: String) throws -> [Int] {
        try numbers(cluster, "SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events WHERE boot_id = '\(bootID)'")
    }

    /// Rows of the sequence_gaps view (what no event and no loss covers), over every boot.
    static func gapCount(_ cluster: TemporaryPostgres) throws -> Int {
        try numbers(cluster, "SELECT count(*) FROM sequence_gaps").first ?? -1
    }

    /// Submits `count` events from `first` at `rate` per second on a thread of its own.
    static func stream(_ sender: EventSender, from first: Int = 0, count: Int, rate: Double) -> NamedThread {
        NamedThread(name: "fleet-submit") { SpoolTest.submit(sender, from: first, count: count, rate: rate) }
    }

    /// Lines of `collector`'s log that contain `text`.
    static func logCount(_ collector: StartedCollector, _ text: String) -> Int {
        collector.process.output.split(separator: "\n").filter { $0.contains(text) }.count
    }
}
