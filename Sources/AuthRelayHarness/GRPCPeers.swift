import SystemSupport

/// grpc-collector and grpc-reporter, the gRPC side of `authrelay latency`.
/// They live in a package of their own (Benchmarks/GRPCPeers) so that this
/// package never builds gRPC; a run uses them when they are built and skips
/// their rows otherwise.
package struct GRPCPeers: Sendable {
    package static let collectorName = "grpc-collector"
    package static let reporterName = "grpc-reporter"
    /// Points the lookup at a folder holding both, as `--grpc-peers DIR` does.
    package static let environmentVariable = "AUTHRELAY_GRPC_PEERS"
    package static let buildFolder = "Benchmarks/GRPCPeers/.build/release"
    package static let buildCommand = "swift build -c release --package-path Benchmarks/GRPCPeers"

    package let directory: String
    package var collector: String { "\(directory)/\(Self.collectorName)" }
    package var reporter: String { "\(directory)/\(Self.reporterName)" }

    /// What a lookup found, and where it looked.
    package struct Lookup: Sendable {
        package var peers: GRPCPeers?
        package var searched: [String]

        /// The one line a run prints when the peers are not there.
        package var missingNote: String {
            "gRPC rows skipped: \(GRPCPeers.collectorName) and \(GRPCPeers.reporterName) are not built "
                + "(looked in \(searched.joined(separator: ", "))); build them once with "
                + "\"\(GRPCPeers.buildCommand)\" (a first build takes about 20 CPU-minutes), "
                + "or point --grpc-peers DIR or \(GRPCPeers.environmentVariable) at them"
        }
    }

    /// Where the peers are: `explicit` (a flag) or $AUTHRELAY_GRPC_PEERS when
    /// set, and only there; else next to `executables` (an install that ships
    /// them beside authrelay), else Benchmarks/GRPCPeers/.build/release in the
    /// current directory or in the first folder above the running program that
    /// has one (a checkout's .build/debug/authrelay finds its own).
    package static func find(explicit: String? = nil, beside executables: Executables) -> Lookup {
        if let chosen = explicit ?? Processes.environmentValue(environmentVariable).flatMap({ $0.isEmpty ? nil : $0 }) {
            return lookup([chosen])
        }
        var candidates = [executables.directory, buildFolder]
        var directory = FileSystem.directoryName(of: Processes.currentExecutable() ?? executables.path("authrelay"))
        while directory != "/" && directory != "." && !directory.isEmpty {
            let folder = "\(directory)/\(buildFolder)"
            if FileSystem.exists(folder) {
                candidates.append(folder)
                break
            }
            directory = FileSystem.directoryName(of: directory)
        }
        return lookup(candidates)
    }

    private static func lookup(_ folders: [String]) -> Lookup {
        for folder in folders {
            let peers = GRPCPeers(directory: folder)
            if FileSystem.isExecutable(peers.collector) && FileSystem.isExecutable(peers.reporter) {
                return Lookup(peers: peers, searched: folders)
            }
        }
        return Lookup(peers: nil, searched: folders)
    }
}
