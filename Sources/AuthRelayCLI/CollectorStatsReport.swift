import AuthRelayCollector
import AuthRelayProtocol

/// Renders a collector's counters for people (a table), programs (JSON) and
/// Prometheus (the text format node_exporter's textfile collector reads).
/// A collector that speaks version 3 adds its counters and one view per agent
/// run (most recently heard first); a version 2 collector's report is what it
/// has always been.
///
/// Agent and boot ids come from agents, not from the collector: the table
/// shows them escaped (no control character reaches the terminal), JSON and
/// Prometheus escape them by their own rules.
public struct CollectorStatsReport: Sendable {
    public var stats: CollectorStats
    /// Which collector, for the Prometheus `collector` label.
    public var collector: String
    /// CLOCK_REALTIME ns "now", for the table's ages.
    public var now: UInt64

    public init(stats: CollectorStats, collector: String, now: UInt64 = Timestamps.realtime()) {
        self.stats = stats
        self.collector = collector
        self.now = now
    }

    typealias Row = (name: String, help: String, type: String, value: UInt64)

    /// (name, help, Prometheus type, value), in the order every format uses.
    var rows: [Row] {
        var rows: [Row] = [
            ("started_ns", "CLOCK_REALTIME when the collector started, ns since the epoch", "gauge", stats.startedNanoseconds),
            ("batches", "REPORT_BATCH calls accepted", "counter", stats.batches),
            ("events", "events received, every version", "counter", stats.events),
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
        if let extra = stats.version3 {
            rows += [
                ("unserved_calls", "calls of a program, version or procedure not served", "counter", extra.unservedCalls),
                ("lost_queue_full", "events agents lost to a full memory queue (loss ranges)", "counter", extra.lostQueueFull),
                ("lost_spool_evicted", "events agents lost to a full spool (loss ranges)", "counter", extra.lostSpoolEvicted),
                ("lost_spool_corrupt", "events agents lost to corrupt spool records (loss ranges)", "counter", extra.lostSpoolCorrupt),
                ("lost_refused", "events a collector refused and agents gave up (loss ranges)", "counter", extra.lostRefused),
                ("output_lost", "acknowledged events the output no longer held at start", "counter", extra.outputLost),
                ("boots_clean", "agent runs reported ended cleanly", "counter", extra.bootsClean),
                ("boots_unclean", "agent runs reported ended uncleanly (killed, crashed)", "counter", extra.bootsUnclean),
                ("evicted_connections", "least recently active connections closed for a new one", "counter", extra.evictedConnections),
            ]
        }
        return rows
    }

    typealias AgentField = (name: String, help: String, type: String, value: @Sendable (AgentView) -> UInt64)

    /// One agent run's numbers, in the order JSON and Prometheus use.
    static let agentFields: [AgentField] = [
        ("highest_seq", "highest sequence the collector handled for this agent run", "gauge", { $0.highestSequence }),
        ("last_report_ns", "CLOCK_REALTIME of the agent run's last batch", "gauge", { $0.lastReportNanoseconds }),
        ("submitted", "events the auth path submitted", "counter", { $0.status.submitted }),
        ("spooled", "events written to the spool", "counter", { $0.status.spooled }),
        ("replayed", "events read back from the spool to send", "counter", { $0.status.replayed }),
        ("evicted", "events lost to a full spool", "counter", { $0.status.evicted }),
        ("corrupt", "events lost to checksum failures", "counter", { $0.status.corrupt }),
        ("queue_dropped", "events lost to a full memory queue", "counter", { $0.status.queueDropped }),
        ("memory_fallbacks", "times the spool became unusable and memory took over", "counter", { $0.status.memoryFallbacks }),
        ("spool_bytes", "bytes in the spool", "gauge", { $0.status.spoolBytes }),
        ("spool_segments", "segment files in the spool", "gauge", { UInt64($0.status.spoolSegments) }),
        ("oldest_spooled_ns", "CLOCK_REALTIME of the oldest undelivered spooled event, 0 when none", "gauge",
         { $0.status.oldestSpooledNanoseconds }),
        ("spool_usable", "1 when spooling to disk, 0 when memory only", "gauge", { $0.status.spoolUsable ? 1 : 0 }),
    ]

    private var agents: [AgentView] { stats.version3?.agents ?? [] }

    public var table: String {
        let rows = rows
        let width = rows.map(\.name.count).max() ?? 0
        var text = rows.map { row in
            row.name.padding(toLength: width) + "  " + String(row.value)
        }.joined(separator: "\n") + "\n"
        guard !agents.isEmpty else { return text }
        text += "\nagent runs, most recently heard first:\n"
        let header = ["agent_id", "boot_id", "highest_seq", "last_report", "spool", "bytes", "segments", "oldest", "spooled",
                      "replayed", "evicted", "corrupt", "queue_dropped", "fallbacks"]
        let lines = [header] + agents.map { view in
            [LogValue.text(view.agentID), LogValue.text(view.bootID), String(view.highestSequence), age(since: view.lastReportNanoseconds),
             view.status.spoolUsable ? "disk" : "memory", String(view.status.spoolBytes), String(view.status.spoolSegments),
             view.status.oldestSpooledNanoseconds == 0 ? "-" : age(since: view.status.oldestSpooledNanoseconds),
             String(view.status.spooled), String(view.status.replayed), String(view.status.evicted), String(view.status.corrupt),
             String(view.status.queueDropped), String(view.status.memoryFallbacks)]
        }
        let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        for line in lines {
            text += line.indices.map { column in
                column == line.count - 1 ? line[column] : line[column].padding(toLength: widths[column])
            }.joined(separator: "  ") + "\n"
        }
        return text
    }

    /// "12s ago", "3m ago", "2h ago"; saturating: a time ahead of `now` (another clock) reads "0s ago".
    func age(since nanoseconds: UInt64) -> String {
        guard nanoseconds > 0 else { return "never" }
        let seconds = (now > nanoseconds ? now - nanoseconds : 0) / 1_000_000_000
        switch seconds {
        case ..<120: return "\(seconds)s ago"
        case ..<7200: return "\(seconds / 60)m ago"
        case ..<172_800: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86_400)d ago"
        }
    }

