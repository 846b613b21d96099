import AuthRelayHarness
import ONCRPC

/// The collector behind `authrelay latency sender`: one started for the run
/// (unix and tcp), SIGSTOPped for the stopped condition, ended for the absent
/// one and started again after it; or an existing one (healthy only).
final class SenderCollector {
    private let supervisor: CollectorSupervisor?
    private let existing: [RPCEndpoint]
    /// What the report says about the collector.
    let note: String

    init(_ options: SenderBenchmark.Options, executables: Executables) throws(LatencyError) {
        if options.collectors.isEmpty {
            let program = options.program ?? .standard(in: executables)
            var transports = options.transports
            if !transports.contains(.local) { transports.append(.local) }  // the submit cost runs over unix
            let supervisor = try CollectorSupervisor(program: program, executables: executables, transports: transports)
            try supervisor.start()
            self.supervisor = supervisor
            existing = []
            note = "collector: \(program.rawValue)\(program == .authrelayd ? " --sink null" : "") started for this run on loopback, no rpcbind"
        } else {
            supervisor = nil
            existing = options.collectors
            note = "collector: the existing one(s) at \(options.collectors.map(\.description).joined(separator: ", "))"
        }
    }

    /// The collector's address on `transport` now (a restart moves it).
    func endpoint(_ transport: RPCTransport) throws(LatencyError) -> RPCEndpoint {
        if let supervisor { return try supervisor.endpoint(transport) }
        guard let endpoint = existing.first(where: { $0.transport == transport }) else {
            throw LatencyError("no --collector on \(transport.rawValue)")
        }
        return endpoint
    }

    /// Where the submit cost's senders send: unix, or the first existing collector.
    func submitEndpoint() throws(LatencyError) -> RPCEndpoint {
        if let supervisor { return try supervisor.endpoint(.local) }
        return existing[0]
    }

    /// The transports end-to-end runs over.
    func transports(_ wanted: [RPCTransport]) -> [RPCTransport] {
        supervisor == nil ? existing.map(\.transport) : wanted
    }

    /// Stopped and absent need a collector this run controls.
    func canRun(_ condition: CollectorCondition) -> Bool {
        condition == .healthy || supervisor != nil
    }

    /// Before the sender is created: absent ends the collector (its address stays).
    func beforeSender(_ condition: CollectorCondition) {
        if condition == .absent { supervisor?.stop() }
    }

    /// After the sender is connected, before the producers: stopped SIGSTOPs it.
    func beforeProducers(_ condition: CollectorCondition) {
        if condition == .stopped { supervisor?.pause() }
    }

    /// After the producers, before the drain: stopped resumes it.
    func afterProducers(_ condition: CollectorCondition) {
        if condition == .stopped { supervisor?.resume() }
    }

    /// After the sender is closed: absent starts the collector again.
    func afterSender(_ condition: CollectorCondition) throws(LatencyError) {
        if condition == .absent { try supervisor?.start() }
    }

    func stop() {
        supervisor?.stop()
    }
}
