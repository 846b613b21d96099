/// `--json FILE`: one object per scenario with the fields scripts and CI read.
///
///     {"subcommand": "transports", "quick": true, "scenarios": [
///       {"name": "swift-rpc-tcp", "transport": "tcp", "count": 2000, "rate": 41234.5,
///        "rate_unit": "calls/s", "p50_us": 18.6, "p90_us": ..., "p99_us": ..., "p999_us": ...,
///        "max_us": ..., ...}], "notes": [...], "errors": [...]}
///
/// Batching adds events and collector_events; the auth path adds design,
/// condition, requested, over_budget, delivered and dropped; transports adds
/// p50_vs_c and rate_vs_c where a C client ran on the same transport.
enum JSONWriter {
    static func render(_ report: LatencyReport) -> String {
        var text = "{\n  \"subcommand\": \(quoted(report.subcommand)),\n  \"quick\": \(report.quick),\n  \"scenarios\": [\n"
        text += report.results.map { "    " + object($0) }.joined(separator: ",\n")
        text += "\n  ],\n  \"notes\": [\(report.notes.map(quoted).joined(separator: ", "))],\n"
        text += "  \"errors\": [\(report.errors.map(quoted).joined(separator: ", "))]\n}\n"
        return text
    }

    static func object(_ result: ScenarioResult) -> String {
        var fields: [(String, String)] = [
            ("name", quoted(result.name)), ("transport", quoted(result.transport)),
            ("count", "\(result.count)"), ("rate", fixed(result.rate, 1)), ("rate_unit", quoted(result.rateUnit)),
            ("seconds", fixed(result.seconds, 6)),
            ("p50_us", fixed(result.summary.p50, 3)), ("p90_us", fixed(result.summary.p90, 3)),
            ("p99_us", fixed(result.summary.p99, 3)), ("p999_us", fixed(result.summary.p999, 3)),
            ("max_us", fixed(result.summary.max, 3)),
            ("percentiles_from", quoted(result.percentilesFrom ?? (result.latency == nil ? "legacy-reporter summaries" : "hdrhistogram"))),
        ]
        if let events = result.events, result.rateUnit == "events/s" { fields.append(("events", "\(events)")) }
        if let counted = result.collectorEvents { fields.append(("collector_events", "\(counted)")) }
        if let comparison = result.comparedToC {
            fields.append(("p50_vs_c", fixed(comparison.p50Ratio, 3)))
            fields.append(("rate_vs_c", fixed(comparison.rateRatio, 3)))
        }
        if let outcome = result.authPath {
            fields += [("design", quoted(outcome.design)), ("condition", quoted(outcome.condition)),
                       ("requested", "\(outcome.requested)"), ("over_budget", "\(outcome.overBudget)"),
                       ("delivered", "\(outcome.delivered)"), ("dropped", "\(outcome.dropped)")]
        }
        if !result.notes.isEmpty { fields.append(("notes", "[\(result.notes.map(quoted).joined(separator: ", "))]")) }
        return "{" + fields.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
