// authrelayd: the rpcbind-registered AuthRelay collector daemon.
// Only flags and wiring live here; the work is in AuthRelayCollector and ONCRPC.
import ArgumentParser
import AuthRelayCLI
import AuthRelayCollector
import Logging
import ONCRPC
import SystemSupport

struct AuthRelayDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authrelayd",
        abstract: "Collect authorization events over ONC RPC (versions 1, 2 and 3) into JSON Lines.",
        discussion: "Docs/Operations.md explains running it under systemd, rpcbind and troubleshooting.")

    @Option(help: ArgumentHelp("Program number to serve (decimal or 0x hex).", valueName: "number"))
    var program: ProgramNumber = .authRelay

    @Option(help: ArgumentHelp("Transports to serve, comma separated: tcp, udp, unix.", valueName: "list"))
    var transports = TransportList([.tcp, .udp, .local])

    @Option(help: ArgumentHelp("IPv4 address for tcp and udp.", valueName: "address"))
    var bind: String = "127.0.0.1"

    @Option(help: "Port for tcp and udp; 0 takes any free port (rpcbind tells clients which).")
    var port: UInt16 = 0

    @Option(help: ArgumentHelp("Path of the AF_LOCAL socket.", valueName: "path"))
    var unixSocket: String = "/run/authrelayd.sock"

    @Option(help: ArgumentHelp("Mode of the unix socket, octal.", valueName: "mode"))
    var unixSocketMode = FileMode(0o660)

    @Flag(help: "Do not register with rpcbind (clients then need the fixed port or socket path).")
    var noRpcbind = false

    @Option(help: ArgumentHelp("Where the state lives (de-duplication checkpoint, lock).", valueName: "dir"))
    var dataDir: String = "/var/lib/authrelayd"

    @Option(help: ArgumentHelp("Sink: jsonl, postgres (with --postgres-url) or null (counts only, for benchmarks).", valueName: "kind"))
    var sink: SinkKind = .jsonl

    @Option(help: ArgumentHelp("PostgreSQL to store into with --sink postgres: postgresql://user@host:port/database (no password in it; see --postgres-password-file, PGPASSFILE, ~/.pgpass).", valueName: "url"))
    var postgresUrl: PostgresURL?

    @Option(help: ArgumentHelp("File holding the PostgreSQL password (nothing else; read at every connect).", valueName: "file"))
    var postgresPasswordFile: String?

    @Option(help: ArgumentHelp("JSON Lines output file, or - for stdout. Default: <data-dir>/events.jsonl.", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("When to fdatasync the output: always, batch or never.", valueName: "policy"))
    var fsync: FsyncPolicy = .batch

    @Option(help: ArgumentHelp("Rotate the output at this size (bytes, or with K, M, G); 0 never rotates.", valueName: "size"))
    var rotateSize = ByteCount(256 << 20)

    @Option(help: ArgumentHelp("Rotated output files to keep.", valueName: "count"))
    var rotateKeep: Int = 8

    @Option(help: "Open stream connections allowed; a new one past this closes the least recently active.")
    var maxConnections: Int = 512

    @Option(help: ArgumentHelp("Close a connection idle for this many seconds.", valueName: "seconds"))
    var idleTimeout = Seconds(.seconds(300))

    @Option(help: ArgumentHelp("Only this uid may report, over the unix socket (repeatable).", valueName: "uid"))
    var allowUid: [UInt32] = []

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("Sleep this long in every report before answering (e.g. 20ms): a deliberately slow collector for benchmarks and drills.", valueName: "duration"))
    var injectDelay: Duration?

    mutating func validate() throws {
        guard maxConnections > 0, idleTimeout.duration > .zero, rotateKeep > 0 else {
            throw ValidationError("--max-connections, --idle-timeout and --rotate-keep must be positive")
        }
        if sink == .postgres, postgresUrl == nil { throw ValidationError("--sink postgres needs --postgres-url") }
        if sink != .postgres, postgresUrl != nil || postgresPasswordFile != nil {
            throw ValidationError("--postgres-url and --postgres-password-file go with --sink postgres")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        // libtirpc writes with plain write(2): a reporter that goes away mid-reply must not kill the collector.
        ProcessSettings.ignoreBrokenPipe()
        do {
            try CollectorDaemon(configuration: configuration, logger: Logger(label: "authrelayd")).run()
        } catch {
            // One line on stderr, exit status 1: a start-up failure an operator can act on.
            Processes.writeToStandardError("authrelayd: \(error)\n")
            throw ExitCode.failure
        }
    }

    private var configuration: CollectorDaemon.Configuration {
        let chosen: CollectorConfiguration.Sink
        switch sink {
        case .null: chosen = .null
        case .jsonl: chosen = .jsonLines(path: output ?? dataDir + "/events.jsonl")
        case .postgres: chosen = .postgres(url: postgresUrl?.url ?? "", passwordFile: postgresPasswordFile)
        }
        var collector = CollectorConfiguration(sink: chosen, dataDirectory: dataDir)
        collector.program = program.value
        collector.fsync = fsync
        collector.rotateBytes = rotateSize.bytes
        collector.keepFiles = rotateKeep
        collector.allowedUIDs = Set(allowUid)
        collector.injectedDelay = injectDelay

        var server = RPCServer.Configuration(listeners: listeners)
        server.maxConnections = maxConnections
        server.idleTimeout = idleTimeout.duration
        server.registerWithRPCBind = !noRpcbind
        return CollectorDaemon.Configuration(collector: collector, server: server)
    }

    /// In this order whatever the order of --transports.
    private var listeners: [RPCServer.Listener] {
        var result: [RPCServer.Listener] = []
        if transports.contains(.tcp) { result.append(.tcp(host: bind, port: port)) }
        if transports.contains(.udp) { result.append(.udp(host: bind, port: port)) }
        if transports.contains(.local) { result.append(.unix(path: unixSocket, mode: unixSocketMode.bits)) }
        return result
    }
}

// With AUTHRELAY_CHECK_ARGUMENTS=1 the flags are only parsed and validated, then
// the process exits (0, or the usage error's status) without starting anything:
// Tests/IntegrationTests/DocsTests.swift checks every command the docs show this way.
if Processes.environmentValue("AUTHRELAY_CHECK_ARGUMENTS") == "1" {
    do {
        _ = try AuthRelayDaemon.parseAsRoot()
        AuthRelayDaemon.exit()
    } catch {
        AuthRelayDaemon.exit(withError: error)
    }
}
AuthRelayDaemon.main()
