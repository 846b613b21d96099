/// The one summary line legacy-reporter -L and grpc-reporter print at the end:
///
///     NAME: calls=C events=E seconds=S calls_per_s=X events_per_s=Y p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. [timeouts=T] errors=K
///
/// (grpc-reporter adds timeouts=, the subset of errors that ran out of their deadline).
struct ReporterSummary {
    var calls: UInt64
    var events: UInt64
    var seconds: Double
    var percentiles: PercentileSummary
    var errors: UInt64
    var timeouts: UInt64

    /// The last line of `output` that starts with "`program`:", or nil when there is none or a field is missing.
    init?(_ output: String, program: String) {
        let fields = Self.fields(output, program: program)
        guard let calls = fields["calls"].flatMap(UInt64.init), let events = fields["events"].flatMap(UInt64.init),
              let seconds = fields["seconds"].flatMap(Double.init),
              let p50 = fields["p50_us"].flatMap(Double.init), let p90 = fields["p90_us"].flatMap(Double.init),
              let p99 = fields["p99_us"].flatMap(Double.init), let p999 = fields["p999_us"].flatMap(Double.init),
              let max = fields["max_us"].flatMap(Double.init)
        else { return nil }
        self.calls = calls
        self.events = events
        self.seconds = seconds
        percentiles = PercentileSummary(p50: p50, p90: p90, p99: p99, p999: p999, max: max)
        errors = fields["errors"].flatMap(UInt64.init) ?? 0
        timeouts = fields["timeouts"].flatMap(UInt64.init) ?? 0
    }

    /// "NAME: calls=C events=E ..." as a dictionary.
    static func fields(_ output: String, program: String) -> [String: String] {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("\(program):") }) else { return [:] }
        var fields: [String: String] = [:]
        for word in line.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// What one round of the reporter did, for the interleaver.
    var outcome: RoundOutcome {
        RoundOutcome(latency: nil, summary: percentiles, calls: calls, events: events, seconds: seconds)
    }
}
