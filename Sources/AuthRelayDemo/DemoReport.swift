import AuthRelay
import AuthRelayAgent
import AuthRelayProtocol
import SystemSupport

/// What `authrelay demo` saw, per phase and in total.
package struct DemoReport: Sendable, CustomStringConvertible {
    struct Phase: Sendable {
        var name: String
        var accesses = 0
        var allowed = 0
        var denied = 0
        /// The slowest access as the accessing process saw it (spawn, open or exec, exit), in ns.
        var slowestAccess: UInt64 = 0
        /// Decisions taken in this phase, from the collector's output (the agent's own clock).
        var decisions = 0
        var maxDecision: UInt64 = 0
        /// Longest wait from decision to arrival at the collector, in ns.
        var maxDeliveryDelay: UInt64 = 0
    }

    var source: String
    var collector: String
    var phases: [Phase]
    var agent: Agent.Summary
    var collectorStats: CollectorStats?
    var outputPath: String
    var outputEvents: Int
    var budgetNanoseconds: UInt64
    var notes: [String] = []

    package var description: String {
        var lines = ["AuthRelay demo: \(source); \(collector)", ""]
        lines.append("phase                 accesses  allowed  denied  slowest access   decisions  max decision  max delivery delay")
        for phase in phases {
            lines.append(
                phase.name.padded(20) + String(phase.accesses).leftPadded(10) + String(phase.allowed).leftPadded(9)
                    + String(phase.denied).leftPadded(8) + Self.time(phase.slowestAccess).leftPadded(16)
                    + String(phase.decisions).leftPadded(12) + Self.time(phase.maxDecision).leftPadded(14)
                    + Self.time(phase.maxDeliveryDelay).leftPadded(20))
        }
        lines.append("")
        lines.append("agent: \(agent.decisions) decisions (\(agent.allowed) allowed, \(agent.denied) denied, "
            + "\(agent.forcedByDeadline) forced by the deadline guard); decision latency p50 \(Self.time(agent.latencyP50)), "
            + "p99 \(Self.time(agent.latencyP99)), max \(Self.time(agent.latencyMax))")
        if let sender = agent.sender {
            let stats = sender.stats
            lines.append("sender: submitted \(stats.submitted), delivered \(stats.acknowledged), dropped \(stats.dropped + stats.evicted), "
                + "undelivered \(sender.undelivered), retries \(stats.retries), reconnects \(stats.reconnects)")
        }
        if let collectorStats {
            lines.append("collector: wrote \(collectorStats.written) events, removed \(collectorStats.duplicates) duplicates, "
                + "reported drops \(collectorStats.reportedDropped), gaps \(collectorStats.gapEvents)")
        }
        lines.append("JSON Lines output: \(outputPath) (\(outputEvents) events; kept for you to read, e.g. with jq)")
        if let stopped = phases.first(where: { $0.name == Demo.stoppedPhase }) {
            let unaffected = stopped.maxDecision < budgetNanoseconds
            lines.append("")
            lines.append(unaffected
                ? "the auth path did not wait for the collector: while it was stopped, \(stopped.decisions) decisions took at most \(Self.time(stopped.maxDecision)) (budget \(Self.time(budgetNanoseconds))); their events waited in the queue instead (up to \(Self.time(stopped.maxDeliveryDelay)))"
                : "WARNING: while the collector was stopped a decision took \(Self.time(stopped.maxDecision)), over the \(Self.time(budgetNanoseconds)) budget")
        }
        lines.append(contentsOf: notes.map { "note: \($0)" })
        return lines.joined(separator: "\n")
    }

    static func time(_ nanoseconds: UInt64) -> String {
        if nanoseconds == 0 { return "-" }
        if nanoseconds < 1_000_000 { return "\(nanoseconds / 1000) us" }
        if nanoseconds < 1_000_000_000 { return "\(Double(nanoseconds / 10_000) / 100) ms" }
        return "\(Double(nanoseconds / 10_000_000) / 100) s"
    }
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
    func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
