import ONCRPC
import SystemSupport

/// Why the collector could not start: one line an operator can act on.
public enum CollectorStartError: Error, Sendable, CustomStringConvertible {
    /// The data directory could not be created, locked or read.
    case dataDirectory(path: String, SystemError)
    case dataDirectoryInUse(path: String)
    /// The checkpoint is there but is not one.
    case state(path: String, reason: String)
    case output(SinkError)
    /// The RPC server could not bind, listen or register.
    case server(RPCServerError)

    public var description: String {
        switch self {
        case .dataDirectory(let path, let error):
            "data directory \(path): \(error)"
        case .dataDirectoryInUse(let path):
            "data directory \(path) is in use by another collector"
        case .state(let path, let reason):
            "state file \(path): \(reason)"
        case .output(let error):
            "cannot write the output: \(error)"
        case .server(.rpcbindUnavailable(let error)):
            "\(RPCServerError.rpcbindUnavailable(error)), or run with --no-rpcbind"
        case .server(let error):
            "\(error)"
        }
    }
}