    public var json: String {
        var fields = rows.map { "\"\($0.name)\":\($0.value)" }
        if stats.version3 != nil {
            let views = agents.map { view in
                "{\"agent_id\":\(JSONText.quoted(view.agentID)),\"boot_id\":\(JSONText.quoted(view.bootID)),"
                    + Self.agentFields.map { field in
                        field.name == "spool_usable" ? "\"spool_usable\":\(view.status.spoolUsable)" : "\"\(field.name)\":\(field.value(view))"
                    }.joined(separator: ",") + "}"
            }
            fields.append("\"agent_runs\":[" + views.joined(separator: ",") + "]")
        }
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    public var prometheus: String {
        let collectorLabel = "collector=\"\(Self.escapeLabel(collector))\""
        var text = rows.map { row in
            let name = "authrelay_collector_\(row.name)" + (row.type == "counter" ? "_total" : "")
            return "# HELP \(name) \(row.help)\n# TYPE \(name) \(row.type)\n\(name){\(collectorLabel)} \(row.value)\n"
        }.joined()
        guard !agents.isEmpty else { return text }
        for field in Self.agentFields {
            let name = "authrelay_agent_\(field.name)" + (field.type == "counter" ? "_total" : "")
            text += "# HELP \(name) \(field.help)\n# TYPE \(name) \(field.type)\n"
            for view in agents {
                let labels = "\(collectorLabel),agent_id=\"\(Self.escapeLabel(view.agentID))\",boot_id=\"\(Self.escapeLabel(view.bootID))\""
                text += "\(name){\(labels)} \(field.value(view))\n"
            }
        }
        return text
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
