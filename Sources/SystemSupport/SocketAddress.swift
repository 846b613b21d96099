import Glibc

/// A socket address owned as bytes: AF_LOCAL, AF_INET or AF_INET6. The one
/// place addresses are built, so a path or host that does not fit is refused
/// with a clear error instead of being cut short.
package struct SocketAddress: Sendable, CustomStringConvertible {
    package private(set) var storage = sockaddr_storage()
    package private(set) var length: socklen_t = 0

    package var family: Int32 { Int32(storage.ss_family) }

    private init() {}

    /// An AF_LOCAL address. Refuses an empty path, a NUL in it, or one longer
    /// than sockaddr_un holds (107 bytes): ENAMETOOLONG, never truncated.
    package static func unix(path: String) throws(SystemError) -> SocketAddress {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_LOCAL)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, !bytes.contains(0) else {
            throw SystemError(function: "sockaddr_un", errno: EINVAL, path: path, detail: "not a socket path")
        }
        guard bytes.count < capacity else {
            throw SystemError(function: "sockaddr_un", errno: ENAMETOOLONG, path: path,
                              detail: "a unix socket path holds at most \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        var result = SocketAddress()
        withUnsafeMutableBytes(of: &result.storage) { target in
            withUnsafeBytes(of: address) { target.copyMemory(from: $0) }
        }
        result.length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return result
    }

    /// An AF_INET address from a dotted literal ("localhost" reads as 127.0.0.1).
    package static func ipv4(_ host: String, port: UInt16) throws(SystemError) -> SocketAddress {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let literal = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, literal, &address.sin_addr) == 1 else {
            throw SystemError(function: "inet_pton", errno: EINVAL, path: host, detail: "not an IPv4 address")
        }
        return SocketAddress(copying: address)
    }

    /// 127.0.0.1:`port`.
    package static func loopback(port: UInt16) -> SocketAddress {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return SocketAddress(copying: address)
    }

    /// Every address of `host` (a literal or a name) for a stream or datagram
    /// socket, in getaddrinfo's order ("localhost" may give ::1 first).
    package static func resolve(host: String, port: UInt16, datagram: Bool) throws(SystemError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(datagram ? SocketType.datagram.rawValue : SocketType.stream.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, list != nil else {
            let reason = status == 0 ? "no address" : String(cString: gai_strerror(status))
            throw SystemError(function: "getaddrinfo", errno: status == EAI_SYSTEM ? Glibc.errno : 0, path: host, detail: reason)
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var next = list
        while let entry = next {
            var address = SocketAddress()
            let count = min(Int(entry.pointee.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
            withUnsafeMutableBytes(of: &address.storage) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(start: entry.pointee.ai_addr, count: count))
            }
            address.length = socklen_t(count)
            addresses.append(address)
            next = entry.pointee.ai_next
        }
        return addresses
    }

    init<Address>(copying address: Address) {
        withUnsafeMutableBytes(of: &storage) { target in
            withUnsafeBytes(of: address) { target.copyMemory(from: $0) }
        }
        length = socklen_t(MemoryLayout<Address>.size)
    }

    /// An address the kernel filled in (recvfrom, getsockname), with the call's result.
    static func filled(by body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> (SocketAddress, Int32) {
        var address = SocketAddress()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
        }
        address.length = length
        return (address, result)
    }

    package func withSockaddr<T, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> T) throws(E) -> T {
        try withUnsafeBytes(of: storage) { (raw) throws(E) -> T in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// The bytes of the address (libtirpc copies them out of a netbuf).
    package func withBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        withUnsafeBytes(of: storage) { body(UnsafeRawBufferPointer(rebasing: $0[..<Int(length)])) }
    }

    /// The port of an AF_INET or AF_INET6 address.
    package var port: UInt16? {
        switch family {
        case AF_INET: withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port) }
        case AF_INET6: withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port) }
        default: nil
        }
    }

    /// The host as text ("127.0.0.1", "::1"), the socket path for AF_LOCAL.
    package var host: String {
        switch family {
        case AF_INET, AF_INET6:
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = withUnsafeBytes(of: storage) { raw in
                family == AF_INET
                    ? withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { inet_ntop(AF_INET, $0.baseAddress, &text, socklen_t(text.count)) }
                    : withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
            }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case AF_LOCAL:
            let offset = MemoryLayout<sa_family_t>.size
            return withUnsafeBytes(of: storage) { raw in
                let bytes = raw[offset..<Int(max(length, socklen_t(offset)))].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
        default:
            return "family \(family)"
        }
    }

    package var description: String {
        switch family {
        case AF_INET: "\(host):\(port ?? 0)"
        case AF_INET6: "[\(host)]:\(port ?? 0)"
        default: host
        }
    }
}
