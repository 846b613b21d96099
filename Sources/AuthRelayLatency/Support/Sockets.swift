import Glibc

/// A stream socket address on this machine: what the ping-pong floor uses.
enum LocalStreamAddress: Sendable, CustomStringConvertible {
    case unix(path: String)
    case tcp(port: UInt16)

    var description: String {
        switch self {
        case .unix(let path): "unix \(path)"
        case .tcp(let port): "tcp 127.0.0.1:\(port)"
        }
    }
}

/// Plain BSD sockets for the raw floor; errors name the call and the address.
enum Sockets {
    /// A listening socket: AF_UNIX at `path`, or TCP on 127.0.0.1 with a port the kernel picks.
    static func listen(unixPath path: String?) throws(LatencyError) -> (fd: Int32, address: LocalStreamAddress) {
        if let path {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw LatencyError("socket(AF_UNIX): \(errnoText())") }
            unlink(path)
            let bound = withUnixAddress(path) { bind(fd, $0, $1) }
            guard bound == 0, Glibc.listen(fd, 64) == 0 else {
                let text = errnoText()
                close(fd)
                throw LatencyError("cannot listen on unix \(path): \(text)")
            }
            return (fd, .unix(path: path))
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LatencyError("socket(AF_INET): \(errnoText())") }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let text = errnoText()
            close(fd)
            throw LatencyError("cannot listen on tcp 127.0.0.1: \(text)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, .tcp(port: UInt16(bigEndian: address.sin_port)))
    }

    /// A connected stream socket, TCP_NODELAY on TCP (what an RPC client sets too).
    static func connect(_ address: LocalStreamAddress) throws(LatencyError) -> Int32 {
        let result: Int32
        let fd: Int32
        switch address {
        case .unix(let path):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw LatencyError("socket(AF_UNIX): \(errnoText())") }
            result = withUnixAddress(path) { Glibc.connect(fd, $0, $1) }
        case .tcp(let port):
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw LatencyError("socket(AF_INET): \(errnoText())") }
            var target = loopback(port: port)
            result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard result == 0 else {
            let text = errnoText()
            close(fd)
            throw LatencyError("cannot connect to \(address): \(text)")
        }
        if case .tcp = address { setNoDelay(fd) }
        return fd
    }

    /// accept(2) with FD_CLOEXEC set (accept4 needs _GNU_SOURCE, which Glibc's module leaves out).
    static func accept(_ listener: Int32) -> Int32 {
        let fd = Glibc.accept(listener, nil, nil)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fd
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Reads exactly `count` bytes; false at end of stream or on error.
    static func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Bool {
        var done = 0
        while done < count {
            let got = read(fd, buffer + done, count - done)
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return false }
            done += got
        }
        return true
    }

    /// Writes all `count` bytes; false on error.
    static func writeFully(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Bool {
        var done = 0
        while done < count {
            let sent = write(fd, buffer + done, count - done)
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return false }
            done += sent
        }
        return true
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    static func withUnixAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1))
            }
        }
    }
}
