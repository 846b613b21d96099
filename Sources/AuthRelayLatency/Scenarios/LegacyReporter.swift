import AuthRelayHarness
import ONCRPC

/// The plain C client, `legacy-reporter -L`: one process per round, its own
/// timing of each clnt_call, read from the one summary line it prints.
final class LegacyReporter {
    let executables: Executables
    let directory: TemporaryDirectory
    let endpoint: RPCEndpoint
    var timeoutMilliseconds = 5000
    private var runs = 0

    static let name = "legacy-reporter"

    init(executables: Executables, directory: TemporaryDirectory, endpoint: RPCEndpoint) {
        self.executables = executables
        self.directory = directory
        self.endpoint = endpoint
    }

    /// The flags that point legacy-reporter at `endpoint` (direct addresses, or rpcbind).
    static func addressArguments(_ endpoint: RPCEndpoint) -> [String] {
        switch endpoint {
        case .tcp(let host, let port): ["-h", host, "-t", "tcp", "-P", "\(port)"]
        case .udp(let host, let port): ["-h", host, "-t", "udp", "-P", "\(port)"]
        case .unix(let path): ["-s", path]
        case .rpcbind(let host, let transport): ["-h", host, "-t", transport == .local ? "unix" : transport.rawValue]
        }
    }

    /// Runs `calls` version 1 calls (or `batch`-event version 2 calls) and reads its summary.
    func round(calls: Int, batch: Int? = nil) throws(LatencyError) -> RoundOutcome {
        runs += 1
        var arguments = Self.addressArguments(endpoint) + ["-L", "-T", "\(timeoutMilliseconds)"]
        if let batch {
            arguments += ["-B", "\(batch)", "-n", "\(calls * batch)"]
        } else {
            arguments += ["-n", "\(calls)"]
        }
        let child = try ChildProcess(executables.path(Self.name), arguments,
                                     outputIn: directory, tag: "reporter-\(runs)")
        guard let ended = child.wait(timeout: .seconds(120)) else {
            child.stop()
            throw LatencyError("\(Self.name) did not finish \(calls) calls within 120 s on \(endpoint)")
        }
        guard ended == .exited(0), let summary = ReporterSummary(child.stdout, program: Self.name) else {
            throw LatencyError("\(Self.name) \(arguments.joined(separator: " ")) failed (\(ended)):\n\(child.stdout)\(child.stderr)")
        }
        return summary.outcome
    }

    /// "legacy-reporter: calls=C events=E ..." as a dictionary.
    static func summaryFields(_ output: String) -> [String: String] {
        ReporterSummary.fields(output, program: name)
    }
}
