import AuthRelayHarness
import ONCRPC
import SystemSupport

/// The naive design over gRPC, beside the ONC RPC one: `grpc-reporter --mode
/// authpath-naive`, requests on the same fixed schedule, each making one
/// synchronous ReportEvent with the naive timeout as its deadline before the
/// next is taken, latency from the scheduled arrival (no coordinated omission).
/// Its collectors: one grpc-collector for healthy, stopped (SIGSTOP as soon as
/// the reporter says "running") and absent (ended, its address kept), and one
/// with `--delay` for slow.
final class GRPCNaiveAuthPath {
    static let design = "grpc-naive"
    private let peers: GRPCPeers
    private let options: AuthPathBenchmark.Options
    private let directory: TemporaryDirectory
    private let main: GRPCCollector
    private var mainStopped = false

    init(_ peers: GRPCPeers, options: AuthPathBenchmark.Options) throws(LatencyError) {
        self.peers = peers
        self.options = options
        directory = try TemporaryDirectory(prefix: "authrelay-latency-grpc")
        main = try GRPCCollector(peers, directory: directory, tag: "grpc-collector")
    }

    deinit { stop() }

    func stop() {
        main.stop()
        mainStopped = true
    }

    func run(_ condition: CollectorCondition) throws(LatencyError) -> ScenarioResult {
        var slow: GRPCCollector?
        defer { slow?.stop() }
        let collector: GRPCCollector
        switch condition {
        case .slow:
            slow = try GRPCCollector(peers, directory: directory, tag: "grpc-collector-slow", delay: options.collectorDelay)
            collector = slow!
        case .absent:
            if !mainStopped { stop() }
            collector = main
        case .healthy, .stopped:
            collector = main
        }
        var arguments = ["--mode", "authpath-naive", "--rate", fixed(options.rate, 3), "-n", "\(limit(condition))",
                         "--timeout", "\(max(1, options.naiveTimeout.roundedUpMilliseconds))",
                         "--max-seconds", fixed(Time.seconds(options.maxDuration), 3)]
        // Nothing listens: no warm-up Ping to make (it would fail), as the ONC RPC naive client makes no first call.
        if condition == .absent { arguments.append("--no-warmup") }
        let reporter = GRPCReporter(peers, directory: directory, target: collector.target(options.transport))
        let bound = options.maxDuration + options.naiveTimeout * 2 + .seconds(60)
        let run: GRPCReporter.Run
        if condition == .stopped {
            defer { main.resume() }
            run = try reporter.run(arguments, limit: bound) { self.main.pause() }
        } else {
            run = try reporter.run(arguments, limit: bound)
        }
        return result(run, condition)
    }

    /// As for the ONC RPC naive design: few requests where each call can outlast the request interval.
    private func limit(_ condition: CollectorCondition) -> Int {
        condition == .slow || condition == .stopped ? min(options.naiveLimit, options.requests) : options.requests
    }

    private func result(_ run: GRPCReporter.Run, _ condition: CollectorCondition) -> ScenarioResult {
        let latency = run.latency ?? LatencyDistribution()
        var result = ScenarioResult(name: "\(Self.design)-\(condition.rawValue)", transport: TransportsBenchmark.label(options.transport),
                                    rateUnit: "decisions/s", latency: latency, seconds: run.summary.seconds)
        // The reporter's own percentiles (the rebuilt histogram is exact only at its .hgrm steps).
        result.summary = run.summary.percentiles
        result.percentilesFrom = "grpc-reporter summary"
        let overBudget = latency.count(above: UInt64(options.budget.nanoseconds))
        result.authPath = AuthPathOutcome(design: Self.design, condition: condition.rawValue, requested: UInt64(options.requests),
                                          overBudget: overBudget, delivered: run.summary.calls, dropped: run.summary.errors)
        if latency.count < UInt64(options.requests) {
            let limit = limit(condition)
            let why = latency.count < UInt64(limit) ? "no new requests after \(fixed(Time.seconds(options.maxDuration), 1)) s" : "naive limit \(limit) in this condition"
            result.notes.append("bounded: \(latency.count) of \(options.requests) requests (\(why))")
        }
        if run.summary.timeouts > 0 { result.notes.append("\(run.summary.timeouts) of \(run.summary.errors) failed calls ran out of the \(options.naiveTimeout.shortDescription) deadline") }
        return result
    }

    static let note = "grpc-naive: grpc-reporter --mode authpath-naive, one synchronous ReportEvent (deadline = the naive timeout) per request on the same schedule; slow: grpc-collector --delay; stopped: SIGSTOP within about 1 ms of the reporter's \"running\" line; absent: its collector ended; over_budget counted from the reporter's .hgrm steps (a value between two steps counts at the upper one)"
}
