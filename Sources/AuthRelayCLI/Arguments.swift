import ArgumentParser
import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

// How the command-line programs read their common values, in one place, so
// ArgumentParser rejects a bad value at parse time with the flag's name.

extension Duration: @retroactive ExpressibleByArgument {
    /// "20ms", "1s", "250us", "500ns", "2m"; a bare number is milliseconds.
    public init?(argument: String) {
        self.init(parsing: argument)
    }

    /// Reads "20ms", "1s", "1.5s", "250us", "500ns", "2m" (a bare number is milliseconds).
    public init?(parsing text: String) {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9)]
        var number = Substring(text)
        var scale = 1e6
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite, value * scale < Double(Int64.max) else { return nil }
        self = .nanoseconds(Int64(value * scale))
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
    public static let authRelay = ProgramNumber(AuthRelayProgram.program)
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension ProtocolVersion: ExpressibleByArgument {
    /// "3", "2", "1" (or "v3", "v2", "v1").
    public init?(argument: String) {
        let digits = argument.lowercased().hasPrefix("v") ? String(argument.dropFirst()) : argument
        guard let number = UInt32(digits) else { return nil }
        self.init(rawValue: number)
    }

    public var defaultValueDescription: String { String(rawValue) }

    public static var allValueStrings: [String] { ["1", "2", "3"] }
}
