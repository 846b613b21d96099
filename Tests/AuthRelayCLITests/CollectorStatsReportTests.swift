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
}
