import AuthRelay
import AuthRelayProtocol
import Foundation
import ONCRPC
import Testing

/// A blocking socket with timeouts, for sending hand-made bytes to a server.
final class RawSocket {
    let fd: Int32

    /// Connects to TCP on loopback, a unix socket path, or (for `.udp`) sets the default peer.
    init(_ endpoint: RPCEndpoint, timeout: Duration = .seconds(5)) throws {
        switch endpoint {
        case .tcp(_, let port), .udp(_, let port):
            let datagram = endpoint.transport == .udp
            fd = socket(AF_INET, Int32(datagram ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            try RawSocket.setTimeouts(fd, timeout)
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard status == 0 else { throw RawSocketError.connect(errno) }
        case .unix(let path):
            fd = socket(AF_LOCAL, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_LOCAL)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            try RawSocket.setTimeouts(fd, timeout)
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard status == 0 else { throw RawSocketError.connect(errno) }
        case .rpcbind:
            throw RawSocketError.connect(EINVAL)
        }
    }

    deinit { close(fd) }

    private static func setTimeouts(_ fd: Int32, _ timeout: Duration) throws {
        guard fd >= 0 else { throw RawSocketError.connect(errno) }
        let seconds = timeout.components.seconds
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends every byte; false when the peer closed or the send timed out.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if result <= 0 { return false }
            sent += result
        }
        return true
    }

    /// Reads exactly `count` bytes, or nil on end of stream, error or timeout.
    func receive(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var have = 0
        while have < count {
            let result = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + have, count - have, 0) }
            if result <= 0 { return nil }
            have += result
        }
        return bytes
    }

    /// One reply record (stream) as words, or nil when the server closed or did not answer.
    func receiveReply() -> [UInt32]? {
        guard let mark = receive(4) else { return nil }
        let length = Int(XDRBytes.word(mark, 0) & 0x7FFF_FFFF)
        guard length < 1 << 20, let body = receive(length) else { return nil }
        return stride(from: 0, to: body.count - 3, by: 4).map { XDRBytes.word(body, $0) }
    }

    /// One datagram reply as words.
    func receiveDatagram() -> [UInt32]? {
        var bytes = [UInt8](repeating: 0, count: 65_536)
        let count = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return stride(from: 0, to: count - 3, by: 4).map { XDRBytes.word(bytes, $0) }
    }

    /// True when the server closed the connection within the receive timeout.
    func closedByPeer() -> Bool {
        var byte: UInt8 = 0
        while true {
            let result = recv(fd, &byte, 1, 0)
            if result == 0 { return true }
            if result < 0 { return errno == ECONNRESET }
        }
    }
}

enum RawSocketError: Error {
    case connect(Int32)
}

/// Hand-made XDR: the words and opaque fields an RPC call is made of.
struct XDRBytes {
    var bytes: [UInt8] = []

    static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    mutating func word(_ value: UInt32) {
        bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    mutating func hyper(_ value: UInt64) {
        word(UInt32(value >> 32))
        word(UInt32(value & 0xFFFF_FFFF))
    }

    /// A string or variable opaque: length, bytes, padding. `declaredLength` may lie.
    mutating func opaque(_ content: [UInt8], declaredLength: UInt32? = nil) {
        word(declaredLength ?? UInt32(content.count))
        bytes += content
        bytes += [UInt8](repeating: 0, count: (4 - content.count % 4) % 4)
    }

    mutating func string(_ text: String) { opaque(Array(text.utf8)) }

    /// An ar_event with raw path bytes.
    mutating func event(sequence: UInt64, exe: [UInt8] = Array("/bin/sh".utf8), target: [UInt8] = Array("/etc/hosts".utf8),
                        digest: [UInt8] = []) {
        hyper(sequence)
        hyper(1_700_000_000_000_000_000)
        word(1)  // open
        word(0)  // allow
        hyper(100)
        word(10); word(1); word(0); word(0); word(0)  // pid ppid uid gid flags
        opaque(exe)
        opaque(target)
        opaque(digest)
    }

    /// A whole CALL record (AUTH_NONE), with its record mark.
    static func call(xid: UInt32 = 7, rpcVersion: UInt32 = 2, program: UInt32 = AuthRelayProgram.program, version: UInt32,
                     procedure: UInt32, arguments: [UInt8] = []) -> [UInt8] {
        var body = XDRBytes()
        for value in [xid, 0, rpcVersion, program, version, procedure, 0, 0, 0, 0] { body.word(value) }
        body.bytes += arguments
        var record = XDRBytes()
        record.word(0x8000_0000 | UInt32(body.bytes.count))
        return record.bytes + body.bytes
    }
}

/// What every bad-input test ends with: a valid client is served on tcp and unix.
func expectServed(_ daemon: CollectorDaemon, sequence: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
    for endpoint in [daemon.tcp, daemon.unix] {
        let client = CollectorClient(endpoint: endpoint, timeout: .seconds(5))
        do {
            let ack = try client.report(Reports.batch(agent: "valid-\(endpoint.transport)", first: sequence, count: 3))
            #expect(ack.status == .ok, sourceLocation: sourceLocation)
        } catch {
            Issue.record("a valid client was not served over \(endpoint): \(error)", sourceLocation: sourceLocation)
        }
    }
}
