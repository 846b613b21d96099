import AuthRelay

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
    public private(set) var latency = LatencyHistogram()

    public init() {}

    func record(_ outcome: AuthPipeline.Outcome) {
        decisions += 1
        if outcome.verdict == .allow { allowed += 1 } else { denied += 1 }
        if outcome.forcedByDeadline { forcedByDeadline += 1 }
        latency.record(outcome.decisionNanoseconds)
    }

    func recordOwnProcess() {
        ownProcessAllowed += 1
    }
}

/// A fixed-bucket latency histogram: values under 32 ns exactly, above that 16
/// buckets per power of two (at most 6.25% wide). 976 counters allocated once;
/// recording is a shift and an increment.
public struct LatencyHistogram: Sendable {
    private static let exactBelow: UInt64 = 32
    private static let subBuckets = 16
    private var counts = [UInt64](repeating: 0, count: 32 + (64 - 5) * 16)
    public private(set) var count: UInt64 = 0
    public private(set) var maximum: UInt64 = 0

    public init() {}

    public mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucket(of: nanoseconds)] += 1
        count += 1
        if nanoseconds > maximum { maximum = nanoseconds }
    }

    /// The value at `quantile` (0...1): the upper edge of its bucket, never above the maximum.
    public func value(atQuantile quantile: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((Double(count) * min(max(quantile, 0), 1)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank { return min(Self.upperEdge(of: index), maximum) }
        }
        return maximum
    }

    static func bucket(of value: UInt64) -> Int {
        if value < exactBelow { return Int(value) }
        let exponent = UInt64.bitWidth - 1 - value.leadingZeroBitCount  // >= 5
        let sub = Int((value >> UInt64(exponent - 4)) & 15)
        return Int(exactBelow) + (exponent - 5) * subBuckets + sub
    }

    static func upperEdge(of index: Int) -> UInt64 {
        if index < Int(exactBelow) { return UInt64(index) }
        let exponent = (index - Int(exactBelow)) / subBuckets + 5
        let sub = UInt64((index - Int(exactBelow)) % subBuckets)
        let width = UInt64(1) << UInt64(exponent - 4)
        let lower = (16 + sub) * width
        return lower &+ (width - 1)
    }
}
