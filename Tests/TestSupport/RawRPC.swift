import AuthRelayProtocol
import Glibc
import ONCRPC
import SystemSupport

/// ONC RPC (RFC 5531) and XDR (RFC 4506) bytes made by hand, for tests that
/// work below the libraries: replies the real servers never send (PROG_MISMATCH,
/// silence), calls no client would make (fields over their bounds, lying
/// lengths, odd fragments), and the words of a reply read back. The one byte
/// builder every test target uses.
package enum RawRPC {
    /// XDR written word by word. Counted fields may declare a length other than
    /// what they carry, which is the point of most bad-input tests.
    package struct XDR {
        package var bytes: [UInt8] = []

        package init() {}

        /// The bytes `build` writes: `RawRPC.XDR.build { $0.eventBatch(events: 3) }`.
        package static func build(_ build: (inout XDR) -> Void) -> [UInt8] {
            var xdr = XDR()
            build(&xdr)
            return xdr.bytes
        }

        package mutating func word(_ value: UInt32) {
            bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        }

        package mutating func hyper(_ value: UInt64) {
            word(UInt32(value >> 32))
            word(UInt32(value & 0xFFFF_FFFF))
        }

        /// A string or variable opaque: length, bytes, padding. `declaredLength` may lie.
        package mutating func opaque(_ content: [UInt8], declaredLength: UInt32? = nil) {
            word(declaredLength ?? UInt32(content.count))
            bytes += content
            bytes += [UInt8](repeating: 0, count: (4 - content.count % 4) % 4)
        }

        package mutating func string(_ text: String) { opaque(Array(text.utf8)) }

        /// An `ar_event`: 52 bytes of fixed fields (sequence, a timestamp, open,
        /// allow, a decision time, pid 10, ppid 1, uid, gid and flags 0), then the
        /// three counted fields, given as raw bytes so they may break their bounds.
        package mutating func event(sequence: UInt64, exe: [UInt8] = Array("/bin/sh".utf8),
                                    target: [UInt8] = Array("/etc/hosts".utf8), digest: [UInt8] = []) {
            hyper(sequence)
            hyper(1_700_000_000_000_000_000)
            word(1)  // open
            word(0)  // allow
            hyper(100)
            for value: UInt32 in [10, 1, 0, 0, 0] { word(value) }  // pid ppid uid gid flags
            opaque(exe)
            opaque(target)
            opaque(digest)
        }

        /// An `ar_event_batch` (REPORT_BATCH's argument): header, then `events`
        /// events numbered from `first`, under an array length of `declaredEvents`.
        package mutating func eventBatch(
            agent: [UInt8] = Array("raw-agent".utf8), boot: [UInt8] = Array("raw-boot".utf8), bootLength: UInt32? = nil,
            first: UInt64 = 1, dropped: UInt64 = 0, events: Int, declaredEvents: UInt32? = nil,
            exe: [UInt8] = Array("/bin/sh".utf8), target: [UInt8] = Array("/etc/hosts".utf8), digest: [UInt8] = []
        ) {
            opaque(agent)
            opaque(boot, declaredLength: bootLength)
            hyper(first)
            hyper(dropped)
            word(declaredEvents ?? UInt32(events))
            for index in 0..<events {
                event(sequence: first + UInt64(index), exe: exe, target: target, digest: digest)
            }
        }
    }

    /// The big-endian word at `offset`, nil past the end.
    package static func word(_ bytes: some Collection<UInt8>, _ offset: Int) -> UInt32? {
        guard offset >= 0, bytes.count - offset >= 4 else { return nil }
        return bytes.dropFirst(offset).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Every whole word of `bytes`.
    package static func words(_ bytes: some Collection<UInt8>) -> [UInt32] {
        let array = Array(bytes)
        return stride(from: 0, to: array.count - 3, by: 4).map { word(array, $0)! }
    }

    // MARK: Calls

    /// A CALL message (no record mark) with AUTH_NONE credential and verifier.
    package static func call(
        xid: UInt32 = 7, rpcVersion: UInt32 = 2, program: UInt32 = AuthRelayProgram.program, version: UInt32,
        procedure: UInt32, arguments: [UInt8] = []
    ) -> [UInt8] {
        var message = XDR()
        for value in [xid, 0 /* CALL */, rpcVersion, program, version, procedure, 0, 0, 0, 0] { message.word(value) }
        return message.bytes + arguments
    }

    /// The header fields of a call the tests' servers look at.
    package struct Call: Sendable {
        package var xid: UInt32
        package var program: UInt32
        package var version: UInt32
        package var procedure: UInt32
    }

    /// Reads a call message (no record mark); nil when it is not an RPC version 2 call.
    package static func parseCall(_ message: some Collection<UInt8>) -> Call? {
        let bytes = Array(message)
        guard let xid = word(bytes, 0), word(bytes, 4) == 0, word(bytes, 8) == 2,
              let program = word(bytes, 12), let version = word(bytes, 16), let procedure = word(bytes, 20)
        else { return nil }
        return Call(xid: xid, program: program, version: version, procedure: procedure)
    }

    // MARK: Replies

    /// What a hand-made server puts in an accepted reply.
    package enum Reply: Sendable {
        /// SUCCESS with a void result.
        case success
        /// PROG_MISMATCH with the versions the server has.
        case programMismatch(low: UInt32, high: UInt32)
    }

    /// An accepted reply to `xid` (no record mark), with an AUTH_NONE verifier.
    package static func reply(xid: UInt32, _ reply: Reply) -> [UInt8] {
        var message = XDR()
        for value in [xid, 1 /* REPLY */, 0 /* MSG_ACCEPTED */, 0 /* AUTH_NONE */, 0 /* verifier length */] { message.word(value) }
        switch reply {
        case .success:
            message.word(0)  // SUCCESS, then the void result: nothing
        case .programMismatch(let low, let high):
            message.word(2)  // PROG_MISMATCH
            message.word(low)
            message.word(high)
        }
        return message.bytes
    }

    /// The words of an accepted reply after the xid: REPLY, MSG_ACCEPTED, the null verifier, and `acceptStatus`.
    package static func acceptedReplyHeader(_ acceptStatus: UInt32) -> [UInt32] { [1, 0, 0, 0, acceptStatus] }

    /// The words of a denied reply after the xid: REPLY, MSG_DENIED, RPC_MISMATCH, and the RPC versions served.
    package static func rpcMismatchReply(low: UInt32, high: UInt32) -> [UInt32] { [1, 1, 0, low, high] }

    // MARK: Records

    /// `message` as one record: a record mark (last fragment) in front.
    package static func recordMarked(_ message: [UInt8]) -> [UInt8] {
        var mark = XDR()
        mark.word(0x8000_0000 | UInt32(message.count))
        return mark.bytes + message
    }

    /// `message` as a record of fragments of `size` bytes each, every one with its
    /// mark, the last one flagged: to send piece by piece.
    package static func fragments(_ message: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: max(message.count, 1), by: size).map { start in
            let end = min(start + size, message.count)
            var mark = XDR()
            mark.word((end == message.count ? 0x8000_0000 : 0) | UInt32(end - start))
            return mark.bytes + message[start..<end]
        }
    }

    /// Splits complete records off the front of `buffer` (fragments joined).
    package static func takeRecords(from buffer: inout [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var record: [UInt8] = []
        var offset = 0
        var consumed = 0
        while let mark = word(buffer, offset) {
            let length = Int(mark & 0x7fff_ffff)
            guard offset + 4 + length <= buffer.count else { break }
            record += buffer[(offset + 4)..<(offset + 4 + length)]
            offset += 4 + length
            if mark & 0x8000_0000 != 0 {
                records.append(record)
                record = []
                consumed = offset
            }
        }
        buffer.removeFirst(consumed)
        return records
    }
}

extension RawRPC {
    /// A blocking client socket for hand-made bytes: TCP or UDP to 127.0.0.1 at
    /// the endpoint's port, or a unix socket path. Every send and every wait for
    /// bytes is bounded by `timeout`; failures read as false or nil, since what a
    /// test asks is whether the server answered.
    package final class Connection {
        private let socket: FileDescriptor
        private let timeout: Duration

        /// Connects (for UDP: sets the peer datagrams go to and come from).
        package init(_ endpoint: RPCEndpoint, timeout: Duration = .seconds(5)) throws(SystemError) {
            let address: SocketAddress
            switch endpoint {
            case .tcp(_, let port), .udp(_, let port): address = .loopback(port: port)
            case .unix(let path): address = try .unix(path: path)
            case .rpcbind: throw SystemError(function: "connect", errno: EINVAL, detail: "an rpcbind endpoint has no address")
            }
            let socket = try FileDescriptor.socket(family: address.family, endpoint.transport == .udp ? .datagram : .stream)
            try socket.setSendTimeout(timeout)
            _ = try socket.connect(to: address)
            self.socket = socket
            self.timeout = timeout
        }

        /// Sends every byte (MSG_NOSIGNAL); false when the peer closed or the send timed out.
        @discardableResult
        package func send(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBytes { raw in (try? socket.sendAll(raw)) != nil }
        }

        /// One read of what has arrived, waiting up to the timeout; nil on timeout or error.
        private func readSome(_ buffer: UnsafeMutableRawBufferPointer) -> Int? {
            guard let ready = try? socket.wait(for: .readable, timeout: timeout), !ready.isEmpty else { return nil }
            return try? socket.read(into: buffer)
        }

        /// Exactly `count` bytes, or nil on end of stream, error or timeout.
        package func receive(_ count: Int) -> [UInt8]? {
            var bytes = [UInt8](repeating: 0, count: count)
            var have = 0
            while have < count {
                let got = bytes.withUnsafeMutableBytes { readSome(UnsafeMutableRawBufferPointer(rebasing: $0[have...])) }
                guard let got, got > 0 else { return nil }
                have += got
            }
            return bytes
        }

        /// One reply record (stream) as words, or nil when the server closed or did not answer.
        package func receiveReply() -> [UInt32]? {
            guard let mark = receive(4), let header = RawRPC.word(mark, 0) else { return nil }
            let length = Int(header & 0x7FFF_FFFF)
            guard length < 1 << 20, let body = receive(length) else { return nil }
            return RawRPC.words(body)
        }

        /// One datagram reply as words.
        package func receiveDatagram() -> [UInt32]? {
            var bytes = [UInt8](repeating: 0, count: 65_536)
            guard let count = bytes.withUnsafeMutableBytes({ readSome($0) }), count > 0 else { return nil }
            return RawRPC.words(bytes[0..<count])
        }

        /// True when the server closed the connection (or reset it) within the timeout.
        package func closedByPeer() -> Bool {
            var byte: UInt8 = 0
            while true {
                guard let ready = try? socket.wait(for: .readable, timeout: timeout), !ready.isEmpty else { return false }
                do {
                    if try withUnsafeMutableBytes(of: &byte, { raw in try socket.read(into: raw) }) == 0 { return true }
                } catch {
                    return (error as? SystemError)?.errno == ECONNRESET
                }
            }
        }
    }
}
