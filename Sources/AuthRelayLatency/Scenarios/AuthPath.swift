import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// The collector conditions the auth path is measured under.
package enum CollectorCondition: String, Sendable, CaseIterable {
    case healthy
    /// Every call sleeps `--collector-delay` in (or in front of) the collector.
    case slow
    /// The collector is SIGSTOPped while the requests arrive: connections open, no answers.
    case stopped
    /// Nothing listens at the collector's address.
    case absent
}

/// `authrelay latency authpath`: the decision latency of paced synthetic auth
/// requests for three designs (no telemetry, AuthRelay's queued sender, a naive
/// synchronous clnt_call inside the decision) under four collector conditions.
package enum AuthPathBenchmark {
    package struct Options: Sendable {
        package var requests = 10_000
        /// Requests per second, paced on a fixed schedule.
        package var rate = 2_000.0
        package var budget: Duration = .milliseconds(100)
        package var collectorDelay: Duration = .milliseconds(20)
        /// The naive design's per-call timeout (libtirpc's 25 s default would stall a run).
        package var naiveTimeout: Duration = .seconds(1)
        /// At most this many naive requests where each call can outlast the request interval (slow, stopped).
        package var naiveLimit = 200
        /// No scenario issues new requests after this long.
        package var maxDuration: Duration = .seconds(30)
        /// How long the queued sender may drain at the end of a scenario.
        package var drainTimeout: Duration = .seconds(10)
        package var transport: RPCTransport = .local
        package var conditions = CollectorCondition.allCases
        var designs = AuthDesign.allCases
        /// An existing collector instead of starting one (stopped and absent are then skipped).
        package var collector: RPCEndpoint?
        /// The collector to start; nil: `CollectorProgram.standard(in:)`.
        package var program: CollectorProgram?
        /// `--source fanotify --watch DIR`: real opens of files in this directory
        /// instead of synthetic requests (see AuthPathFanotify.swift); nil: synthetic.
        package var watch: String?
        /// With `watch`: opens per scenario, at most.
        package var opens = 200
        /// With `watch`: naive opens in the stopped condition, each waiting out its timeout.
        package var naiveStoppedOpens = 5
        /// Where grpc-collector and grpc-reporter are; nil: no gRPC rows (--no-grpc).
        package var grpc: GRPCPeers.Lookup?
        package var quick = false

        package init() {}

        package static var quick: Options {
            var options = Options()
            options.requests = 400
            options.naiveLimit = 24
            options.maxDuration = .milliseconds(2500)
            options.drainTimeout = .seconds(3)
            options.opens = 100
            options.naiveStoppedOpens = 3
            options.quick = true
            return options
        }
    }

    package static func run(_ options: Options, executables: Executables, progress: Progress) throws(LatencyError) -> LatencyReport {
        var report = LatencyReport(subcommand: "authpath", quick: options.quick)
        report.budgetMicroseconds = Double(options.budget.nanoseconds) / 1000
        let opens = try options.watch.map { directory throws(LatencyError) in try FanotifyOpens(directory: directory, count: options.opens) }
        defer { opens?.remove() }
        let setup = try CollectorSetup(options, executables: executables)
        defer { setup.stop() }
        let label = TransportsBenchmark.label(options.transport)

        let grpc = try grpcNaive(options, &report)
        defer { grpc?.stop() }

        for condition in options.conditions {
            if let endpoint = try setup.prepare(condition) {
                for design in options.designs {
                    progress.update("\(design.rawValue) / \(condition.rawValue)")
                    var result = if let opens {
                        try runFanotify(design, condition, endpoint, options, setup, opens, progress)
                    } else {
                        try runOne(design, condition, endpoint, options, setup, progress)
                    }
                    result.transport = design == .noTelemetry ? "none" : label
                    report.results.append(result)
                }
                setup.finish(condition)
            } else {
                report.notes.append("\(condition.rawValue): skipped, \(setup.skipReason(condition))")
            }
            if let grpc {
                progress.update("\(GRPCNaiveAuthPath.design) / \(condition.rawValue)")
                report.results.append(try grpc.run(condition))
            }
        }
        report.notes = setup.notes + report.notes
        if let opens {
            report.notes += fanotifyNotes(options, opens: opens, transport: label)
            return report
        }
        report.notes.append("\(options.requests) requests per scenario at \(fixed(options.rate, 0))/s over \(label); budget \(options.budget.shortDescription); over_budget counts decisions slower than it")
        report.notes.append("naive: one version 1 REPORT_EVENT per decision with a \(options.naiveTimeout.shortDescription) timeout; in slow and stopped at most \(options.naiveLimit) requests, and no scenario starts requests after \(fixed(Time.seconds(options.maxDuration), 1)) s")
        report.notes.append("stopped: the collector is SIGSTOPped while the requests arrive, then resumed before the queued sender's \(options.drainTimeout.shortDescription) drain; delivered = acknowledged by the collector, dropped = never acknowledged")
        return report
    }

    /// The naive gRPC design, when the peers are built and the run can use it
    /// (synthetic requests over tcp or unix); otherwise a note says why not.
    private static func grpcNaive(_ options: Options, _ report: inout LatencyReport) throws(LatencyError) -> GRPCNaiveAuthPath? {
        guard let lookup = options.grpc else { return nil }
        guard let peers = lookup.peers else {
            report.notes.append(lookup.missingNote)
            return nil
        }
        if options.watch != nil {
            report.notes.append("grpc-naive: not run with --source fanotify (grpc-reporter makes its own synthetic requests)")
            return nil
        }
        if options.transport == .udp {
            report.notes.append("grpc-naive: not run over udp (gRPC runs over tcp or unix)")
            return nil
        }
        report.notes.append(GRPCNaiveAuthPath.note)
        return try GRPCNaiveAuthPath(peers, options: options)
    }

    private static func runOne(_ design: AuthDesign, _ condition: CollectorCondition, _ endpoint: RPCEndpoint,
                               _ options: Options, _ setup: CollectorSetup, _ progress: Progress) throws(LatencyError) -> ScenarioResult {
        let maker = try decisions(design, condition, endpoint, options)
        let limit = design == .naive && (condition == .slow || condition == .stopped) ? min(options.naiveLimit, options.requests) : options.requests

        if condition == .stopped { setup.pauseCollector() }
        let budgetNanoseconds = UInt64(options.budget.nanoseconds)
        let boundNanoseconds = UInt64(max(0, options.maxDuration.nanoseconds))
        let requests = SyntheticRequests()
        var latency = LatencyDistribution()
        var overBudget: UInt64 = 0
        let arrivals = PacedArrivals(rate: options.rate)
        for index in 0..<limit {
            if Timestamps.monotonic() > arrivals.start + boundNanoseconds { break }
            progress.update("\(design.rawValue) / \(condition.rawValue): request \(index + 1) of \(limit)")
            let arrival = arrivals.wait(for: index)
            let decision = maker.handle(requests.request(index, arrival: arrival))
            latency.record(nanoseconds: decision)
            if decision > budgetNanoseconds { overBudget += 1 }
        }
        let seconds = Double(Timestamps.monotonic() - min(arrivals.start, Timestamps.monotonic())) / 1e9
        if condition == .stopped { setup.resumeCollector() }
        let drain = condition == .absent ? min(options.drainTimeout, .milliseconds(500)) : options.drainTimeout
        let (delivered, dropped) = maker.finish(drainTimeout: design == .queued ? drain : .zero)

        var result = ScenarioResult(name: "\(design.rawValue)-\(condition.rawValue)", transport: "", rateUnit: "decisions/s",
                                    latency: latency, seconds: seconds)
        result.authPath = AuthPathOutcome(design: design.rawValue, condition: condition.rawValue, requested: UInt64(options.requests),
                                          overBudget: overBudget, delivered: delivered, dropped: dropped)
        if latency.count < UInt64(options.requests) {
            let why = latency.count < UInt64(limit) ? "no new requests after \(fixed(Time.seconds(options.maxDuration), 1)) s" : "naive limit \(limit) in this condition"
            result.notes.append("bounded: \(latency.count) of \(options.requests) requests (\(why))")
        }
        return result
    }

    /// The design, warmed up (connected to the collector, as a running agent is) unless the collector is absent.
    static func decisions(_ design: AuthDesign, _ condition: CollectorCondition, _ endpoint: RPCEndpoint,
                          _ options: Options) throws(LatencyError) -> DecisionMaker {
        let maker: DecisionMaker
        switch design {
        case .noTelemetry:
            maker = PipelineDecisions(policy: SyntheticRequests.policy, budget: options.budget, sender: nil)
        case .queued:
            let sender = SenderBenchmark.makeSender(endpoint: endpoint, agentID: "authrelay-latency") { _ in }
            let pipeline = PipelineDecisions(policy: SyntheticRequests.policy, budget: options.budget, sender: sender)
            if condition != .absent { try pipeline.warmUp(endpoint: endpoint) }
            maker = pipeline
        case .naive:
            let naive = NaiveDecisions(policy: SyntheticRequests.policy, endpoint: endpoint, timeout: options.naiveTimeout)
            if condition != .absent && !naive.warmUp() {
                throw LatencyError("the naive client could not report a first event to \(endpoint) (\(condition.rawValue) collector)")
            }
            maker = naive
        }
        return maker
    }
}

