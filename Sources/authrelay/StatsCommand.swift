import ArgumentParser
import AuthRelay
import AuthRelayCLI

/// `authrelay stats`: a collector's GET_STATS counters.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print a collector's counters (GET_STATS) as a table, JSON or Prometheus text.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, prometheus
    }

    @OptionGroup var target: CollectorOptions

    @Option(help: "Output format: table, json, or prometheus (for node_exporter's textfile collector). A version 3 collector adds its loss, boot and connection counters and one view per agent run.")
    var format: Format = .table

    @Option(help: "Seconds to wait for the answer.")
    var timeout = Seconds(.seconds(2))

    func validate() throws {
        if target.collectors.endpoints.count > 1 {
            throw ValidationError("authrelay stats reads one collector: give one --collector (run it once per collector)")
        }
    }

    func run() throws {
        // Version 3's GET_STATS when the collector has it, else version 2's.
        let client = CollectorClient(endpoint: target.collector, program: target.program.value,
                                     timeout: timeout.duration, connectTimeout: timeout.duration)
        let stats = try client.stats()
        let report = CollectorStatsReport(stats: stats, collector: target.collector.description)
        switch format {
        case .table: print(report.table, terminator: "")
        case .json: print(report.json, terminator: "")
        case .prometheus: print(report.prometheus, terminator: "")
        }
    }
}
