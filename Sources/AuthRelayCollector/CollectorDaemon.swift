import Glibc
import Logging
import ONCRPC
import SystemSupport

/// authrelayd's wiring: the collector behind an RPC server, run until SIGTERM
/// or SIGINT. The executable parses flags into a `Configuration` and makes
/// the process-wide settings (logging, SIGPIPE); this does the rest.
public final class CollectorDaemon {
    public struct Configuration: Sendable {
        public var collector: CollectorConfiguration
        /// The listeners and limits. `maxRecordSize` starts as the largest call
        /// a valid reporter can send (`CollectorService.maxRecordSize`).
        public var server: RPCServer.Configuration

        public init(collector: CollectorConfiguration, server: RPCServer.Configuration) {
            self.collector = collector
            self.server = server
            self.server.maxRecordSize = CollectorService.maxRecordSize
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let collector: CollectorService
    private let server: RPCServer

    /// Raises the open file limit, opens the collector (data directory, sink,
    /// recovery), binds the listeners and registers with rpcbind. Nothing is
    /// served before `run()`.
    public init(configuration: Configuration, logger: Logger) throws(CollectorStartError) {
        self.configuration = configuration
        self.logger = logger
        Self.raiseOpenFileLimit(logger)
        collector = try CollectorService(configuration: configuration.collector, logger: logger)
        do {
            server = try RPCServer(configuration: configuration.server, programs: collector.programs, logger: logger)
        } catch {
            throw .server(error)
        }
        collector.serverCounters = { [unowned server] in
            let statistics = server.statistics
            var counters = CollectorService.ServerCounters()
            counters.connections = server.openConnections
            counters.undecodableArguments = statistics.undecodableArguments
            counters.unservedCalls = statistics.unservedCalls
            counters.evictedConnections = statistics.evictedConnections
            return counters
        }
    }

    /// Serves until SIGTERM or SIGINT; then the server stops (rpcbind
    /// unregistered, requests already received answered), the collector
    /// writes its last checkpoint, and the final statistics are logged.
    public func run() {
        let services = ServiceGroup(services: [ServerService(server: server, collector: collector)],
                                    stopSignals: [SIGTERM, SIGINT], logger: logger)
        logger.info("ready", metadata: [
            "program": "\(configuration.collector.program)", "sink": "\(configuration.collector.sink)",
            "rpcbind": "\(configuration.server.registerWithRPCBind)",
        ])
        collector.start()
        services.run()
        collector.close()
        logger.info("stopped", metadata: ["statistics": "\(collector.statisticsSummary)"])
    }

    /// Each connection takes a descriptor: use the hard limit (systemd's LimitNOFILE).
    /// Done before libtirpc's first use, which caches the table size, and
    /// before the server sizes its connection table from the limit.
    private static func raiseOpenFileLimit(_ logger: Logger) {
        do {
            try OpenFileLimit.raiseToMaximum()
        } catch {
            logger.debug("cannot raise the open file limit: \(error)")
        }
    }
}

/// The RPC server as a `Service`: its loop, with the collector's tick, on the group's thread.
private final class ServerService: Service, @unchecked Sendable {
    // @unchecked: the server and the collector are used by `run()` on the
    // group's one thread, and by the daemon only before and after it;
    // `requestStop()` uses only the stop handle, which any thread may use.
    let name = "collector"
    private let server: RPCServer
    private let collector: CollectorService
    private let stopHandle: RPCServer.StopHandle

    init(server: RPCServer, collector: CollectorService) {
        self.server = server
        self.collector = collector
        stopHandle = server.stopHandle
    }

    func run() {
        server.run(onTick: collector.tick)
    }

    func requestStop() {
        stopHandle.requestStop()
    }
}
