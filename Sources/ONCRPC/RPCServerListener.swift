import CONCRPC
import CTIRPC
import Glibc

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
struct ListeningSocket {
    let fd: Int32
    /// The listener as bound: port 0 replaced by the port the kernel chose.
    let listener: RPCServer.Listener

    /// Creates, binds and (for streams) listens, non-blocking, close-on-exec.
    static func open(_ listener: RPCServer.Listener) throws(RPCServerError) -> ListeningSocket {
        switch listener {
        case .tcp(let host, let port): try openIP(listener, host: host, port: port, datagram: false)
        case .udp(let host, let port): try openIP(listener, host: host, port: port, datagram: true)
        case .unix(let path, let mode): try openLocal(listener, path: path, mode: mode)
        }
    }

    private static func openIP(_ listener: RPCServer.Listener, host: String, port: UInt16, datagram: Bool) throws(RPCServerError) -> ListeningSocket {
        let literal = host == "localhost" ? "127.0.0.1" : host
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, literal, &address.sin_addr) == 1 else { throw .invalidAddress(host) }

        let type = Int32((datagram ? SOCK_DGRAM : SOCK_STREAM).rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw .socket(function: "socket", errno: errno, listener: listener) }
        var keep = false
        defer { if !keep { close(fd) } }

        if !datagram {
            // Restart without waiting for TIME_WAIT. Not on UDP, where it would let
            // two servers bind the same port and hide "port in use".
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        } else {
            // Room for bursts of 64 KiB datagrams; the kernel clamps it to rmem_max.
            var size: Int32 = 1 << 20
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            throw errno == EADDRINUSE ? .addressInUse(listener) : .socket(function: "bind", errno: errno, listener: listener)
        }
        if !datagram, listen(fd, SOMAXCONN) != 0 {
            throw .socket(function: "listen", errno: errno, listener: listener)
        }
        try setNonBlocking(fd, listener)

        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let actualPort = UInt16(bigEndian: actual.sin_port)
        keep = true
        return ListeningSocket(fd: fd, listener: datagram ? .udp(host: literal, port: actualPort) : .tcp(host: literal, port: actualPort))
    }

    private static func openLocal(_ listener: RPCServer.Listener, path: String, mode: UInt32) throws(RPCServerError) -> ListeningSocket {
        let address: SocketAddress
        do {
            address = try .local(path: path)
        } catch {
            throw .socket(function: "sockaddr_un", errno: ENAMETOOLONG, listener: listener)
        }
        try removeStaleSocket(path, address, listener)

        let fd = socket(AF_LOCAL, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(function: "socket", errno: errno, listener: listener) }
        var keep = false
        defer { if !keep { close(fd) } }

        // bind() creates the file with the umask applied: start owner-only, then
        // chmod to the wanted mode, so it is never wider than asked, not even briefly.
        let previousMask = umask(0o177)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        let bindError = errno
        umask(previousMask)
        guard bound == 0 else {
            throw bindError == EADDRINUSE ? .addressInUse(listener) : .socket(function: "bind", errno: bindError, listener: listener)
        }
        guard chmod(path, mode_t(mode)) == 0 else { throw .socket(function: "chmod", errno: errno, listener: listener) }
        guard listen(fd, SOMAXCONN) == 0 else { throw .socket(function: "listen", errno: errno, listener: listener) }
        try setNonBlocking(fd, listener)
        keep = true
        return ListeningSocket(fd: fd, listener: listener)
    }

    /// A socket file left by a killed server is removed; one that a live server
    /// answers on is not (that is a second instance), nor is a file of another kind.
    private static func removeStaleSocket(_ path: String, _ address: SocketAddress, _ listener: RPCServer.Listener) throws(RPCServerError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw .socket(function: "bind (not a socket file)", errno: EEXIST, listener: listener)
        }
        let probe = socket(AF_LOCAL, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if probe >= 0 {
            let connected = address.withSockaddr { connect(probe, $0, $1) } == 0
            close(probe)
            if connected { throw .unixSocketInUse(path: path) }
        }
        unlink(path)
    }

    private static func setNonBlocking(_ fd: Int32, _ listener: RPCServer.Listener) throws(RPCServerError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .socket(function: "fcntl(O_NONBLOCK)", errno: errno, listener: listener)
        }
    }
}
