// authrelayd: the rpcbind-registered AuthRelay collector daemon.
// Only flags and wiring live here; the work is in AuthRelayCollector and ONCRPC.
import ArgumentParser
import AuthRelayCLI
import AuthRelayCollector
import Dispatch
import Glibc
import Logging
import ONCRPC

struct AuthRelayDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authrelayd",
        abstract: "Collect authorization events over ONC RPC (versions 1 and 2) into JSON Lines.",
        discussion: "Docs/Operations.md explains running it under systemd, rpcbind and troubleshooting.")

    @Option(help: ArgumentHelp("Program number to serve (decimal or 0x hex).", valueName: "number"))
    var program: ProgramNumber = .authRelay

    @Option(help: ArgumentHelp("Transports to serve, comma separated: tcp, udp, unix.", valueName: "list"))
    var transports: String = "tcp,udp,unix"

    @Option(help: ArgumentHelp("IPv4 address for tcp and udp.", valueName: "address"))
    var bind: String = "127.0.0.1"

    @Option(help: "Port for tcp and udp; 0 takes any free port (rpcbind tells clients which).")
    var port: UInt16 = 0

    @Option(help: ArgumentHelp("Path of the AF_LOCAL socket.", valueName: "path"))
    var unixSocket: String = "/run/authrelayd.sock"

    @Option(help: ArgumentHelp("Mode of the unix socket, octal.", valueName: "mode"))
    var unixSocketMode: String = "0660"

    @Flag(help: "Do not register with rpcbind (clients then need the fixed port or socket path).")
    var noRpcbind = false

    @Option(help: ArgumentHelp("Where the state lives (de-duplication checkpoint, lock).", valueName: "dir"))
    var dataDir: String = "/var/lib/authrelayd"

    @Option(help: ArgumentHelp("Sink: jsonl or null (counts only, for benchmarks).", valueName: "kind"))
    var sink: String = "jsonl"

    @Option(help: ArgumentHelp("JSON Lines output file, or - for stdout. Default: <data-dir>/events.jsonl.", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("When to fdatasync the output: always, batch or never.", valueName: "policy"))
    var fsync: String = "batch"

    @Option(help: ArgumentHelp("Rotate the output at this size (bytes, or with K, M, G); 0 never rotates.", valueName: "size"))
    var rotateSize: String = "256M"

    @Option(help: ArgumentHelp("Rotated output files to keep.", valueName: "count"))
    var rotateKeep: Int = 8

    @Option(help: "Open stream connections allowed; more are refused.")
    var maxConnections: Int = 512

    @Option(help: ArgumentHelp("Close a connection idle for this many seconds.", valueName: "seconds"))
    var idleTimeout: Int = 300

    @Option(help: ArgumentHelp("Only this uid may report, over the unix socket (repeatable).", valueName: "uid"))
    var allowUid: [UInt32] = []

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("Sleep this long in every report before answering (e.g. 20ms): a deliberately slow collector for benchmarks and drills.", valueName: "duration"))
    var injectDelay: Duration?

    mutating func validate() throws {
        guard parsedTransports != nil else { throw ValidationError("--transports: use tcp, udp and unix, comma separated") }
        guard UInt32(unixSocketMode, radix: 8) != nil else { throw ValidationError("--unix-socket-mode: not octal: \(unixSocketMode)") }
        guard ["jsonl", "null"].contains(sink) else { throw ValidationError("--sink: jsonl or null") }
        guard FsyncPolicy(rawValue: fsync) != nil else { throw ValidationError("--fsync: always, batch or never") }
        guard Self.byteCount(rotateSize) != nil else { throw ValidationError("--rotate-size: a size such as 268435456, 256M or 1G") }
        guard maxConnections > 0, idleTimeout > 0, rotateKeep > 0 else {
            throw ValidationError("--max-connections, --idle-timeout and --rotate-keep must be positive")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "authrelayd")
        raiseOpenFileLimit(logger)

        var collectorConfiguration = CollectorConfiguration(
            sink: sink == "null" ? .null : .jsonLines(path: output ?? dataDir + "/events.jsonl"), dataDirectory: dataDir)
        collectorConfiguration.program = program.value
        collectorConfiguration.fsync = FsyncPolicy(rawValue: fsync)!
        collectorConfiguration.rotateBytes = Self.byteCount(rotateSize)!
        collectorConfiguration.keepFiles = rotateKeep
        collectorConfiguration.allowedUIDs = Set(allowUid)
        collectorConfiguration.injectedDelay = injectDelay

        var serverConfiguration = RPCServer.Configuration(listeners: listeners)
        serverConfiguration.maxConnections = maxConnections
        serverConfiguration.idleTimeout = .seconds(idleTimeout)
        serverConfiguration.maxRecordSize = CollectorService.maxRecordSize
        serverConfiguration.registerWithRPCBind = !noRpcbind

        let collector: CollectorService
        let server: RPCServer
        do {
            collector = try CollectorService(configuration: collectorConfiguration, logger: logger)
            server = try RPCServer(configuration: serverConfiguration, programs: collector.programs, logger: logger)
        } catch let error as RPCServerError {
            if case .rpcbindUnavailable = error {
                Self.fail("\(error), or run with --no-rpcbind")
            }
            Self.fail("\(error)")
        } catch {
            Self.fail("\(error)")
        }
        collector.serverCounters = { [unowned server] in
            (server.openConnections, server.statistics.undecodableArguments + server.statistics.unservedCalls)
        }

        let signals = Self.stopOnSignals([SIGTERM, SIGINT], server.stopHandle)
        logger.info("ready", metadata: [
            "program": "\(collectorConfiguration.program)", "sink": "\(sink)", "rpcbind": "\(!noRpcbind)",
        ])
        server.run(onTick: collector.tick)
        collector.close()
        signals.forEach { $0.cancel() }
        logger.info("stopped", metadata: ["statistics": "\(collector.currentStatistics)"])
    }

    private var parsedTransports: Set<String>? {
        let names = Set(transports.split(separator: ",").map { $0.filter { $0 != " " }.lowercased() })
        return !names.isEmpty && names.isSubset(of: ["tcp", "udp", "unix", "local"]) ? names : nil
    }

    private var listeners: [RPCServer.Listener] {
        let names = parsedTransports ?? []
        var result: [RPCServer.Listener] = []
        if names.contains("tcp") { result.append(.tcp(host: bind, port: port)) }
        if names.contains("udp") { result.append(.udp(host: bind, port: port)) }
        if names.contains("unix") || names.contains("local") {
            result.append(.unix(path: unixSocket, mode: UInt32(unixSocketMode, radix: 8)!))
        }
        return result
    }

    /// One RPCServer stop request per SIGTERM or SIGINT, from Dispatch's thread.
    private static func stopOnSignals(_ numbers: [Int32], _ stop: RPCServer.StopHandle) -> [DispatchSourceSignal] {
        numbers.map { number in
            signal(number, SIG_IGN)  // delivered to the source instead of killing the process
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.requestStop() }
            source.resume()
            return source
        }
    }

    /// Each connection takes a descriptor: use the hard limit (systemd's LimitNOFILE).
    /// Done before libtirpc's first use, which caches the table size.
    private func raiseOpenFileLimit(_ logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.debug("cannot raise the open file limit: \(String(cString: strerror(errno)))")
        }
    }

    /// One line on stderr, exit status 1: a start-up failure an operator can act on.
    private static func fail(_ message: String) -> Never {
        let line = Array("authrelayd: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        Glibc.exit(1)
    }

    static func byteCount(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.uppercased().last, let unit = units[last] {
            return Int64(text.dropLast()).map { $0 * unit }
        }
        return Int64(text)
    }
}

// With AUTHRELAY_CHECK_ARGUMENTS=1 the flags are only parsed and validated, then
// the process exits (0, or the usage error's status) without starting anything:
// Tests/IntegrationTests/DocsTests.swift checks every command the docs show this way.
if let check = getenv("AUTHRELAY_CHECK_ARGUMENTS"), String(cString: check) == "1" {
    do {
        _ = try AuthRelayDaemon.parseAsRoot()
        AuthRelayDaemon.exit()
    } catch {
        AuthRelayDaemon.exit(withError: error)
    }
}
AuthRelayDaemon.main()
