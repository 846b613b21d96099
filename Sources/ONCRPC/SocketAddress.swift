import CONCRPC  // SOCK_STREAM, SOCK_DGRAM: Glibc alone does not export them in release builds
import Glibc

/// A resolved socket address, owned as bytes so it can be handed to libtirpc
/// (which copies it) and kept across reconnects.
struct SocketAddress: Sendable {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    var family: Int32 { Int32(storage.ss_family) }

    /// Resolves a host (numeric literal or name) and port for a stream or datagram socket:
    /// every address, in getaddrinfo's order (a name such as "localhost" can give ::1
    /// before 127.0.0.1, and a server may listen on only one of them).
    static func resolve(host: String, port: UInt16, datagram: Bool) throws(RPCError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(datagram ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, list != nil else {
            let reason = status == 0 ? "no address" : String(cString: gai_strerror(status))
            throw RPCError(status: .unknownHost, function: "getaddrinfo", context: "\(host): \(reason)")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var next = list
        while let entry = next {
            var address = SocketAddress()
            let length = min(Int(entry.pointee.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
            withUnsafeMutableBytes(of: &address.storage) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(start: entry.pointee.ai_addr, count: length))
            }
            address.length = socklen_t(length)
            addresses.append(address)
            next = entry.pointee.ai_next
        }
        return addresses
    }

    /// An AF_LOCAL address; fails when the path does not fit sockaddr_un.
    static func local(path: String) throws(RPCError) -> SocketAddress {
        var unixAddress = sockaddr_un()
        unixAddress.sun_family = sa_family_t(AF_LOCAL)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: unixAddress.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw RPCError(status: .unknownAddress, errno: ENAMETOOLONG, function: "sockaddr_un", context: path)
        }
        withUnsafeMutableBytes(of: &unixAddress.sun_path) { $0.copyBytes(from: bytes) }
        var address = SocketAddress()
        withUnsafeMutableBytes(of: &address.storage) { target in
            withUnsafeBytes(of: unixAddress) { target.copyMemory(from: $0) }
        }
        address.length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return address
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

/// Small helpers over socket options, all failures reported as RPCError.
enum SocketOptions {
    static func set<Value: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Value, _ what: String) throws(RPCError) {
        let status = withUnsafeBytes(of: value) { setsockopt(fd, level, name, $0.baseAddress, socklen_t($0.count)) }
        if status != 0 {
            throw RPCError.system("setsockopt(\(what))")
        }
    }

    /// Bounds how long one write() on a blocking socket may wait, so a stopped
    /// peer with full buffers cannot hold a send for seconds (libtirpc does not bound it).
    /// Never zero: a zero SO_SNDTIMEO means "block forever".
    static func setSendTimeout(_ fd: Int32, _ timeout: Duration) throws(RPCError) {
        try set(fd, SOL_SOCKET, SO_SNDTIMEO, timeval(max(timeout, .milliseconds(1))), "SO_SNDTIMEO")
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(max(seconds, 0)), tv_usec: Int(max(attoseconds, 0) / 1_000_000_000_000))
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
