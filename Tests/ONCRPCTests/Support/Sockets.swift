import Foundation
import Glibc

/// Thin socket helpers for the in-test servers: every failure is a thrown
/// `SocketFailure` carrying the function and errno, nothing is retried.
struct SocketFailure: Error, CustomStringConvertible {
    let function: String
    let errno: Int32
    var description: String { "\(function): \(String(cString: strerror(errno)))" }
}

enum Sockets {
    /// A TCP or UDP socket bound to 127.0.0.1:`port` (0: any free port).
    /// `receiveBuffer` shrinks SO_RCVBUF before listen, so accepted sockets inherit it.
    static func loopback(datagram: Bool, port: UInt16 = 0, receiveBuffer: Int32? = nil) throws -> (fd: Int32, port: UInt16) {
        let type = datagram ? SOCK_DGRAM : SOCK_STREAM
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure(function: "socket", errno: errno) }
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if let receiveBuffer { try setOption(fd, SOL_SOCKET, SO_RCVBUF, receiveBuffer) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw SocketFailure(function: "bind", errno: errno) }
            return (fd, try localPort(fd))
        } catch {
            close(fd)
            throw error
        }
    }

    /// A listening TCP socket on 127.0.0.1.
    static func listenTCP(port: UInt16 = 0, receiveBuffer: Int32? = nil) throws -> (fd: Int32, port: UInt16) {
        let (fd, bound) = try loopback(datagram: false, port: port, receiveBuffer: receiveBuffer)
        guard listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw SocketFailure(function: "listen", errno: code)
        }
        return (fd, bound)
    }

    /// A listening AF_LOCAL stream socket at `path` (removed first if it exists).
    static func listenLocal(path: String) throws -> Int32 {
        unlink(path)
        let fd = socket(AF_LOCAL, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure(function: "socket", errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_LOCAL)
        let bytes = Array(path.utf8)
        precondition(bytes.count < MemoryLayout.size(ofValue: address.sun_path), "socket path too long: \(path)")
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw SocketFailure(function: "bind/listen", errno: code)
        }
        return fd
    }

    static func localPort(_ fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        guard status == 0 else { throw SocketFailure(function: "getsockname", errno: errno) }
        return UInt16(bigEndian: address.sin_port)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SocketFailure(function: "setsockopt", errno: errno)
        }
    }

    static func setNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
}

/// A unique temporary path for an AF_LOCAL socket, short enough for sun_path.
func temporarySocketPath(_ tag: String) -> String {
    "/tmp/oncrpc-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// Runs `body` and returns how long it took.
func measure<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try body()
    return (value, ContinuousClock.now - start)
}