/// The synthetic requests: a few dozen realistic opens, reused so nothing is
/// built between a request's arrival and its decision.
struct SyntheticRequests {
    static let policy = Policy(rules: [
        .path(prefix: "/srv/data/secret", verdict: .deny),
        .path(prefix: "/srv/data", verdict: .allow),
        .executable(prefix: "/usr/bin/nc", verdict: .deny),
        .executable(prefix: "/usr/sbin/backup", verdict: .allow),
    ], defaultVerdict: .allow)

    private let templates: [AuthRequest] = (0..<64).map(template)

    private static func template(_ index: Int) -> AuthRequest {
        let executable = index % 9 == 0 ? "/usr/sbin/backup" : "/usr/bin/cat"
        let target = index % 8 == 0 ? "/srv/data/secret/key-\(index)" : "/srv/data/reports/file-\(index).csv"
        let kind: Event.Kind = index % 5 == 0 ? .exec : .open
        return AuthRequest(kind: kind, pid: Int32(2000 + index % 17), ppid: 1, uid: 1000, gid: 1000,
                           executablePath: executable, targetPath: target, arrivalNanoseconds: 0)
    }

    func request(_ index: Int, arrival: UInt64) -> AuthRequest {
        var request = templates[index % templates.count]
        request.arrivalNanoseconds = arrival
        return request
    }
}
