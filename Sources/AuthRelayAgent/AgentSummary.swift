import AuthRelay
import SystemSupport

extension Agent {
    /// What an agent run did, for the summary printed at exit.
    public struct Summary: Sendable, CustomStringConvertible {
        public var source: String
        public var decisions: UInt64
        public var allowed: UInt64
        public var denied: UInt64
        public var forcedByDeadline: UInt64
        public var ownProcessAllowed: UInt64
        public var latencyP50: UInt64
        public var latencyP99: UInt64
        public var latencyMax: UInt64
        /// "name: count (last: error)" for each kind of source failure seen,
        /// then what the sender could not deliver (`ShutdownReport.problems`).
        public var problems: [String]
        /// The source ended on an error rather than a stop (the agent should exit non-zero).
        public var sourceFailed: Bool
        /// nil when the agent ran without a sender.
        public var sender: ShutdownReport?

        init(source: String, stats: DecisionStats, problems: SourceProblems, sender: ShutdownReport?) {
            self.source = source
            decisions = stats.decisions
            allowed = stats.allowed
            denied = stats.denied
            forcedByDeadline = stats.forcedByDeadline
            ownProcessAllowed = stats.ownProcessAllowed
            latencyP50 = stats.latency.valueAtPercentile(50)
            latencyP99 = stats.latency.valueAtPercentile(99)
            latencyMax = stats.latency.maxRecorded
            self.problems = problems.all.filter { $0.total > 0 }.map(\.description) + (sender?.problems ?? [])
            sourceFailed = problems.sourceStopped.total > 0
            self.sender = sender
        }

        public var description: String {
            var lines = [
                "decisions \(decisions): allowed \(allowed), denied \(denied), forced by deadline \(forcedByDeadline), own process allowed \(ownProcessAllowed)",
                "decision latency: p50 \(Self.microseconds(latencyP50)), p99 \(Self.microseconds(latencyP99)), max \(Self.microseconds(latencyMax))",
            ]
            if let sender {
                let stats = sender.stats
                let failovers = stats.failovers > 0 ? ", collector changes \(stats.failovers)" : ""
                lines.append("events submitted \(stats.submitted), acknowledged \(stats.acknowledged), dropped \(stats.dropped + stats.evicted), rejected \(stats.rejected), undelivered \(sender.undelivered), collector \(stats.collectorVersion.map { "\($0)" } ?? "never reached")\(failovers)")
                if let spool = sender.spoolSummary { lines.append(spool) }
            } else {
                lines.append("events: no collector")
            }
            lines.append(problems.isEmpty ? "problems: none" : "problems: " + problems.joined(separator: "; "))
            return lines.joined(separator: "\n")
        }

        private static func microseconds(_ nanoseconds: UInt64) -> String {
            let value = Double(nanoseconds) / 1000
            return value < 10 ? "\((value * 100).rounded() / 100) us" : "\((value * 10).rounded() / 10) us"
        }
    }
}
