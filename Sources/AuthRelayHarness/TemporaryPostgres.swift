import Glibc
import Synchronization
import SystemSupport

/// A PostgreSQL cluster of its own, for a test, a drill or a benchmark: initdb
/// in a temporary directory, the server on 127.0.0.1 at a free port and on a
/// unix socket in that directory, stopped or killed by its pid, restartable,
/// every wait bounded. Removed with its data when released.
///
/// PostgreSQL refuses to run as root, so as root its programs run as the
/// `postgres` user (Debian's package makes it; `nobody` otherwise) through
/// `setpriv`, which execs in place: the server's pid is our child's pid, so
/// the drills signal and reap exactly that process. `postgres` is started
/// directly rather than through `pg_ctl` for the same reason (pg_ctl's server
/// is not our child). Authentication: trust on the unix socket, SCRAM with
/// `password` over TCP (the way a collector on another host connects).
package final class TemporaryPostgres: Sendable {
    package struct Options: Sendable {
        /// fsync as a production server has it. Off (fsync=off,
        /// full_page_writes=off) makes tests faster and loses nothing a
        /// process crash can lose: a commit still writes its WAL to the kernel
        /// before it returns (synchronous_commit stays on, so a kill -9 of the
        /// server keeps every commit); only a machine crash could lose it.
        package var durable = false
        /// More `-c name=value` settings for the server.
        package var settings: [String: String] = [:]
        package init(durable: Bool = false, settings: [String: String] = [:]) {
            self.durable = durable
            self.settings = settings
        }
    }

    /// The superuser initdb creates; its password is `password` (TCP only).
    package let user = "authrelay"
    package let password: String
    /// A file (0600, ours) that holds `password` and nothing else.
    package let passwordFile: String
    package let port: UInt16
    /// Where the server's unix socket is (a libpq `host` when it starts with "/").
    package let socketDirectory: String
    package let dataDirectory: String
    package let binaries: String
    private let directory: TemporaryDirectory
    private let options: Options
    private let runAs: UserAccount?
    private let server = Locked<ChildProcess?>(nil)
    private let starts = Atomic<Int>(0)

    /// How long start-up, shutdown and initdb may take before they count as failed.
    package static let startTimeout: Duration = .seconds(60)
    package static let stopTimeout: Duration = .seconds(30)

    /// Runs initdb and starts the server.
    package init(options: Options = Options()) throws(HarnessError) {
        guard let binaries = Self.findBinaries() else {
            throw HarnessError("PostgreSQL's server programs (initdb, postgres) are not installed: run scripts/setup-postgres.sh")
        }
        self.binaries = binaries
        self.options = options
        directory = try TemporaryDirectory(prefix: "authrelay-pg")
        dataDirectory = directory.file("data")
        socketDirectory = directory.file("run")
        passwordFile = directory.file("password")
        password = "pw-\(UInt64.random(in: 0...UInt64.max))"
        runAs = try Self.serverAccount()
        port = try Self.freePort()
        try prepareDirectories()
        try initializeCluster()
        try start()
    }

    deinit {
        if let child = server.withLock({ $0.take() }) { Self.crash(child) }
    }

    // MARK: Where clients connect

    /// A libpq URL over TCP to `database`, without the password (give
    /// `passwordFile` or PGPASSWORD).
    package func url(database: String = "postgres") -> String {
        "postgresql://\(user)@127.0.0.1:\(port)/\(database)"
    }

    /// libpq key=value settings over the unix socket (trust: no password).
    package func socketConnection(database: String = "postgres") -> String {
        "host=\(socketDirectory) port=\(port) user=\(user) dbname=\(database)"
    }

    // MARK: The server's life

    /// The server's pid while it runs.
    package var pid: Int32? { server.withLock { $0?.isRunning == true ? $0?.pid : nil } }

    package var isRunning: Bool { pid != nil }

    /// Starts the server and waits (bounded) until it accepts connections. A
    /// start after `kill()` waits for the killed server's workers to be gone
    /// first (the new server refuses shared memory they still hold).
    package func start() throws(HarnessError) {
        if isRunning { return }
        let number = starts.add(1, ordering: .relaxed).newValue
        var arguments = ["-D", dataDirectory, "-p", "\(port)", "-k", socketDirectory, "-c", "listen_addresses=127.0.0.1"]
        var settings = options.settings
        if !options.durable {
            settings["fsync"] = settings["fsync"] ?? "off"
            settings["full_page_writes"] = settings["full_page_writes"] ?? "off"
        }
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) { arguments += ["-c", "\(name)=\(value)"] }
        let child = try launch(binary("postgres"), arguments, tag: "postgres-\(number)")
        server.withLock { $0 = child }
        do {
            try child.waitFor("database system is ready to accept connections", timeout: Self.startTimeout)
        } catch {
            _ = child.kill()
            throw error
        }
    }

    /// Fast shutdown (SIGINT: sessions are ended, what is committed stays),
    /// bounded: killed when it takes longer than `stopTimeout`.
    package func stop() {
        guard let child = server.withLock({ $0.take() }) else { return }
        child.signal(SIGINT)
        if child.wait(timeout: Self.stopTimeout) == nil { Self.crash(child) }
    }

    /// A crash: the server and every worker it has get SIGKILL at once (the
    /// server is stopped first so it starts none meanwhile). Committed data
    /// survives; the next start recovers from the WAL.
    package func kill() {
        if let child = server.withLock({ $0.take() }) { Self.crash(child) }
    }

    /// Kills the server and removes its directory, data and all: for a
    /// process that ends without releasing the cluster (an atexit handler).
    package func remove() {
        kill()
        directory.remove()
    }

    /// `stop()` (or `kill()` with `crash`), then `start()`.
    package func restart(crash: Bool = false) throws(HarnessError) {
        if crash { kill() } else { stop() }
        try start()
    }

    /// The server's log (its stderr) of every start so far, for failure messages.
    package var log: String {
        (1...max(1, starts.load(ordering: .relaxed))).map { FileSystem.readText(directory.file("postgres-\($0).err")) ?? "" }
            .joined(separator: "\n")
    }

    // MARK: psql

    /// Runs psql over the unix socket with `arguments` (bounded by `timeout`);
    /// its output. Fails with the output when psql exits non-zero.
    @discardableResult
    package func psql(_ arguments: [String], database: String = "postgres",
                      timeout: Duration = .seconds(120)) throws(HarnessError) -> String {
        let (status, output) = try ChildProcess.run(
            binary("psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", socketConnection(database: database)] + arguments,
            timeout: timeout)
        if status != 0 { throw HarnessError("psql \(arguments.joined(separator: " ")) failed (status \(status)):\n\(output)") }
        return output
    }

    /// One statement's rows through psql, unaligned and without headers.
    package func query(_ sql: String, database: String = "postgres") throws(HarnessError) -> String {
        try psql(["-A", "-t", "-c", sql], database: database).trimmingSuffix("\n")
    }

    /// A new, empty database called `name`.
    package func createDatabase(_ name: String) throws(HarnessError) {
        try psql(["-c", "CREATE DATABASE \"\(name)\""])
    }

    // MARK: Setting up

    package func binary(_ name: String) -> String { "\(binaries)/\(name)" }

    /// The folder of initdb and postgres: AUTHRELAY_POSTGRES_BIN, else the
    /// newest /usr/lib/postgresql/N/bin (Debian keeps them off PATH); nil when
    /// neither has them.
    package static func findBinaries() -> String? {
        if let folder = Processes.environmentValue("AUTHRELAY_POSTGRES_BIN") {
            return FileSystem.isExecutable("\(folder)/postgres") ? folder : nil
        }
        let versions = ((try? FileSystem.listDirectory("/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        for version in versions.reversed() where FileSystem.isExecutable("/usr/lib/postgresql/\(version)/bin/postgres") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        for folder in ["/usr/bin", "/usr/local/bin", "/usr/local/pgsql/bin"]
        where FileSystem.isExecutable("\(folder)/initdb") && FileSystem.isExecutable("\(folder)/postgres") {
            return folder
        }
        return nil
    }

    /// Whether this machine can run a temporary cluster (the tests skip without one).
    package static var isInstalled: Bool { findBinaries() != nil }

    /// Who the server runs as: nil (ourselves) unless we are root.
    private static func serverAccount() throws(HarnessError) -> UserAccount? {
        guard UserAccount.isRoot else { return nil }
        do {
            for name in ["postgres", "nobody"] {
                if let account = try UserAccount.named(name) { return account }
            }
        } catch {
            throw HarnessError("cannot look up the postgres user", system: error)
        }
        throw HarnessError("running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as")
    }

    /// A TCP port nothing listens on now (bound to port 0, read, released).
    private static func freePort() throws(HarnessError) -> UInt16 {
        do {
            let socket = try FileDescriptor.socket(family: AF_INET, .stream)
            try socket.bind(to: .loopback(port: 0))
            return try socket.localAddress().port ?? 0
        } catch {
            throw HarnessError("cannot find a free TCP port", system: error)
        }
    }

    /// The directory, the socket directory and the initdb password file,
    /// handed to the server's user.
    private func prepareDirectories() throws(HarnessError) {
        do {
            try FileSystem.makeDirectory(socketDirectory, mode: 0o700)
            try FileSystem.writeFile(passwordFile, Array(password.utf8), mode: 0o600)
            try FileSystem.writeFile(directory.file("initdb-password"), Array(password.utf8), mode: 0o600)
            if let runAs {
                for path in [directory.path, socketDirectory, directory.file("initdb-password")] {
                    try FileSystem.changeOwner(path, uid: runAs.uid, gid: runAs.gid)
                }
            }
        } catch {
            throw HarnessError("cannot prepare \(directory.path) for PostgreSQL", system: error)
        }
    }

    private func initializeCluster() throws(HarnessError) {
        let arguments = ["-D", dataDirectory, "-U", user, "--pwfile", directory.file("initdb-password"),
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]
        let child = try launch(binary("initdb"), arguments, tag: "initdb")
        let ended = try child.waitForExit(timeout: Self.startTimeout)
        try? FileSystem.removeFile(directory.file("initdb-password"))
        if ended != .exited(0) { throw HarnessError("initdb failed (\(ended)):\n\(child.output)") }
    }

    /// Starts `program` as the server's user, output in the cluster's directory.
    private func launch(_ program: String, _ arguments: [String], tag: String) throws(HarnessError) -> ChildProcess {
        var command = (program, arguments)
        if let runAs {
            command = ("/usr/bin/setpriv",
                       ["--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--clear-groups", "--", program] + arguments)
        }
        return try ChildProcess(command.0, command.1, outputIn: directory, tag: tag, environment: ["LC_ALL": "C"])
    }

    /// SIGKILL to the server and its workers. The server is stopped (SIGSTOP)
    /// first: it forks nothing more, and a killed worker stays its zombie, so
    /// no pid in the list can be reused before it is signalled. Then waits
    /// (bounded) until the workers are gone: they are not our children, their
    /// zombies hold no shared memory and count as gone.
    private static func crash(_ child: ChildProcess) {
        child.signal(SIGSTOP)
        let workers = Processes.children(of: child.pid)
        for pid in workers { Processes.signal(pid, SIGKILL) }
        _ = child.kill()
        let deadline = SystemClock.deadline(after: stopTimeout)
        while workers.contains(where: { Processes.state($0).map { $0 != "Z" } ?? false }),
              SystemClock.monotonicNanoseconds() < deadline {
            SystemClock.sleep(.milliseconds(5))
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
