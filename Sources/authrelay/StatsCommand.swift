import ArgumentParser
import AuthRelay
import AuthRelayCLI
import ONCRPC

/// `authrelay stats`: a collector's GET_STATS counters.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print a collector's counters (GET_STATS) as a table, JSON or Prometheus text.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, prometheus
    }

    @Option(help: "Collector: tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH, rpcbind://HOST/NETID, or tcp|udp|local (rpcbind on localhost).")
    var collector: RPCEndpoint = .rpcbind(host: "localhost", transport: .local)

    @Option(help: "Program number (decimal or 0x hex).")
    var program: ProgramNumber = .authRelay

    @Option(help: "Output format: table, json, or prometheus (for node_exporter's textfile collector).")
    var format: Format = .table

    @Option(help: "Seconds to wait for the answer.")
    var timeout = 2.0

    func run() throws {
        let wait = Duration.milliseconds(Int64(timeout * 1000))
        let client = CollectorClient(endpoint: collector, program: program.value, timeout: wait, connectTimeout: wait)
        let stats = try client.stats()
        let report = CollectorStatsReport(stats: stats, collector: collector.description)
        switch format {
        case .table: print(report.table, terminator: "")
        case .json: print(report.json, terminator: "")
        case .prometheus: print(report.prometheus, terminator: "")
        }
    }
}
