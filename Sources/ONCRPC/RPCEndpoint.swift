/// The transports ONC RPC runs on here, by their netconfig names.
public enum RPCTransport: String, Sendable, CaseIterable, CustomStringConvertible {
    case tcp
    case udp
    /// AF_LOCAL stream sockets (netid "local", also called "unix").
    case local

    /// Accepts "tcp", "udp", "local" and "unix".
    public init?(netid: String) {
        switch netid.lowercased() {
        case "tcp": self = .tcp
        case "udp": self = .udp
        case "local", "unix": self = .local
        default: return nil
        }
    }

    public var description: String { rawValue }
}

/// Where an RPC server is.
public enum RPCEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// A TCP address: IPv4 or IPv6 literal, or a host name.
    case tcp(host: String, port: UInt16)
    /// A UDP address.
    case udp(host: String, port: UInt16)
    /// An AF_LOCAL stream socket path.
    case unix(path: String)
    /// Ask rpcbind on `host` where the program and version listen on `transport`.
    case rpcbind(host: String, transport: RPCTransport)

    public var transport: RPCTransport {
        switch self {
        case .tcp: .tcp
        case .udp: .udp
        case .unix: .local
        case .rpcbind(_, let transport): transport
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): "tcp \(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .udp(let host, let port): "udp \(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .unix(let path): "unix \(path)"
        case .rpcbind(let host, let transport): "\(transport) via rpcbind on \(host)"
        }
    }

    /// Parses the forms a command line uses:
    /// `tcp://HOST:PORT`, `udp://HOST:PORT`, `unix:///PATH` (or a bare absolute path),
    /// and `rpcbind://HOST/NETID` (or just `tcp`, `udp`, `local`: rpcbind on localhost).
    public init?(parsing text: String) {
        if text.hasPrefix("/") {
            self = .unix(path: text)
            return
        }
        if let transport = RPCTransport(netid: text) {
            self = .rpcbind(host: "localhost", transport: transport)
            return
        }
        let pieces = text.split(separator: "://", maxSplits: 1)
        guard pieces.count == 2 else { return nil }
        let scheme = pieces[0].lowercased()
        let rest = String(pieces[1])
        switch scheme {
        case "unix", "local":
            guard rest.hasPrefix("/") else { return nil }
            self = .unix(path: rest)
        case "rpcbind":
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let transport = RPCTransport(netid: parts[1]) else { return nil }
            self = .rpcbind(host: parts[0], transport: transport)
        case "tcp", "udp":
            guard let (host, port) = Self.splitHostPort(rest) else { return nil }
            self = scheme == "tcp" ? .tcp(host: host, port: port) : .udp(host: host, port: port)
        default:
            return nil
        }
    }

    static func splitHostPort(_ text: String) -> (String, UInt16)? {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = UInt16(portText) else { return nil }
        return (String(host), port)
    }
}
