import ArgumentParser
import AuthRelay
import Logging
import ONCRPC

// How the command-line programs read their common values, in one place, so
// ArgumentParser rejects a bad value at parse time with the flag's name.

extension Duration: @retroactive ExpressibleByArgument {
    /// "20ms", "1s", "250us", "500ns"; a bare number is milliseconds.
    public init?(argument: String) {
        self.init(parsing: argument)
    }

    public var defaultValueDescription: String { shortDescription }
}

extension RPCEndpoint: ExpressibleByArgument {
    /// tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH (or a bare absolute path),
    /// rpcbind://HOST/NETID, or tcp|udp|local (rpcbind on localhost).
    public init?(argument: String) {
        self.init(parsing: argument)
    }

    public var defaultValueDescription: String {
        switch self {
        case .tcp(let host, let port): "tcp://\(host):\(port)"
        case .udp(let host, let port): "udp://\(host):\(port)"
        case .unix(let path): "unix://\(path)"
        case .rpcbind(let host, let transport): host == "localhost" ? transport.rawValue : "rpcbind://\(host)/\(transport)"
        }
    }
}

/// An ONC RPC program number: decimal ("536873598") or hex ("0x20000A7E").
public struct ProgramNumber: ExpressibleByArgument, Sendable, Equatable {
    public var value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    public init?(argument: String) {
        let lower = argument.lowercased()
        guard let value = lower.hasPrefix("0x") ? UInt32(lower.dropFirst(2), radix: 16) : UInt32(lower) else { return nil }
        self.value = value
    }

    public var defaultValueDescription: String { "0x" + String(value, radix: 16, uppercase: true) }

    /// AuthRelay's own program, AUTHRELAY_PROG.
    public static let authRelay = ProgramNumber(AuthRelayProtocol.program)
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
