import AuthRelay
import AuthRelayAgent
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// `authrelay latency authpath --source fanotify --watch DIR`: the same designs
/// and collector conditions as the synthetic run, on real opens. Per scenario a
/// FanotifySource watches DIR and answers through the design's handler, while a
/// child shell opens files in DIR (the source allows its own process without
/// asking the policy, so the opens must come from another process). The latency
/// is the one the agent measures: from the read() of the event to the answer.
extension AuthPathBenchmark {
    static func runFanotify(_ design: AuthDesign, _ condition: CollectorCondition, _ endpoint: RPCEndpoint,
                            _ options: Options, _ setup: CollectorSetup, _ opens: FanotifyOpens,
                            _ progress: Progress) throws(LatencyError) -> ScenarioResult {
        let maker = try decisions(design, condition, endpoint, options)
        let handler = maker.handler
        let limit = switch (design, condition) {
        case (.naive, .stopped): min(options.naiveStoppedOpens, opens.count)
        case (.naive, .slow): min(options.naiveLimit, opens.count)
        default: opens.count
        }
        // Each naive open may wait out its timeout; past this the opening child is killed.
        let naiveBound = design == .naive ? options.naiveTimeout * limit : .zero
        let childBound = options.maxDuration + naiveBound + .seconds(5)

        if condition == .stopped { setup.pauseCollector() }
        let source: FanotifySource
        do {
            source = try FanotifySource(configuration: .init(paths: [opens.directory]))
        } catch {
            if condition == .stopped { setup.resumeCollector() }
            _ = maker.finish(drainTimeout: .zero)
            throw LatencyError("--source fanotify: \(error)")
        }
        let stats = DecisionStats()
        let stop = StopSignal()
        let answering = NamedThread(name: "authrelay-lat-fan") {
            source.run(pipeline: handler, stats: stats, stop: stop)
        }
        progress.update("\(design.rawValue) / \(condition.rawValue): \(limit) opens")
        let started = Timestamps.monotonic()
        let outcome = opens.open(limit, bound: childBound)
        let seconds = Time.seconds(since: started)
        stop.signal()
        answering.join()
        source.close()  // the kernel allows whatever was still pending
        if condition == .stopped { setup.resumeCollector() }
        let drain = condition == .absent ? min(options.drainTimeout, .milliseconds(500)) : options.drainTimeout
        let (delivered, dropped) = maker.finish(drainTimeout: design == .queued ? drain : .zero)

        var latency = LatencyDistribution()
        latency.add(stats.latency)
        var result = ScenarioResult(name: "\(design.rawValue)-\(condition.rawValue)", transport: "", rateUnit: "decisions/s",
                                    latency: latency, seconds: seconds)
        result.authPath = AuthPathOutcome(design: design.rawValue, condition: condition.rawValue, requested: UInt64(opens.count),
                                          overBudget: latency.count(above: UInt64(options.budget.nanoseconds)),
                                          delivered: delivered, dropped: dropped)
        switch outcome {
        case .finished:
            break
        case .killed:
            result.notes.append("the opening child was killed after \(fixed(Time.seconds(childBound), 1)) s")
        case .spawnFailed(let reason):
            throw LatencyError("--source fanotify: cannot start /bin/sh to make the opens: \(reason)")
        }
        if limit < opens.count { result.notes.append("bounded: \(limit) of \(opens.count) opens (naive limit in this condition)") }
        if stats.decisions != UInt64(limit) {
            result.notes.append("\(stats.decisions) decisions for \(limit) opens (another process opened files in the watched directory, or the child was killed)")
        }
        for problem in source.problems.all where problem.total > 0 { result.notes.append("fanotify: \(problem)") }
        return result
    }

    static func fanotifyNotes(_ options: Options, opens: FanotifyOpens, transport: String) -> [String] {
        [
            "source: fanotify on \(opens.directory): \(opens.count) opens per scenario from a child /bin/sh (\(opens.files.count) files, opened in turn, as fast as the child goes); events over \(transport); budget \(options.budget.shortDescription); over_budget counts decisions slower than it",
            "latency: what the agent measures, from the read() of the event to the answer written to the kernel",
            "naive: one version 1 REPORT_EVENT per decision, before the answer, with a \(options.naiveTimeout.shortDescription) timeout; at most \(options.naiveLimit) opens when slow and \(options.naiveStoppedOpens) when stopped",
            "stopped: the collector is SIGSTOPped while the opens are made, then resumed before the queued sender's \(options.drainTimeout.shortDescription) drain; delivered = acknowledged by the collector, dropped = never acknowledged",
        ]
    }
}

/// The files a `--source fanotify` run opens, created in the watched directory
/// for the run (and removed after it), and the child that opens them.
final class FanotifyOpens {
    let directory: String
    let count: Int
    private(set) var files: [String] = []

    enum Outcome {
        case finished
        case killed
        case spawnFailed(String)
    }

    /// Checks that this process may use permission events on `directory`
    /// (root, a kernel with fanotify permission events, a directory it can
    /// mark) and creates the files; throws what to do otherwise.
    init(directory: String, count: Int) throws(LatencyError) {
        var path = directory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        self.directory = path
        self.count = count
        guard count > 0 else { throw LatencyError("--source fanotify: the number of opens must be positive") }
        guard Processes.effectiveUserID == 0 else {
            throw LatencyError("--source fanotify needs root (permission events need CAP_SYS_ADMIN); run it as root or use --source synthetic")
        }
        if let problem = FanotifySource.probe() {
            throw LatencyError("--source fanotify is not available here: \(problem); use --source synthetic")
        }
        guard (try? FileSystem.status(path))??.kind == .directory else {
            throw LatencyError("--watch \(directory): not a directory")
        }
        for index in 0..<8 {
            let file = "\(path)/.authrelay-latency-open-\(Processes.currentID)-\(index)"
            do {
                try FileSystem.writeFile(file, Array("authrelay latency\n".utf8))
            } catch {
                remove()
                throw LatencyError("--watch \(directory): cannot create \(file)", system: error)
            }
            files.append(file)
        }
        // Mark it once now, so a directory fanotify cannot watch fails before any collector starts.
        do {
            try FanotifySource(configuration: .init(paths: [path])).close()
        } catch {
            remove()
            throw LatencyError("--source fanotify: \(error)")
        }
    }

    /// Starts a child /bin/sh that opens `opens` files in turn (`true < FILE`)
    /// and waits for it; kills it (by its pid) if it runs past `bound`.
    func open(_ opens: Int, bound: Duration) -> Outcome {
        let targets = (0..<opens).map { files[$0 % files.count] }
        let child: ChildProcess
        do {
            child = try ChildProcess(discardingOutputOf: "/bin/sh", ["-c", "for f in \"$@\"; do true < \"$f\"; done", "sh"] + targets)
        } catch {
            return .spawnFailed(error.description)
        }
        guard child.wait(timeout: bound) == nil else { return .finished }
        child.kill()
        return .killed
    }

    func remove() {
        for file in files { try? FileSystem.removeFile(file) }
        files = []
    }
}
