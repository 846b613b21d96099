import AuthRelayCLI
import AuthRelayProtocol
import Testing

@Suite("CollectorStatsReport")
struct CollectorStatsReportTests {
    static let stats: CollectorStats = {
        var stats = CollectorStats()
        stats.startedNanoseconds = 1_700_000_000_000_000_000
        stats.batches = 2
        stats.events = 515
        stats.written = 510
        stats.duplicates = 5
        stats.legacyEvents = 3
        stats.reportedDropped = 7
        stats.gapEvents = 1
        stats.rejected = 4
        stats.sinkErrors = 0
        stats.agents = 2
        stats.connections = 1
        return stats
    }()

    @Test("table: one aligned row per counter, in a fixed order")
    func table() {
        let report = CollectorStatsReport(stats: Self.stats, collector: "local")
        #expect(report.table == """
            started_ns        1700000000000000000
            batches           2
            events            515
            written           510
            duplicates        5
            legacy_events     3
            reported_dropped  7
            gap_events        1
            rejected          4
            sink_errors       0
            agents            2
            connections       1

            """)
    }

    @Test("json: one object on one line")
    func json() {
        let report = CollectorStatsReport(stats: Self.stats, collector: "local")
        #expect(report.json == """
            {"started_ns":1700000000000000000,"batches":2,"events":515,"written":510,"duplicates":5,\
            "legacy_events":3,"reported_dropped":7,"gap_events":1,"rejected":4,"sink_errors":0,"agents":2,"connections":1}

            """)
    }

    @Test("prometheus: HELP, TYPE and a labelled sample per counter; counters end in _total")
    func prometheus() {
        let text = CollectorStatsReport(stats: Self.stats, collector: "tcp://127.0.0.1:4000").prometheus
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 12 * 3 + 1)
        #expect(lines.last == "")
        #expect(Array(lines[3..<6]) == [
            "# HELP authrelay_collector_batches_total REPORT_BATCH calls accepted",
            "# TYPE authrelay_collector_batches_total counter",
            "authrelay_collector_batches_total{collector=\"tcp://127.0.0.1:4000\"} 2",
        ])
        #expect(lines.contains("# TYPE authrelay_collector_started_ns gauge"))
        #expect(lines.contains("authrelay_collector_connections{collector=\"tcp://127.0.0.1:4000\"} 1"))
        #expect(!text.contains("connections_total"), "gauges have no _total")
    }

    @Test("the collector label is escaped: backslash, quote, newline")
    func labelEscaping() {
        let text = CollectorStatsReport(stats: CollectorStats(), collector: "a\\b\"c\nd").prometheus
        #expect(text.contains("{collector=\"a\\\\b\\\"c\\nd\"} 0"))
    }

    static let version3: CollectorStats = {
        var stats = Self.stats
        var extra = CollectorStatsV3()
        let counters: [(WritableKeyPath<CollectorStatsV3, UInt64>, UInt64)] = [
            (\.unservedCalls, 3), (\.lostQueueFull, 10), (\.lostSpoolEvicted, 20), (\.lostSpoolCorrupt, 30), (\.lostRefused, 40),
            (\.outputLost, 50), (\.bootsClean, 1), (\.bootsUnclean, 2), (\.evictedConnections, 4488),
        ]
        for (counter, value) in counters { extra[keyPath: counter] = value }
        var status = AgentStatus()
        let numbers: [(WritableKeyPath<AgentStatus, UInt64>, UInt64)] = [
            (\.submitted, 1000), (\.spooled, 900), (\.replayed, 800), (\.evicted, 7), (\.corrupt, 6), (\.queueDropped, 5),
            (\.memoryFallbacks, 1), (\.spoolBytes, 65536), (\.oldestSpooledNanoseconds, 1_700_000_000_000_000_000 - 90_000_000_000),
        ]
        for (field, value) in numbers { status[keyPath: field] = value }
        status.spoolSegments = 3
        status.spoolUsable = true
        extra.agents = [
            AgentView(agentID: "host-a", bootID: "b1", highestSequence: 900, lastReportNanoseconds: 1_700_000_000_000_000_000 - 5_000_000_000,
                      status: status),
            // Ids from an agent: a newline and an escape sequence; a report time ahead of "now" (another clock).
            AgentView(agentID: "evil\n\u{1B}[2J", bootID: "q\"b", highestSequence: 1, lastReportNanoseconds: .max, status: AgentStatus()),
        ]
        stats.version3 = extra
        return stats
    }()

    static let now: UInt64 = 1_700_000_000_000_000_000

    @Test("table, version 3: its counters after the version 2 ones, then one line per agent run with ids escaped and ages saturating")
    func tableVersion3() {
        let report = CollectorStatsReport(stats: Self.version3, collector: "local", now: Self.now)
        #expect(report.table == #"""
            started_ns           1700000000000000000
            batches              2
            events               515
            written              510
            duplicates           5
            legacy_events        3
            reported_dropped     7
            gap_events           1
            rejected             4
            sink_errors          0
            agents               2
            connections          1
            unserved_calls       3
            lost_queue_full      10
            lost_spool_evicted   20
            lost_spool_corrupt   30
            lost_refused         40
            output_lost          50
            boots_clean          1
            boots_unclean        2
            evicted_connections  4488

            agent runs, most recently heard first:
            agent_id             boot_id  highest_seq  last_report  spool   bytes  segments  oldest   spooled  replayed  evicted  corrupt  queue_dropped  fallbacks
            host-a               b1       900          5s ago       disk    65536  3         90s ago  900      800       7        6        5              1
            "evil\n\u{001B}[2J"  "q\"b"   1            0s ago       memory  0      0         -        0        0         0        0        0              0

            """#)
        #expect(!report.table.contains("\u{1B}"))
    }

    @Test("json, version 3: the counters and an agent_runs array, ids escaped as JSON")
    func jsonVersion3() {
        let json = CollectorStatsReport(stats: Self.version3, collector: "local", now: Self.now).json
        #expect(json.hasPrefix(#"{"started_ns":1700000000000000000,"batches":2,"#))
        #expect(json.contains(#""connections":1,"unserved_calls":3,"lost_queue_full":10,"lost_spool_evicted":20,"lost_spool_corrupt":30,"#
                              + #""lost_refused":40,"output_lost":50,"boots_clean":1,"boots_unclean":2,"evicted_connections":4488,"agent_runs":["#))
        #expect(json.contains(#"{"agent_id":"host-a","boot_id":"b1","highest_seq":900,"last_report_ns":1699999995000000000,"submitted":1000,"#
                              + #""spooled":900,"replayed":800,"evicted":7,"corrupt":6,"queue_dropped":5,"memory_fallbacks":1,"spool_bytes":65536,"#
                              + #""spool_segments":3,"oldest_spooled_ns":1699999910000000000,"spool_usable":true}"#))
        #expect(json.contains(#"{"agent_id":"evil\n\u001b[2J","boot_id":"q\"b","#))
        #expect(json.hasSuffix("]}\n"))
    }

    @Test("prometheus, version 3: the counters, then per agent run metrics labelled with agent_id and boot_id")
    func prometheusVersion3() {
        let text = CollectorStatsReport(stats: Self.version3, collector: "local", now: Self.now).prometheus
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("authrelay_collector_evicted_connections_total{collector=\"local\"} 4488"))
        #expect(lines.contains("authrelay_collector_output_lost_total{collector=\"local\"} 50"))
        #expect(lines.contains("# TYPE authrelay_agent_spool_bytes gauge"))
        #expect(lines.contains("authrelay_agent_spool_bytes{collector=\"local\",agent_id=\"host-a\",boot_id=\"b1\"} 65536"))
        #expect(lines.contains("authrelay_agent_evicted_total{collector=\"local\",agent_id=\"host-a\",boot_id=\"b1\"} 7"))
        #expect(lines.contains("authrelay_agent_spool_usable{collector=\"local\",agent_id=\"host-a\",boot_id=\"b1\"} 1"))
        #expect(lines.contains(#"authrelay_agent_highest_seq{collector="local",agent_id="evil\n\#u{1B}[2J",boot_id="q\"b"} 1"#))
        // One HELP and TYPE per family, one sample per agent run.
        #expect(lines.filter { $0.hasPrefix("# TYPE authrelay_agent_") }.count == 13)
        #expect(lines.filter { $0.hasPrefix("authrelay_agent_") }.count == 26)
        #expect((12 + 9) * 3 + 13 * 2 + 26 == lines.count)
    }

    @Test("a version 2 collector's report is unchanged: no version 3 rows, no agent runs")
    func version2Unchanged() {
        let report = CollectorStatsReport(stats: Self.stats, collector: "local")
        #expect(!report.table.contains("unserved_calls") && !report.json.contains("agent_runs") && !report.prometheus.contains("authrelay_agent_"))
    }
}
