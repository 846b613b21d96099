import ArgumentParser
import AuthRelayCollector
import ONCRPC
import SystemSupport

// Typed flag values: ArgumentParser rejects a bad value at parse time, with
// the flag's name, and `run()` never parses a string again.

/// Transports, comma separated: "tcp,udp,unix" ("local" is unix). Order kept, repeats dropped.
public struct TransportList: ExpressibleByArgument, Sendable, Equatable {
    public var transports: [RPCTransport]

    public init(_ transports: [RPCTransport]) {
        self.transports = transports
    }

    public init?(argument: String) {
        var transports: [RPCTransport] = []
        for name in argument.split(separator: ",") {
            guard let transport = RPCTransport(netid: name.filter { $0 != " " }) else { return nil }
            if !transports.contains(transport) { transports.append(transport) }
        }
        guard !transports.isEmpty else { return nil }
        self.transports = transports
    }

    public var defaultValueDescription: String {
        transports.map { $0 == .local ? "unix" : $0.rawValue }.joined(separator: ",")
    }

    public func contains(_ transport: RPCTransport) -> Bool { transports.contains(transport) }
}

/// A comma-separated list of values of one flag type: "1,8,64,512", "healthy,stopped".
public struct CommaList<Element: ExpressibleByArgument & Sendable & Equatable>: ExpressibleByArgument, Sendable, Equatable {
    public var values: [Element]

    public init(_ values: [Element]) {
        self.values = values
    }

