import AuthRelayHarness
import Glibc  // SIGSTOP, SIGCONT
import ONCRPC
import SystemSupport

/// grpc-collector started for a run (Benchmarks/GRPCPeers/README.md): tcp on
/// 127.0.0.1 with a port the kernel picks, and a unix socket in the run's
/// directory; stopped, resumed and ended by its pid.
final class GRPCCollector {
    private let child: ChildProcess
    let tcpTarget: String
    let unixTarget: String

    init(_ peers: GRPCPeers, directory: TemporaryDirectory, tag: String, delay: Duration? = nil) throws(LatencyError) {
        let socket = directory.file("\(tag).sock")
        var arguments = ["--unix", socket]
        if let delay { arguments += ["--delay", delay.shortDescription] }
        child = try ChildProcess(peers.collector, arguments, outputIn: directory, tag: tag)
        let output = try child.waitFor("\(GRPCPeers.collectorName): ready")
        let tcp = output.split(separator: "\n").first { $0.hasPrefix("\(GRPCPeers.collectorName): listening tcp ") }
        guard let address = tcp?.split(separator: " ").last else {
            child.stop()
            throw LatencyError("\(GRPCPeers.collectorName) did not say where it listens on tcp\n\(child.describeOutput())")
        }
        tcpTarget = "tcp://\(address)"
        unixTarget = "unix://\(socket)"
    }

    deinit { child.stop() }

    /// The reporter's --target for `transport` (tcp or unix).
    func target(_ transport: RPCTransport) -> String {
        transport == .local ? unixTarget : tcpTarget
    }

    func pause() { child.signal(SIGSTOP) }
    func resume() { child.signal(SIGCONT) }

    /// Ends it (SIGCONT, SIGTERM) and reads its own count of events, printed at exit.
    @discardableResult
    func stop() -> UInt64? {
        child.stop()
        let fields = ReporterSummary.fields(child.stderr, program: GRPCPeers.collectorName)
        return fields["events"].flatMap(UInt64.init)
    }
}

/// grpc-reporter, one process per round as legacy-reporter is: it connects
/// (one unrecorded Ping), prints "running", times every call in its own
/// HdrHistogram and prints legacy-reporter's summary line; --hgrm writes that
/// histogram too, from which the row's .hgrm and .svg are rebuilt.
final class GRPCReporter {
    let peers: GRPCPeers
    let directory: TemporaryDirectory
    let target: String
    private var runs = 0

    static let percentileSource = "grpc-reporter summaries"
    static let percentileNote = "table: medians over rounds of the reporter's own summaries (as for the C client); .hgrm and .svg: rebuilt from the reporter's .hgrm files, all rounds merged"

    init(_ peers: GRPCPeers, directory: TemporaryDirectory, target: String) {
        self.peers = peers
        self.directory = directory
        self.target = target
    }

    /// What one run printed and measured.
    struct Run {
        var summary: ReporterSummary
        /// Rebuilt from the run's .hgrm (nil when it recorded nothing).
        var latency: LatencyDistribution?
        var ended: Processes.Termination

        /// The round for the interleaver: the summary's percentiles for the table, the .hgrm for the files.
        var outcome: RoundOutcome {
            var outcome = summary.outcome
            outcome.latency = latency ?? LatencyDistribution()
            return outcome
        }
    }

    /// Runs `grpc-reporter --target T <arguments> --hgrm F` to its end, within
    /// `limit`; `whenRunning`, if given, is called as soon as it prints "running"
    /// (the authpath's SIGSTOP).
    func run(_ arguments: [String], limit: Duration = .seconds(300), whenRunning: (() -> Void)? = nil) throws(LatencyError) -> Run {
        runs += 1
        let hgrm = directory.file("grpc-reporter-\(runs).hgrm")
        let all = ["--target", target] + arguments + ["--hgrm", hgrm]
        let child = try ChildProcess(peers.reporter, all, outputIn: directory, tag: "grpc-reporter-\(runs)")
        if let whenRunning {
            try child.waitFor("\(GRPCPeers.reporterName): running", timeout: .seconds(30), every: .microseconds(200))
            whenRunning()
        }
        guard let ended = child.wait(timeout: limit) else {
            child.stop()
            throw LatencyError("\(GRPCPeers.reporterName) \(all.joined(separator: " ")) did not finish within \(limit)\n\(child.describeOutput())")
        }
        guard let summary = ReporterSummary(child.stdout, program: GRPCPeers.reporterName) else {
            throw LatencyError("\(GRPCPeers.reporterName) \(all.joined(separator: " ")) printed no summary (\(ended))\n\(child.describeOutput())")
        }
        let latency = FileSystem.readText(hgrm).flatMap { LatencyDistribution(hgrm: $0) }
        try? FileSystem.removeFile(hgrm)
        return Run(summary: summary, latency: latency, ended: ended)
    }

    /// One round of unary calls (`batch` nil) or of stream batches, every call acknowledged.
    func round(events: Int, batch: Int? = nil) throws(LatencyError) -> RoundOutcome {
        var arguments = ["-n", "\(events)", "--timeout", "5000"]
        arguments += batch.map { ["--mode", "stream", "--batch", "\($0)"] } ?? ["--mode", "unary"]
        let run = try run(arguments)
        guard run.ended == .exited(0), run.summary.errors == 0, run.summary.events == UInt64(events) else {
            throw LatencyError("\(GRPCPeers.reporterName) to \(target): \(run.summary.events) of \(events) events acknowledged, \(run.summary.errors) failed calls (\(run.ended))")
        }
        return run.outcome
    }
}
