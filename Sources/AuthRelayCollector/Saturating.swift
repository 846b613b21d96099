extension UInt64 {
    /// Adds, stopping at `UInt64.max`. Every counter the collector feeds with a
    /// value from the wire (a header's `dropped`, a gap, a loss range's count)
    /// adds this way: a plain `+=` traps on overflow, and two calls from any
    /// client that reaches a listener were enough to stop the daemon (issue 11).
    mutating func addSaturating(_ value: UInt64) {
        let (sum, overflow) = addingReportingOverflow(value)
        self = overflow ? .max : sum
    }
}
