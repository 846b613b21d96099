import Glibc
import SystemSupport

/// Sockets for the in-test servers, on SystemSupport: every failure is a
/// thrown `SystemError`, nothing is retried.
enum Sockets {
    /// A TCP or UDP socket bound to 127.0.0.1:`port` (0: any free port).
    /// `receiveBuffer` shrinks SO_RCVBUF before listen, so accepted sockets inherit it.
    static func loopback(datagram: Bool, port: UInt16 = 0, receiveBuffer: Int32? = nil) throws(SystemError) -> FileDescriptor {
        let socket = try FileDescriptor.socket(family: AF_INET, datagram ? .datagram : .stream)
        try socket.setReuseAddress()
        if let receiveBuffer { try socket.setReceiveBufferSize(receiveBuffer) }
        try socket.bind(to: .loopback(port: port))
        return socket
    }

    /// A listening TCP socket on 127.0.0.1.
    static func listenTCP(port: UInt16 = 0, receiveBuffer: Int32? = nil) throws(SystemError) -> FileDescriptor {
        let socket = try loopback(datagram: false, port: port, receiveBuffer: receiveBuffer)
        try socket.listen(backlog: 16)
        return socket
    }

    /// A listening AF_LOCAL stream socket at `path` (removed first if it exists).
    static func listenLocal(path: String) throws(SystemError) -> FileDescriptor {
        try FileSystem.removeFile(path)
        let socket = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        try socket.bind(to: .unix(path: path))
        try socket.listen(backlog: 16)
        return socket
    }

    /// The port a socket was bound to.
    static func port(of socket: borrowing FileDescriptor) throws(SystemError) -> UInt16 {
        try socket.localAddress().port ?? 0
    }
}

/// A unique temporary path for an AF_LOCAL socket, short enough for sun_path.
func temporarySocketPath(_ tag: String) -> String {
    "/tmp/oncrpc-\(tag)-\(Processes.currentID)-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// Runs `body` and returns how long it took.
func measure<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try body()
    return (value, ContinuousClock.now - start)
}