    public init?(argument: String) {
        var values: [Element] = []
        for part in argument.split(separator: ",") {
            guard let value = Element(argument: part.filter { $0 != " " }) else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    public var defaultValueDescription: String {
        values.map(\.defaultValueDescription).joined(separator: ",")
    }
}

/// A size in bytes: "268435456", "256K", "256M", "1G".
public struct ByteCount: ExpressibleByArgument, Sendable, Equatable {
    public var bytes: Int64

    public init(_ bytes: Int64) {
        self.bytes = bytes
    }

    public init?(argument: String) {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        let text = argument.uppercased()
        var scale: Int64 = 1
        var digits = Substring(text)
        if let last = text.last, let unit = units[last] {
            scale = unit
            digits = text.dropLast()
        }
        guard let value = Int64(digits), value >= 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        self.bytes = bytes
    }

    public var defaultValueDescription: String {
        for (suffix, unit) in [("G", Int64(1) << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes > 0 && bytes % unit == 0 {
            return "\(bytes / unit)\(suffix)"
        }
        return "\(bytes)"
    }
}

/// Permission bits in octal: "0660", "600".
public struct FileMode: ExpressibleByArgument, Sendable, Equatable {
    public var bits: UInt32

    public init(_ bits: UInt32) {
        self.bits = bits
    }

    public init?(argument: String) {
        guard let bits = UInt32(argument, radix: 8), bits <= 0o7777 else { return nil }
        self.bits = bits
    }

    public var defaultValueDescription: String {
        let text = String(bits, radix: 8)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }
}

/// A duration whose bare number is seconds ("300", "2.5"); a unit may be given
/// ("500ms", "5m"). For flags that have always been seconds.
public struct Seconds: ExpressibleByArgument, Sendable, Equatable {
    public var duration: Duration

    public init(_ duration: Duration) {
        self.duration = duration
    }

    public init?(argument: String) {
        if let seconds = Double(argument) {
            guard seconds >= 0, seconds.isFinite, seconds < 1e9 else { return nil }
            duration = .nanoseconds(Int64(seconds * 1e9))
        } else if let parsed = Duration(parsing: argument) {
            duration = parsed
        } else {
            return nil
        }
    }

    public var defaultValueDescription: String {
        let nanoseconds = duration.nanoseconds
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)" }
        return duration.shortDescription
    }
}

extension FsyncPolicy: ExpressibleByArgument {}

/// Where authrelayd's accepted events go.
public enum SinkKind: String, ExpressibleByArgument, Sendable, CaseIterable {
    /// JSON Lines to a file or stdout.
    case jsonl
    /// Counted and acknowledged, stored nowhere: for benchmarks.
    case null
    /// PostgreSQL (`--postgres-url`).
    case postgres
}

/// `postgresql://user@host:port/database[?sslmode=...]`: where the PostgreSQL
/// sink connects. A password in it (`user:password@` or `?password=`) is refused: a command line is readable by
/// every user (/proc/PID/cmdline); use --postgres-password-file, PGPASSFILE
/// or ~/.pgpass instead.
public struct PostgresURL: ExpressibleByArgument, Sendable, Equatable {
    public var url: String

    public init?(argument: String) {
        guard let scheme = argument.firstRange(of: "://"),
              ["postgresql", "postgres"].contains(String(argument[..<scheme.lowerBound])),
              scheme.upperBound < argument.endIndex else { return nil }
        let authority = argument[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" }
        if let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") { return nil }
        if let query = argument.firstIndex(of: "?"),
           argument[argument.index(after: query)...].split(separator: "&").contains(where: { $0.hasPrefix("password=") }) { return nil }
        url = argument
    }

    public static var defaultCompletionKind: CompletionKind { .default }
}

/// Collectors, comma separated, in order of preference: any `RPCEndpoint`
/// form ("tcp://10.0.0.5:7700,tcp://10.0.0.6:7700", "unix:///run/a.sock,tcp"),
/// and `rpcbind://HOST1,HOST2/NETID` for rpcbind on several hosts. Repeats dropped.
public struct CollectorList: ExpressibleByArgument, Sendable, Equatable {
    public var endpoints: [RPCEndpoint]

    public init(_ endpoints: [RPCEndpoint]) {
        precondition(!endpoints.isEmpty, "a collector list is not empty")
        self.endpoints = endpoints
    }

    public init?(argument: String) {
        let pieces = argument.split(separator: ",", omittingEmptySubsequences: false).map { $0.filter { $0 != " " } }
        var endpoints: [RPCEndpoint] = []
        var index = 0
        while index < pieces.count {
            var found: [RPCEndpoint]
            if let endpoint = RPCEndpoint(parsing: pieces[index]) {
                found = [endpoint]
                index += 1
            } else {
                guard let (hosts, next) = Self.rpcbindHosts(pieces, from: index) else { return nil }
                found = hosts
                index = next
            }
            for endpoint in found where !endpoints.contains(endpoint) { endpoints.append(endpoint) }
        }
        guard !endpoints.isEmpty else { return nil }
        self.endpoints = endpoints
    }

    /// `rpcbind://HOST1` `HOST2` ... `HOSTn/NETID` (split at the commas): one rpcbind endpoint per host, and where the list goes on.
    private static func rpcbindHosts(_ pieces: [String], from start: Int) -> ([RPCEndpoint], Int)? {
        let scheme = "rpcbind://"
        guard pieces[start].lowercased().hasPrefix(scheme) else { return nil }
        var hosts = [String(pieces[start].dropFirst(scheme.count))]
        var index = start + 1
        while index < pieces.count, !pieces[index].contains("/") {
            hosts.append(pieces[index])
            index += 1
        }
        guard index < pieces.count, !pieces[index].contains("://"), let slash = pieces[index].firstIndex(of: "/") else { return nil }
        hosts.append(String(pieces[index][..<slash]))
        let netid = pieces[index][pieces[index].index(after: slash)...]
        var endpoints: [RPCEndpoint] = []
        for host in hosts {
            guard !host.isEmpty, let endpoint = RPCEndpoint(parsing: "\(scheme)\(host)/\(netid)") else { return nil }
            endpoints.append(endpoint)
        }
        return (endpoints, index + 1)
    }

    public var defaultValueDescription: String {
        endpoints.map(\.defaultValueDescription).joined(separator: ",")
    }
}

/// The collector a client command talks to: `--collector` and `--program`,
/// the same in every command. `--collector` takes a list (`CollectorList`):
/// the agent and `send` fail over along it; `stats` reads one.
public struct CollectorOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("collector"), help: ArgumentHelp(
        "Collector: tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH, rpcbind://HOST/NETID, or tcp|udp|local (rpcbind on localhost). Several, comma separated, in order of preference (rpcbind://HOST1,HOST2/NETID for rpcbind on several hosts): the sender moves to the next when one fails.",
        valueName: "collector"))
    public var collectors = CollectorList([.rpcbind(host: "localhost", transport: .local)])

    @Option(help: "Program number to target (decimal or 0x hex).")
    public var program: ProgramNumber = .authRelay

    public init() {}

    /// The first (preferred) collector: the one a command that reads one collector uses.
    public var collector: RPCEndpoint { collectors.endpoints[0] }
}
