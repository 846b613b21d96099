import CSystemSupport
import Glibc

/// SOCK_STREAM and SOCK_DGRAM, which Glibc's module imports as an enum only in
/// debug builds.
package enum SocketType: Int32, Sendable {
    case stream = 1
    case datagram = 2
}

/// Who is at the other end of an AF_LOCAL socket, as the kernel recorded it at connect().
package struct PeerIdentity: Sendable, Equatable {
    package var pid: Int32
    package var uid: UInt32
    package var gid: UInt32
}

extension FileDescriptor {
    /// socket(2) with SOCK_CLOEXEC, for `address`'s family.
    package static func socket(family: Int32, _ type: SocketType, nonBlocking: Bool = false) throws(SystemError) -> FileDescriptor {
        let flags = Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = try systemCall("socket") { Glibc.socket(family, type.rawValue | flags, 0) }
        return FileDescriptor(adopting: fd)
    }

    package func bind(to address: SocketAddress) throws(SystemError) {
        _ = try systemCall("bind", path: address.description) { address.withSockaddr { Glibc.bind(rawValue, $0, $1) } }
    }

    package func listen(backlog: Int32 = SOMAXCONN) throws(SystemError) {
        _ = try systemCall("listen") { Glibc.listen(rawValue, backlog) }
    }

    /// accept(2): the new connection (close-on-exec, non-blocking when asked),
    /// or nil when none is waiting (a non-blocking listener).
    package func accept(nonBlocking: Bool) throws(SystemError) -> FileDescriptor? {
        switch try nonBlockingCall("accept", { Glibc.accept(rawValue, nil, nil) }) {
        case .wouldBlock:
            return nil
        case .done(let fd):
            let connection = FileDescriptor(adopting: fd)
            _ = Glibc.fcntl(fd, F_SETFD, FD_CLOEXEC)  // accept4 needs _GNU_SOURCE
            if nonBlocking { try connection.setNonBlocking() }
            return connection
        }
    }

    /// connect(2). True when connected, false when a non-blocking connect is
    /// under way (EINPROGRESS: poll for writable, then `pendingError()`).
    package func connect(to address: SocketAddress) throws(SystemError) -> Bool {
        while address.withSockaddr({ Glibc.connect(rawValue, $0, $1) }) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EINPROGRESS { return false }
            throw SystemError(function: "connect", errno: code, path: address.description)
        }
        return true
    }

    /// connect(2) bounded in time: non-blocking connect, poll, SO_ERROR; the
    /// descriptor's blocking mode is restored afterwards. ETIMEDOUT when late.
    package func connect(to address: SocketAddress, timeout: Duration) throws(SystemError) {
        try setNonBlocking(true)
        if try !connect(to: address) {
            let ready = try wait(for: .writable, timeout: timeout)
            guard !ready.isEmpty else { throw SystemError(function: "connect", errno: ETIMEDOUT, path: address.description) }
            let code = try pendingError()
            guard code == 0 else { throw SystemError(function: "connect", errno: code, path: address.description) }
        }
        try setNonBlocking(false)
    }

    /// SO_ERROR: the error of a non-blocking connect, 0 when it succeeded.
    package func pendingError() throws(SystemError) -> Int32 {
        var code: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        _ = try systemCall("getsockopt(SO_ERROR)") { Glibc.getsockopt(rawValue, SOL_SOCKET, SO_ERROR, &code, &size) }
        return code
    }

    /// setsockopt(2) of a fixed-size value.
    package func setOption<Value: BitwiseCopyable>(_ level: Int32, _ name: Int32, _ value: Value, _ what: String) throws(SystemError) {
        _ = try systemCall("setsockopt(\(what))") {
            withUnsafeBytes(of: value) { Glibc.setsockopt(rawValue, level, name, $0.baseAddress, socklen_t($0.count)) }
        }
    }

    /// TCP_NODELAY: a request or reply is written whole; Nagle must not hold it.
    package func setNoDelay() throws(SystemError) {
        try setOption(Int32(IPPROTO_TCP), TCP_NODELAY, Int32(1), "TCP_NODELAY")
    }

    /// SO_REUSEADDR: a restarted server binds without waiting for TIME_WAIT.
    package func setReuseAddress() throws(SystemError) {
        try setOption(SOL_SOCKET, SO_REUSEADDR, Int32(1), "SO_REUSEADDR")
    }

    /// SO_SNDTIMEO: bounds how long one write() on a blocking socket waits.
    /// Never zero (zero means no bound): at least 1 ms.
    package func setSendTimeout(_ timeout: Duration) throws(SystemError) {
        try setOption(SOL_SOCKET, SO_SNDTIMEO, timeval(max(timeout, .milliseconds(1))), "SO_SNDTIMEO")
    }

    /// SO_RCVBUF (the kernel clamps it to rmem_max).
    package func setReceiveBufferSize(_ bytes: Int32) throws(SystemError) {
        try setOption(SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF")
    }

    /// getsockname(2): the address as bound (the port the kernel chose for port 0).
    package func localAddress() throws(SystemError) -> SocketAddress {
        let (address, result) = SocketAddress.filled(by: { Glibc.getsockname(rawValue, $0, $1) })
        if result != 0 { throw SystemError(function: "getsockname", errno: Glibc.errno) }
        return address
    }

    /// SO_PEERCRED of an AF_LOCAL connection; nil for other sockets.
    package func peerIdentity() -> PeerIdentity? {
        var identity = PeerIdentity(pid: 0, uid: 0, gid: 0)
        guard CSystemSupport_peer_credentials(rawValue, &identity.pid, &identity.uid, &identity.gid) == 0 else { return nil }
        return identity
    }

    /// send(2) with MSG_NOSIGNAL (no SIGPIPE when the peer is gone).
    package func send(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("send") { Glibc.send(rawValue, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends every byte on a blocking socket.
    package func sendAll(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            switch try send(UnsafeRawBufferPointer(rebasing: bytes[done...])) {
            case .done(let count) where count > 0: done += count
            case .done: throw SystemError(function: "send", errno: EIO, detail: "no progress")
            case .wouldBlock: throw SystemError(function: "send", errno: EAGAIN)
            }
        }
    }

    /// sendto(2) of one datagram.
    package func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("sendto") {
            address.withSockaddr { Glibc.sendto(rawValue, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
        }
    }

    /// recvfrom(2) of one datagram: its length and who sent it.
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<(count: Int, from: SocketAddress)> {
        while true {
            var received = 0
            let (address, _) = SocketAddress.filled(by: { pointer, length in
                received = Glibc.recvfrom(rawValue, buffer.baseAddress, buffer.count, 0, pointer, length)
                return 0
            })
            if received >= 0 { return .done((received, address)) }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(function: "recvfrom", errno: code)
        }
    }

    /// shutdown(2) of the writing side: the peer reads end of stream.
    package func shutdownWriting() {
        _ = Glibc.shutdown(rawValue, Int32(SHUT_WR))
    }
}

extension timeval {
    package init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(max(seconds, 0)), tv_usec: Int(max(attoseconds, 0) / 1_000_000_000_000))
    }
}
