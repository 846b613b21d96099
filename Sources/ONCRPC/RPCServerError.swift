import SystemSupport

/// Why an `RPCServer` could not start. Each description is one line an operator can act on.
public enum RPCServerError: Error, Sendable, CustomStringConvertible {
    /// Another process listens on this address (EADDRINUSE).
    case addressInUse(RPCServer.Listener)
    /// A live server already answers on this unix socket path.
    case unixSocketInUse(path: String)
    /// A system call failed while opening the listener (socket, bind, listen,
    /// chmod, or building its address): which call, its errno, and on what.
    case system(SystemError, listener: RPCServer.Listener)
    /// The bind address is not an IPv4 literal (or "localhost").
    case invalidAddress(String)
    /// rpcbind did not answer (not running, or its socket is not reachable).
    case rpcbindUnavailable(RPCError)
    /// rpcbind answered but refused the registration (another owner holds it).
    case rpcbindRefused(program: UInt32, version: UInt32, transport: RPCTransport)
    /// rpcbind names another server for this registration, and that server answers.
    case alreadyServed(program: UInt32, version: UInt32, transport: RPCTransport, by: RPCEndpoint)

    public var description: String {
        switch self {
        case .addressInUse(let listener):
            "\(listener) is already in use by another process"
        case .unixSocketInUse(let path):
            "unix socket \(path) is in use by a running server"
        case .system(let error, let listener):
            "\(error.function) failed for \(listener): \(Self.reason(of: error))"
        case .invalidAddress(let host):
            "bind address \"\(host)\" is not an IPv4 address"
        case .rpcbindUnavailable(let error):
            "rpcbind is not reachable (\(error.status.cName), \(error.context)): start it with: rpcbind -w"
        case .rpcbindRefused(let program, let version, let transport):
            "rpcbind refused to register program \(program) version \(version) on \(transport): another owner holds it"
        case .alreadyServed(let program, let version, let transport, let endpoint):
            "program \(program) version \(version) on \(transport) is already served by a running server at \(endpoint) (see rpcinfo): stop it, or serve another --program"
        }
    }

    /// strerror's text, and the call's own detail when it adds to it ("not a socket file").
    private static func reason(of error: SystemError) -> String {
        guard error.errno != 0, let detail = error.detail else { return error.reason }
        return "\(error.reason) (\(detail))"
    }
}
