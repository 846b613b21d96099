/// `--hgrm DIR`: one HdrHistogram percentile-distribution file per scenario
/// (values in microseconds), the format HdrHistogram's plotters read.
enum HgrmWriter {
    /// The file name for a scenario: "<subcommand>-<scenario>.hgrm".
    static func fileName(_ report: LatencyReport, _ result: ScenarioResult) -> String {
        "\(report.subcommand)-\(result.name).hgrm"
    }

    /// The file's text, or nil for a scenario with no samples (the C client reports a summary only).
    static func render(_ result: ScenarioResult) -> String? {
        guard let latency = result.latency, latency.count > 0 else { return nil }
        var text = ""
        latency.histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
        return text
    }
}
