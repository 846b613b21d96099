import AuthRelay
import Histogram

/// Counts and decision latencies, for the summary at exit.
///
/// Written only by the answering thread, with no lock and no allocation; read
/// only after that thread has been joined (the join orders the writes before
/// the reads), which is why it is `@unchecked Sendable`.
public final class DecisionStats: @unchecked Sendable {
    public private(set) var decisions: UInt64 = 0
    public private(set) var allowed: UInt64 = 0
    public private(set) var denied: UInt64 = 0
    public private(set) var forcedByDeadline: UInt64 = 0
    /// The agent's own opens, answered allow before any policy.
    public private(set) var ownProcessAllowed: UInt64 = 0
    /// Decision latency in ns, HdrHistogram with 3 significant digits up to one hour:
    /// counters allocated once, so recording on the answering thread never allocates.
    public private(set) var latency = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)

    public init() {}

    func record(_ outcome: AuthPipeline.Outcome) {
        decisions += 1
        if outcome.verdict == .allow { allowed += 1 } else { denied += 1 }
        if outcome.forcedByDeadline { forcedByDeadline += 1 }
        latency.record(min(outcome.decisionNanoseconds, 3_600_000_000_000))
    }

    func recordOwnProcess() {
        ownProcessAllowed += 1
    }
}
