import CONCRPC
import CTIRPC
import Glibc
import SystemSupport

/// rpcbind (program 100000), asked with this package's own client so every
/// question is bounded by a timeout (libtirpc's rpcb_getaddr waits far longer).
public enum RPCBind {
    public static let program: UInt32 = 100_000
    /// rpcbind's AF_LOCAL socket; the Debian package listens on both paths.
    public static let localSocketPaths = ["/run/rpcbind.sock", "/var/run/rpcbind.sock"]

    private static let version: UInt32 = 3  // RPCBVERS: GETADDR/SET/UNSET with universal addresses
    private static let set: UInt32 = 1
    private static let unset: UInt32 = 2
    private static let getAddress: UInt32 = 3
    private static let rpcbRoutine = XDRRoutine(CONCRPC_xdr_rpcb)
    private static let bool = XDRRoutine(CONCRPC_xdr_bool)

    /// True when `host` names this machine, so rpcbind's AF_LOCAL socket can be used.
    static func isLocal(_ host: String) -> Bool {
        ["localhost", "127.0.0.1", "::1", ""].contains(host)
    }

    /// The AF_LOCAL socket of this machine's rpcbind; nil when rpcbind is not running.
    public static var localSocketPath: String? {
        localSocketPaths.first(where: FileSystem.exists)
    }

    /// A client for rpcbind itself on `host`: its AF_LOCAL socket on this machine, else TCP port 111.
    public static func client(host: String = "localhost", timeout: Duration = .seconds(2)) -> RPCClient {
        let endpoint: RPCEndpoint
        if isLocal(host), let path = localSocketPath {
            endpoint = .unix(path: path)
        } else {
            endpoint = .tcp(host: host, port: 111)
        }
        return RPCClient(endpoint: endpoint, program: program, version: version, timeout: timeout, connectTimeout: timeout)
    }

    /// Where `program`/`version` listens on `transport` at `host`, as an endpoint.
    ///
    /// rpcbind answers GETADDR for the netid of the transport the question arrives on
    /// (it ignores the request's r_netid), so the question goes over `transport` itself:
    /// TCP or UDP port 111, or the AF_LOCAL socket for `.local` (this machine only).
    /// When the server registered on several versions, rpcbind may answer with the
    /// address of another version; the call then gets PROG_MISMATCH from the server.
    public static func lookup(
        host: String, program: UInt32, version: UInt32, transport: RPCTransport, timeout: Duration = .seconds(2)
    ) throws(RPCError) -> RPCEndpoint {
        let endpoint: RPCEndpoint
        switch transport {
        case .tcp: endpoint = .tcp(host: host, port: 111)
        case .udp: endpoint = .udp(host: host, port: 111)
        case .local:
            guard isLocal(host), let path = localSocketPath else {
                throw RPCError(status: .unknownProtocol, function: "rpcbind GETADDR",
                               context: "local transport on \(host): only this machine's rpcbind socket (\(localSocketPaths[0])) answers for it")
            }
            endpoint = .unix(path: path)
        }
        let rpcbind = RPCClient(endpoint: endpoint, program: Self.program, version: Self.version, timeout: timeout, connectTimeout: timeout)
        let netid = transport.rawValue
        let address: String? = try withRPCB(program: program, version: version, netid: netid, address: "", owner: "") {
            (argument: inout rpcb) throws(RPCError) -> String? in
            try rpcbind.call(getAddress, &argument, encode: rpcbRoutine, decode: .wrapString,
                             as: UnsafeMutablePointer<CChar>?.self) { result in
                result.pointee.map { String(cString: $0) }
            }
        }
        let context = "\(transport) program \(program) (0x\(String(program, radix: 16))) version \(version) on \(host)"
        guard let address, !address.isEmpty else {
            throw RPCError(status: .programNotRegistered, function: "rpcbind GETADDR", context: context)
        }
        guard let found = Self.endpoint(universalAddress: address, transport: transport, host: host) else {
            throw RPCError(status: .n2aTranslationFailure, function: "rpcbind GETADDR",
                           context: "\(context): cannot read universal address \"\(address)\"")
        }
        return found
    }

    /// Registers `program`/`version` on `transport` at `universalAddress` with the local rpcbind.
    /// Returns false when rpcbind refused (another owner holds the registration).
    @discardableResult
    public static func register(
        program: UInt32, version: UInt32, transport: RPCTransport, universalAddress: String,
        timeout: Duration = .seconds(2)
    ) throws(RPCError) -> Bool {
        try change(set, program: program, version: version, transport: transport, address: universalAddress, timeout: timeout)
    }

    /// Removes the registration of `program`/`version` on `transport` from the local rpcbind.
    @discardableResult
    public static func unregister(
        program: UInt32, version: UInt32, transport: RPCTransport, timeout: Duration = .seconds(2)
    ) throws(RPCError) -> Bool {
        try change(unset, program: program, version: version, transport: transport, address: "", timeout: timeout)
    }

    private static func change(
        _ procedure: UInt32, program: UInt32, version: UInt32, transport: RPCTransport, address: String,
        timeout: Duration
    ) throws(RPCError) -> Bool {
        let rpcbind = client(host: "localhost", timeout: timeout)
        let owner = String(getuid())
        return try withRPCB(program: program, version: version, netid: transport.rawValue, address: address, owner: owner) {
            (argument: inout rpcb) throws(RPCError) -> Bool in
            try rpcbind.call(procedure, &argument, encode: rpcbRoutine, decode: bool, as: Int32.self) { $0.pointee != 0 }
        }
    }

    private static func withRPCB<T>(
        program: UInt32, version: UInt32, netid: String, address: String, owner: String,
        _ body: (inout rpcb) throws(RPCError) -> T
    ) throws(RPCError) -> T {
        let strings = [netid, address, owner].map { (text: String) in strdup(text)! }
        defer { strings.forEach { free($0) } }
        var argument = rpcb(r_prog: rpcprog_t(program), r_vers: rpcvers_t(version),
                            r_netid: strings[0], r_addr: strings[1], r_owner: strings[2])
        return try body(&argument)
    }

    /// Reads a universal address: "h1.h2.h3.h4.p1.p2" (IPv4), "x:y::z.p1.p2" (IPv6), or a path (local).
    public static func endpoint(universalAddress: String, transport: RPCTransport, host: String) -> RPCEndpoint? {
        if transport == .local {
            return universalAddress.hasPrefix("/") ? .unix(path: universalAddress) : nil
        }
        let parts = universalAddress.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3, let high = UInt16(parts[parts.count - 2]), let low = UInt16(parts[parts.count - 1]),
              high < 256, low < 256 else { return nil }
        var address = parts.dropLast(2).joined(separator: ".")
        // A server bound to the wildcard address is reached at the host we asked; on this
        // machine at the loopback address of the same family (a name like "localhost" could
        // resolve to the other family, where nothing listens).
        if address == "0.0.0.0" { address = isLocal(host) ? "127.0.0.1" : host }
        if address == "::" { address = isLocal(host) ? "::1" : host }
        let port = high << 8 | low
        return transport == .tcp ? .tcp(host: address, port: port) : .udp(host: address, port: port)
    }

    /// The universal address of an IP endpoint ("127.0.0.1.15.160" for port 4000).
    public static func universalAddress(host: String, port: UInt16) -> String {
        "\(host).\(port >> 8).\(port & 0xff)"
    }
}
