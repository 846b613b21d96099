import Foundation
import Glibc
import Synchronization

/// Just enough of RFC 5531 to answer calls by hand, so the client can be tested
/// against replies the real daemons never send (PROG_MISMATCH, silence, a
/// server that stops reading).
enum RawRPC {
    /// A decoded call header; the arguments are left as bytes.
    struct Call {
        var xid: UInt32
        var program: UInt32
        var version: UInt32
        var procedure: UInt32
    }

    /// What the server puts in an accepted reply.
    enum Reply: Sendable {
        /// SUCCESS with a void result.
        case success
        /// PROG_MISMATCH with the versions the server has.
        case programMismatch(low: UInt32, high: UInt32)
    }

    static func word(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt32? {
        let start = bytes.startIndex + offset
        guard start >= bytes.startIndex, start + 4 <= bytes.endIndex else { return nil }
        return bytes[start..<start + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Parses a call message (no record mark). Nil when it is not a call.
    static func parseCall(_ message: ArraySlice<UInt8>) -> Call? {
        guard let xid = word(message, 0), word(message, 4) == 0, word(message, 8) == 2,
              let program = word(message, 12), let version = word(message, 16), let procedure = word(message, 20)
        else { return nil }
        return Call(xid: xid, program: program, version: version, procedure: procedure)
    }

    static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// An accepted reply to `xid` (no record mark), with an AUTH_NONE verifier.
    static func reply(xid: UInt32, _ reply: Reply) -> [UInt8] {
        var bytes: [UInt8] = []
        for value in [xid, 1 /* REPLY */, 0 /* MSG_ACCEPTED */, 0 /* AUTH_NONE */, 0 /* verifier length */] {
            append(value, to: &bytes)
        }
        switch reply {
        case .success:
            append(0, to: &bytes)  // SUCCESS, then the void result: nothing
        case .programMismatch(let low, let high):
            append(2, to: &bytes)  // PROG_MISMATCH
            append(low, to: &bytes)
            append(high, to: &bytes)
        }
        return bytes
    }

    /// Prefixes a record mark: one last fragment.
    static func recordMarked(_ message: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        append(0x8000_0000 | UInt32(message.count), to: &bytes)
        return bytes + message
    }

    /// Splits complete records off the front of `buffer` (fragments joined).
    static func takeRecords(from buffer: inout [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var record: [UInt8] = []
        var offset = 0
        var consumed = 0
        while let mark = word(buffer[...], offset) {
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

/// A minimal ONC RPC server over a raw stream socket (TCP on 127.0.0.1, or
/// AF_LOCAL), run by one thread with a bounded poll loop.
final class StreamResponder: @unchecked Sendable {
    enum Behaviour: Sendable {
        /// Read each call and answer it.
        case answer(RawRPC.Reply)
        /// Read each call and never answer: a stopped server, as the client sees it.
        case neverAnswer
        /// Accept and never read, so the client's send buffers fill.
        case neverRead
        /// Accept and close at once: a server that died.
        case closeOnAccept
    }

    let port: UInt16
    let path: String?
    private let listener: Int32
    private let behaviour: Behaviour
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let counters = Mutex<(accepted: Int, calls: Int)>((0, 0))

    var accepted: Int { counters.withLock { $0.accepted } }
    var calls: Int { counters.withLock { $0.calls } }

    /// A TCP server on 127.0.0.1:`port` (0: a free port).
    init(tcpPort: UInt16 = 0, receiveBuffer: Int32? = nil, _ behaviour: Behaviour) throws {
        (listener, port) = try Sockets.listenTCP(port: tcpPort, receiveBuffer: receiveBuffer)
        path = nil
        self.behaviour = behaviour
        start()
    }

    /// An AF_LOCAL server at `path`.
    init(path: String, _ behaviour: Behaviour) throws {
        listener = try Sockets.listenLocal(path: path)
        port = 0
        self.path = path
        self.behaviour = behaviour
        start()
    }

    private func start() {
        Sockets.setNonBlocking(listener)
        let thread = Thread { [self] in run() }
        thread.name = "StreamResponder"
        thread.start()
    }

    /// Stops the thread (bounded wait), closing the listener and every connection. Idempotent.
    func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        _ = finished.wait(timeout: .now() + 5)
        if let path { unlink(path) }
    }

    private func run() {
        var connections: [Int32: [UInt8]] = [:]
        defer {
            connections.keys.forEach { close($0) }
            close(listener)
            finished.signal()
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            var polled = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            if case .neverRead = behaviour {} else {
                polled += connections.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            }
            guard poll(&polled, nfds_t(polled.count), 20) > 0 else { continue }
            for entry in polled where entry.revents != 0 {
                if entry.fd == listener {
                    let fd = accept(listener, nil, nil)
                    guard fd >= 0 else { continue }
                    counters.withLock { $0.accepted += 1 }
                    if case .closeOnAccept = behaviour {
                        close(fd)
                    } else {
                        connections[fd] = []
                    }
                    continue
                }
                let count = read(entry.fd, &chunk, chunk.count)
                guard count > 0 else {
                    close(entry.fd)
                    connections[entry.fd] = nil
                    continue
                }
                connections[entry.fd, default: []] += chunk[0..<count]
                for record in RawRPC.takeRecords(from: &connections[entry.fd, default: []]) {
                    guard let call = RawRPC.parseCall(record[...]) else { continue }
                    counters.withLock { $0.calls += 1 }
                    if case .answer(let reply) = behaviour {
                        let bytes = RawRPC.recordMarked(RawRPC.reply(xid: call.xid, reply))
                        _ = bytes.withUnsafeBytes { write(entry.fd, $0.baseAddress, $0.count) }
                    }
                }
            }
        }
    }
}

/// A minimal ONC RPC server on a UDP socket on 127.0.0.1.
final class DatagramResponder: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    /// How long to hold each reply, by call number (from 0); calls past the end are answered at once.
    private let delays: [Duration]
    private let answers: Bool
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let counter = Mutex<Int>(0)

    var calls: Int { counter.withLock { $0 } }

    /// `answers: false` is a socket that receives and never answers.
    init(port: UInt16 = 0, answers: Bool = true, delays: [Duration] = []) throws {
        (fd, self.port) = try Sockets.loopback(datagram: true, port: port)
        self.delays = delays
        self.answers = answers
        let thread = Thread { [self] in run() }
        thread.name = "DatagramResponder"
        thread.start()
    }

    /// Stops the thread (bounded wait) and closes the socket. Idempotent.
    func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        _ = finished.wait(timeout: .now() + 5)
    }

    private func run() {
        defer {
            close(fd)
            finished.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, 20) > 0 else { continue }
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &peerLength) }
            }
            guard count > 0, let call = RawRPC.parseCall(buffer[0..<count]) else { continue }
            let number = counter.withLock { calls in
                defer { calls += 1 }
                return calls
            }
            guard answers else { continue }
            if number < delays.count {
                // Blocking this thread is the point: the reply arrives after the client gave up.
                let delay = delays[number]
                usleep(UInt32(delay.components.seconds * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000))
            }
            let reply = RawRPC.reply(xid: call.xid, .success)
            _ = reply.withUnsafeBytes { bytes in
                withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, peerLength)
                    }
                }
            }
        }
    }
}
