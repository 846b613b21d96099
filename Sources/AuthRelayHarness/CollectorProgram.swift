import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// Which collector the runs start and with which flags: the one place to change
/// when a collector's command line changes.
package enum CollectorProgram: String, Sendable, CaseIterable {
    /// AuthRelay's own collector.
    case authrelayd
    /// The plain C collector, serving version 1 and version 2 count-only (`-2`).
    case legacyCollector = "legacy-collector"

    /// What the runs start unless told otherwise: authrelayd when it is built next
    /// to this program, else the plain C collector.
    package static func standard(in executables: Executables) -> CollectorProgram {
        executables.has(CollectorProgram.authrelayd.rawValue) ? .authrelayd : .legacyCollector
    }

    /// Whether the program can sleep per call itself (`--inject-delay`), for the slow condition.
    package var injectsDelay: Bool { self == .authrelayd }

    /// What a started collector serves and where it writes.
    package struct Settings: Sendable {
        /// The program number served.
        package var program: UInt32 = AuthRelayProgram.program
        /// Where events go; nil: nowhere (authrelayd's null sink, legacy-collector -q).
        package var output: String?
        /// Register with rpcbind (else the runs read the addresses from the collector's log).
        package var registerWithRPCBind = false
        /// Sleep per call inside the collector (slow condition); needs `injectsDelay`.
        package var delay: Duration?

        package init() {}
    }

    /// The command line for a collector on loopback only.
    func arguments(transports: [RPCTransport], unixSocket: String, dataDirectory: String, settings: Settings) -> [String] {
        let names = transports.map { $0 == .local ? "unix" : $0.rawValue }.joined(separator: ",")
        switch self {
        case .authrelayd:
            var arguments = ["--transports", names, "--unix-socket", unixSocket, "--port", "0",
                             "--data-dir", dataDirectory, "--program", String(settings.program)]
            arguments += settings.output.map { ["--sink", "jsonl", "--output", $0, "--fsync", "never"] } ?? ["--sink", "null"]
            if !settings.registerWithRPCBind { arguments.append("--no-rpcbind") }
            if let delay = settings.delay { arguments += ["--inject-delay", delay.shortDescription] }
            return arguments
        case .legacyCollector:
            var arguments = ["-2", "-t", names, "-s", unixSocket, "-p", String(settings.program)]
            arguments += settings.output.map { ["-o", $0] } ?? ["-q"]
            if !settings.registerWithRPCBind { arguments.append("-n") }
            return arguments
        }
    }

    /// Reads the addresses a collector prints when it listens, one per line:
    /// `listening tcp 127.0.0.1:PORT`, `listening udp ...`, `listening unix PATH`
    /// (legacy-collector's lines; authrelayd prints the same words).
    static func listeningEndpoints(in output: String) -> [RPCTransport: RPCEndpoint] {
        var endpoints: [RPCTransport: RPCEndpoint] = [:]
        for line in output.split(separator: "\n") {
            let allWords = line.split(separator: " ").map(String.init)
            guard let marker = allWords.firstIndex(of: "listening") else { continue }
            let words = Array(allWords[(marker + 1)...])
            guard words.count >= 2 else { continue }
            let netid = words[0].hasSuffix("6") ? String(words[0].dropLast()) : words[0]
            let address = words[1].trimmingCharacters(in: [",", ";"])
            guard let transport = RPCTransport(netid: netid), endpoints[transport] == nil else { continue }
            switch transport {
            case .local:
                if address.hasPrefix("/") { endpoints[.local] = .unix(path: address) }
            case .tcp, .udp:
                if let endpoint = RPCEndpoint(parsing: "\(transport.rawValue)://\(address)") {
                    endpoints[transport] = endpoint
                }
            }
        }
        return endpoints
    }
}

extension String {
    func trimmingCharacters(in characters: Set<Character>) -> String {
        var text = Substring(self)
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
