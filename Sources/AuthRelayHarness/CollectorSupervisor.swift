import Glibc
import ONCRPC
import SystemSupport

/// Runs one collector for a latency run: starts the program next to `authrelay`
/// on temporary sockets (loopback, no rpcbind), waits until every transport
/// answers an RPC ping, stops and resumes it (SIGSTOP/SIGCONT) and ends it by pid.
/// Its sockets and output live in a temporary directory removed at the end.
package final class CollectorSupervisor {
    package let program: CollectorProgram
    package let transports: [RPCTransport]
    package let settings: CollectorProgram.Settings
    private let executables: Executables
    private let directory: TemporaryDirectory
    private let dataDirectory: TemporaryDirectory
    private var process: ChildProcess?
    private var starts = 0
    /// Where each transport listens, once started; kept after `stop()` (the absent condition uses it).
    package private(set) var endpoints: [RPCTransport: RPCEndpoint] = [:]

    package init(
        program: CollectorProgram, executables: Executables, transports: [RPCTransport],
        settings: CollectorProgram.Settings = .init()
    ) throws(HarnessError) {
        precondition(settings.delay == nil || program.injectsDelay, "\(program.rawValue) cannot inject a delay")
        self.program = program
        self.executables = executables
        self.transports = transports
        self.settings = settings
        directory = try TemporaryDirectory(prefix: "authrelay-latency")
        dataDirectory = try TemporaryDirectory(prefix: "authrelay-latency-data")
    }

    deinit { stop() }

    /// A collector started for a run on `transports` (nil: `existing` are used
    /// instead), the endpoints to measure, and what the report says about them.
    package static func startOrUse(
        _ existing: [RPCEndpoint], program: CollectorProgram?, transports: [RPCTransport], executables: Executables
    ) throws(HarnessError) -> (supervisor: CollectorSupervisor?, endpoints: [RPCEndpoint], note: String) {
        guard existing.isEmpty else {
            return (nil, existing, "collector: the existing one(s) at \(existing.map(\.description).joined(separator: ", "))")
        }
        let program = program ?? .standard(in: executables)
        let supervisor = try CollectorSupervisor(program: program, executables: executables, transports: transports)
        try supervisor.start()
        var endpoints: [RPCEndpoint] = []
        for transport in transports { endpoints.append(try supervisor.endpoint(transport)) }
        return (supervisor, endpoints, "collector: \(program.rawValue) started for this run on loopback, no rpcbind")
    }

    package var pid: pid_t? { process?.pid }
    package var temporaryDirectory: String { directory.path }

    /// Starts the collector and waits (up to `timeout`) until every transport answers.
    package func start(timeout: Duration = .seconds(10)) throws(HarnessError) {
        stop()
        starts += 1
        let socketPath = directory.file("collector-\(starts).sock")
        let arguments = program.arguments(transports: transports, unixSocket: socketPath,
                                          dataDirectory: dataDirectory.path, settings: settings)
        let child = try ChildProcess(executables.path(program.rawValue), arguments,
                                     outputIn: directory, tag: "\(program.rawValue)-\(starts)")
        process = child
        let deadline = SystemClock.deadline(after: timeout)
        do throws(HarnessError) {
            endpoints = try waitForListening(child, deadline: deadline)
            for transport in transports {
                try waitForAnswer(endpoints[transport]!, child, deadline: deadline)
            }
        } catch {
            stop()
            throw error
        }
    }

    /// The collector's address on `transport`, or an error saying it does not serve it.
    package func endpoint(_ transport: RPCTransport) throws(HarnessError) -> RPCEndpoint {
        guard let endpoint = endpoints[transport] else {
            throw HarnessError("transport \(transport) is not available: the \(program.rawValue) started for this run does not listen on it")
        }
        return endpoint
    }

    /// SIGSTOP, and waits until the kernel shows the process stopped.
    package func pause() {
        guard let process, process.isRunning else { return }
        process.signal(SIGSTOP)
        for _ in 0..<500 where Processes.state(process.pid) != "T" {
            SystemClock.sleep(.milliseconds(1))
        }
    }

    package func resume() {
        process?.signal(SIGCONT)
    }

    /// Ends the collector by its pid (SIGCONT, SIGTERM, then SIGKILL).
    package func stop() {
        process?.stop()
        process = nil
    }

    // MARK: Readiness

    private func waitForListening(_ child: ChildProcess, deadline: UInt64) throws(HarnessError) -> [RPCTransport: RPCEndpoint] {
        while true {
            let output = child.output
            let found = CollectorProgram.listeningEndpoints(in: output)
            if transports.allSatisfy({ found[$0] != nil }) { return found }
            if let ended = child.exitStatus {
                throw HarnessError("\(program.rawValue) ended (\(ended)) before listening on \(transportNames)\n\(output)")
            }
            if SystemClock.monotonicNanoseconds() >= deadline {
                let missing = transports.filter { found[$0] == nil }.map(\.rawValue).joined(separator: ", ")
                throw HarnessError("\(program.rawValue) did not report listening on \(missing) in time (transport not available?)\n\(output)")
            }
            SystemClock.sleep(.milliseconds(10))
        }
    }

    private func waitForAnswer(_ endpoint: RPCEndpoint, _ child: ChildProcess, deadline: UInt64) throws(HarnessError) {
        let client = RPCClient(endpoint: endpoint, program: settings.program, version: 1,
                               timeout: .milliseconds(500), connectTimeout: .milliseconds(500))
        while true {
            do {
                try client.ping()
                return
            } catch {
                if child.exitStatus != nil || SystemClock.monotonicNanoseconds() >= deadline {
                    throw HarnessError("\(program.rawValue) does not answer on \(endpoint): \(error)\n\(child.stderr)")
                }
            }
            SystemClock.sleep(.milliseconds(20))
        }
    }

    private var transportNames: String { transports.map(\.rawValue).joined(separator: ", ") }
}
