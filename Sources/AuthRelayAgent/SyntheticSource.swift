import AuthRelay
import AuthRelayProtocol
import SystemSupport

/// Generated requests at a steady rate, through the same pipeline and sender
/// as fanotify: for machines without fanotify and for benchmarks.
///
/// Targets cycle through `fileCount` paths under `allowedPrefix`; a share
/// `denyRatio` of them go under `deniedPrefix` instead, which the agent's
/// policy denies (see `policyRules`). The shares are exact (an accumulator, not
/// a random draw), so a run's counts can be checked.
public final class SyntheticSource: AuthSource {
    public struct Configuration: Sendable {
        /// Requests per second.
        public var rate: Double = 1000
        /// How long to run; nil: until stopped.
        public var duration: Duration? = .seconds(10)
        /// Share of requests for a denied path, 0...1.
        public var denyRatio: Double = 0.1
        /// Share of requests that are exec rather than open, 0...1.
        public var execRatio: Double = 0.125
        public var allowedPrefix = "/synthetic/allowed"
        public var deniedPrefix = "/synthetic/denied"
        /// Distinct file names per prefix.
        public var fileCount = 1000
        /// Executables the requests come from, in turn.
        public var executables = ["/usr/bin/cat", "/usr/bin/python3", "/usr/sbin/backup", "/usr/local/bin/tool"]

        public init() {}
    }

    public let name = "synthetic"
    public let configuration: Configuration
    public let problems = SourceProblems()

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The rule that makes `deniedPrefix` denied; add it to the agent's policy.
    public var policyRules: [Policy.Rule] {
        [.path(prefix: configuration.deniedPrefix, verdict: .deny)]
    }

    public func run(pipeline: any AuthRequestHandler, stats: DecisionStats, stop: StopSignal) {
        let rate = max(configuration.rate, 0.001)
        let start = Timestamps.monotonic()
        let end = configuration.duration.map { start + UInt64(max(0, $0.nanoseconds)) }
        let parent = Processes.currentID
        let executables = configuration.executables.isEmpty ? ["/usr/bin/synthetic"] : configuration.executables
        // Target paths built once, not a string per request on the answering thread.
        let fileCount = max(configuration.fileCount, 1)
        let allowedTargets = (0..<fileCount).map { "\(configuration.allowedPrefix)/file-\($0)" }
        let deniedTargets = (0..<fileCount).map { "\(configuration.deniedPrefix)/file-\($0)" }
        var made: UInt64 = 0
        var denyShare = 0.0
        var execShare = 0.0
        while !stop.isSignalled {
            let now = Timestamps.monotonic()
            if let end, now >= end { break }
            // Everything due by now: a steady average rate whatever the tick.
            let due = UInt64(Double(now - start) * rate / 1e9) + 1
            let tickLimit = made + 10_000  // a source that falls behind still sees stop
            while made < due && made < tickLimit {
                denyShare += configuration.denyRatio
                execShare += configuration.execRatio
                let denied = denyShare >= 1
                if denied { denyShare -= 1 }
                let exec = execShare >= 1
                if exec { execShare -= 1 }
                let index = Int(made % UInt64(fileCount))
                let request = AuthRequest(
                    kind: exec ? .exec : .open, pid: 100_000 + Int32(index % 64), ppid: parent, uid: 1000, gid: 1000,
                    executablePath: executables[index % executables.count],
                    targetPath: denied ? deniedTargets[index] : allowedTargets[index])
                stats.record(pipeline.handle(request) { _ in })  // nothing to answer
                made += 1
            }
            stop.wait(timeout: .milliseconds(1))
        }
        stop.signal()  // ran out (or was stopped): the agent shuts down
    }

    public func close() {}
}
