import AuthRelayProtocol

/// Renders a collector's counters for people (a table), programs (JSON) and
/// Prometheus (the text format node_exporter's textfile collector reads).
public struct CollectorStatsReport: Sendable {
    public var stats: CollectorStats
    /// Which collector, for the Prometheus `collector` label.
    public var collector: String

    public init(stats: CollectorStats, collector: String) {
        self.stats = stats
        self.collector = collector
    }

    /// (name, help, Prometheus type, value), in the order every format uses.
    var rows: [(name: String, help: String, type: String, value: UInt64)] {
        [
            ("started_ns", "CLOCK_REALTIME when the collector started, ns since the epoch", "gauge", stats.startedNanoseconds),
            ("batches", "REPORT_BATCH calls accepted", "counter", stats.batches),
            ("events", "events received, both versions", "counter", stats.events),
            ("written", "events written to the sink", "counter", stats.written),
            ("duplicates", "events received again and not written", "counter", stats.duplicates),
            ("legacy_events", "events received through version 1", "counter", stats.legacyEvents),
            ("reported_dropped", "events agents reported dropped", "counter", stats.reportedDropped),
            ("gap_events", "events missing from sequence gaps", "counter", stats.gapEvents),
            ("rejected", "calls refused: bad input or unauthorized", "counter", stats.rejected),
            ("sink_errors", "batches the sink failed to store", "counter", stats.sinkErrors),
            ("agents", "agent runs (agent id, boot id) known", "gauge", UInt64(stats.agents)),
            ("connections", "open stream connections", "gauge", UInt64(stats.connections)),
        ]
    }

    public var table: String {
        let width = rows.map(\.name.count).max() ?? 0
        return rows.map { row in
            row.name.padding(toLength: width) + "  " + String(row.value)
        }.joined(separator: "\n") + "\n"
    }

    public var json: String {
        "{" + rows.map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",") + "}\n"
    }

    public var prometheus: String {
        let label = "{collector=\"\(Self.escapeLabel(collector))\"}"
        return rows.map { row in
            let name = "authrelay_collector_\(row.name)" + (row.type == "counter" ? "_total" : "")
            return "# HELP \(name) \(row.help)\n# TYPE \(name) \(row.type)\n\(name)\(label) \(row.value)\n"
        }.joined()
    }

    static func escapeLabel(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
