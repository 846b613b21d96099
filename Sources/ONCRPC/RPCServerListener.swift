import Glibc
import SystemSupport

extension RPCServer {
    /// An address the server listens on.
    public enum Listener: Sendable, Equatable, CustomStringConvertible {
        /// TCP on an IPv4 address; port 0 takes any free port.
        case tcp(host: String, port: UInt16)
        /// UDP on an IPv4 address; port 0 takes any free port.
        case udp(host: String, port: UInt16)
        /// An AF_LOCAL stream socket, created with `mode` (owner and group only by default).
        case unix(path: String, mode: UInt32 = 0o660)

        public var transport: RPCTransport {
            switch self {
            case .tcp: .tcp
            case .udp: .udp
            case .unix: .local
            }
        }

        /// Where a client reaches this listener.
        public var endpoint: RPCEndpoint {
            switch self {
            case .tcp(let host, let port): .tcp(host: host, port: port)
            case .udp(let host, let port): .udp(host: host, port: port)
            case .unix(let path, _): .unix(path: path)
            }
        }

        /// rpcbind's universal address: "h1.h2.h3.h4.p1.p2", or the socket path.
        var universalAddress: String {
            switch self {
            case .tcp(let host, let port), .udp(let host, let port):
                RPCBind.universalAddress(host: host, port: port)
            case .unix(let path, _):
                path
            }
        }

        public var description: String {
            switch self {
            case .tcp(let host, let port): "tcp \(host):\(port)"
            case .udp(let host, let port): "udp \(host):\(port)"
            case .unix(let path, _): "unix \(path)"
            }
        }
    }
}

/// A socket the server created and bound itself: non-blocking, close-on-exec.
/// It owns the descriptor; `close()` closes it (and removes a unix socket's file).
final class ListeningSocket {
    /// The descriptor, for poll (valid until `close()`).
    let fd: Int32
    /// The listener as bound: port 0 replaced by the port the kernel chose.
    let listener: RPCServer.Listener
    private var socket: FileDescriptor?

    private init(_ socket: consuming FileDescriptor, _ listener: RPCServer.Listener) {
        fd = socket.rawValue
        self.listener = listener
        self.socket = .some(socket)
    }

    /// Creates, binds and (for streams) listens, non-blocking, close-on-exec.
    static func open(_ listener: RPCServer.Listener) throws(RPCServerError) -> ListeningSocket {
        switch listener {
        case .tcp(let host, let port): try openIP(listener, host: host, port: port, datagram: false)
        case .udp(let host, let port): try openIP(listener, host: host, port: port, datagram: true)
        case .unix(let path, let mode): try openLocal(listener, path: path, mode: mode)
        }
    }

    /// The next waiting connection, close-on-exec, non-blocking when asked; nil when none is waiting.
    func accept(nonBlocking: Bool) throws(SystemError) -> FileDescriptor? {
        try socket?.accept(nonBlocking: nonBlocking) ?? nil
    }

    /// One datagram into `buffer`: its length and who sent it; nil when none is waiting or it failed.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, from: SocketAddress)? {
        guard case .done(let datagram)? = try? socket?.receive(into: buffer) else { return nil }
        return datagram
    }

    /// Sends one datagram (MSG_NOSIGNAL); a failure is the peer's loss, as on any UDP server.
    func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress) {
        _ = try? socket?.send(bytes, to: address)
    }

    /// Closes the socket, once, and removes a unix socket's file.
    func close() {
        guard socket != nil else { return }
        socket = nil
        if case .unix(let path, _) = listener { try? FileSystem.removeFile(path) }
    }

    private static func openIP(_ listener: RPCServer.Listener, host: String, port: UInt16, datagram: Bool) throws(RPCServerError) -> ListeningSocket {
        let literal = host == "localhost" ? "127.0.0.1" : host
        guard let address = try? SocketAddress.ipv4(literal, port: port) else { throw .invalidAddress(host) }
        do {
            let socket = try FileDescriptor.socket(family: AF_INET, datagram ? .datagram : .stream)
            if !datagram {
                // Restart without waiting for TIME_WAIT. Not on UDP, where it would let
                // two servers bind the same port and hide "port in use".
                try? socket.setReuseAddress()
            } else {
                // Room for bursts of 64 KiB datagrams; the kernel clamps it to rmem_max.
                try? socket.setReceiveBufferSize(1 << 20)
            }
            try socket.bind(to: address)
            if !datagram { try socket.listen() }
            try socket.setNonBlocking()
            let actualPort = try socket.localAddress().port ?? port
            let bound: RPCServer.Listener = datagram ? .udp(host: literal, port: actualPort) : .tcp(host: literal, port: actualPort)
            return ListeningSocket(socket, bound)
        } catch {
            throw error.errno == EADDRINUSE ? .addressInUse(listener) : .system(error, listener: listener)
        }
    }

    private static func openLocal(_ listener: RPCServer.Listener, path: String, mode: UInt32) throws(RPCServerError) -> ListeningSocket {
        let address: SocketAddress
        do {
            address = try SocketAddress.unix(path: path)  // ENAMETOOLONG when it does not fit sockaddr_un
        } catch {
            throw .system(error, listener: listener)
        }
        try removeStaleSocket(path, address, listener)
        do {
            let socket = try FileDescriptor.socket(family: AF_LOCAL, .stream)
            // Never wider than `mode`, not even briefly, and without touching the umask.
            try socket.bind(unixPath: path, mode: mode_t(mode))
            try socket.listen()
            try socket.setNonBlocking()
            return ListeningSocket(socket, listener)
        } catch {
            throw error.errno == EADDRINUSE ? .addressInUse(listener) : .system(error, listener: listener)
        }
    }

    /// A socket file left by a killed server is removed; one that a live server
    /// answers on is not (that is a second instance), nor is a file of another kind.
    private static func removeStaleSocket(_ path: String, _ address: SocketAddress, _ listener: RPCServer.Listener) throws(RPCServerError) {
        guard let status = try? FileSystem.status(path, followingLinks: false) else { return }
        guard status.kind == .socket else {
            throw .system(SystemError(function: "bind", errno: EEXIST, path: path, detail: "not a socket file"), listener: listener)
        }
        if let probe = try? FileDescriptor.socket(family: AF_LOCAL, .stream), (try? probe.connect(to: address)) == true {
            throw .unixSocketInUse(path: path)
        }
        try? FileSystem.removeFile(path)
    }
}
