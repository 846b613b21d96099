import AuthRelayHarness
import ONCRPC
import SystemSupport

/// The collectors behind the auth path's four conditions: one started for the
/// run (healthy, then SIGSTOPped, then ended for absent), and a slow one
/// (authrelayd's own per-call delay, `--inject-delay`).
final class CollectorSetup {
    private let options: AuthPathBenchmark.Options
    private let program: CollectorProgram
    private let executables: Executables
    private var main: CollectorSupervisor?
    private var slowCollector: CollectorSupervisor?
    private(set) var notes: [String] = []
    private let endpoint: RPCEndpoint

    init(_ options: AuthPathBenchmark.Options, executables: Executables) throws(LatencyError) {
        self.options = options
        self.executables = executables
        program = options.program ?? .standard(in: executables)
        if let existing = options.collector {
            endpoint = existing
            notes.append("collector: the existing one at \(existing)")
        } else {
            let supervisor = try CollectorSupervisor(program: program, executables: executables, transports: [options.transport])
            try supervisor.start()
            main = supervisor
            endpoint = try supervisor.endpoint(options.transport)
            notes.append("collector: \(program.rawValue) started for this run on loopback, no rpcbind")
        }
    }

    /// Why `condition` cannot be run here.
    func skipReason(_ condition: CollectorCondition) -> String {
        switch condition {
        case .stopped, .absent: "it needs a collector this run starts (not --collector)"
        case .slow: "it needs an authrelayd this run starts (--inject-delay); legacy-collector cannot sleep per call"
        case .healthy: ""
        }
    }

    /// Sets up `condition`; the endpoint to use, or nil when it cannot be run.
    func prepare(_ condition: CollectorCondition) throws(LatencyError) -> RPCEndpoint? {
        switch condition {
        case .healthy:
            return endpoint
        case .stopped:
            return main == nil ? nil : endpoint
        case .absent:
            guard let main else { return nil }
            main.stop()
            return endpoint
        case .slow:
            guard main != nil, program.injectsDelay else { return nil }
            var settings = CollectorProgram.Settings()
            settings.delay = options.collectorDelay
            let slow = try CollectorSupervisor(program: program, executables: executables,
                                               transports: [options.transport], settings: settings)
            try slow.start()
            slowCollector = slow
            notes.append("slow: \(program.rawValue) --inject-delay \(options.collectorDelay.shortDescription)")
            return try slow.endpoint(options.transport)
        }
    }

    /// Ends what `prepare(condition)` started.
    func finish(_ condition: CollectorCondition) {
        if condition == .slow {
            slowCollector?.stop()
            slowCollector = nil
        }
    }

    func pauseCollector() { main?.pause() }
    func resumeCollector() { main?.resume() }

    func stop() {
        slowCollector?.stop()
        main?.stop()
    }
}
