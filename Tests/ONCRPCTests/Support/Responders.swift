import Glibc
import Synchronization
import SystemSupport
import TestSupport

/// A minimal ONC RPC server over a raw stream socket (TCP on 127.0.0.1, or
/// AF_LOCAL), run by one thread with a bounded poll loop, answering with
/// `RawRPC`'s bytes: replies the real daemons never send.
final class StreamResponder: @unchecked Sendable {
    // @unchecked: after init, `listener` and the connections belong to the
    // responder's thread (which closes them as it ends); the rest is atomic or locked.
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

    /// An accepted connection and what it sent that is not a whole record yet.
    private final class Peer {
        let socket: FileDescriptor
        var received: [UInt8] = []
        init(_ socket: consuming FileDescriptor) { self.socket = socket }
    }

    let port: UInt16
    let path: String?
    private var listener: FileDescriptor?
    private let behaviour: Behaviour
    private let stopping = Atomic<Bool>(false)
    private let finished = WakeSignal()
    private let counters = Locked<(accepted: Int, calls: Int)>((0, 0))

    var accepted: Int { counters.withLock { $0.accepted } }
    var calls: Int { counters.withLock { $0.calls } }

    /// A TCP server on 127.0.0.1:`port` (0: a free port).
    init(tcpPort: UInt16 = 0, receiveBuffer: Int32? = nil, _ behaviour: Behaviour) throws {
        let socket = try Sockets.listenTCP(port: tcpPort, receiveBuffer: receiveBuffer)
        port = try Sockets.port(of: socket)
        try socket.setNonBlocking()
        listener = .some(socket)
        path = nil
        self.behaviour = behaviour
        start()
    }

    /// An AF_LOCAL server at `path`.
    init(path: String, _ behaviour: Behaviour) throws {
        let socket = try Sockets.listenLocal(path: path)
        try socket.setNonBlocking()
        listener = .some(socket)
        port = 0
        self.path = path
        self.behaviour = behaviour
        start()
    }

    private func start() {
        NamedThread(name: "StreamResponder") { [self] in run() }.detach()
    }

    /// Stops the thread (bounded wait), which closes the listener and every connection:
    /// a server that died, as its clients see it. Idempotent.
    func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        _ = finished.wait(timeout: .seconds(5), clearing: false)
        if let path { try? FileSystem.removeFile(path) }
    }

    deinit { stop() }

    private func run() {
        var peers: [Int32: Peer] = [:]
        var polled: [Peer] = []
        defer {
            polled.removeAll()
            peers.removeAll()  // closes them
            listener = nil
            finished.signal()
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var pollSet = PollSet()
        while !stopping.load(ordering: .sequentiallyConsistent) {
            pollSet.removeAll()
            polled.removeAll(keepingCapacity: true)
            pollSet.add(listener?.rawValue ?? -1, .readable)
            if case .neverRead = behaviour {} else {
                for peer in peers.values {
                    pollSet.add(peer.socket.rawValue, .readable)
                    polled.append(peer)
                }
            }
            guard (try? pollSet.wait(timeout: .milliseconds(20))) ?? 0 > 0 else { continue }
            if !pollSet.ready(0).isEmpty, let socket = try? listener?.accept(nonBlocking: false) {
                counters.withLock { $0.accepted += 1 }
                if case .closeOnAccept = behaviour {
                    _ = consume socket
                } else {
                    let peer = Peer(socket)
                    peers[peer.socket.rawValue] = peer
                }
            }
            for (index, peer) in polled.enumerated() where !pollSet.ready(1 + index).isEmpty {
                let count = chunk.withUnsafeMutableBytes { (try? peer.socket.read(into: $0)) ?? 0 }
                guard count > 0 else {
                    peers[peer.socket.rawValue] = nil
                    continue
                }
                peer.received += chunk[0..<count]
                for record in RawRPC.takeRecords(from: &peer.received) {
                    guard let call = RawRPC.parseCall(record) else { continue }
                    counters.withLock { $0.calls += 1 }
                    if case .answer(let reply) = behaviour {
                        _ = try? peer.socket.writeAll(RawRPC.recordMarked(RawRPC.reply(xid: call.xid, reply)))
                    }
                }
            }
        }
    }
}

/// A minimal ONC RPC server on a UDP socket on 127.0.0.1.
final class DatagramResponder: @unchecked Sendable {
    // @unchecked: after init, the socket belongs to the responder's thread (which
    // closes it as it ends); the settings are read-only; the rest is atomic or locked.
    let port: UInt16
    private var socket: FileDescriptor?
    /// How long to hold each reply, by call number (from 0); calls past the end are answered at once.
    private let delays: [Duration]
    private let answers: Bool
    private let stopping = Atomic<Bool>(false)
    private let finished = WakeSignal()
    private let counter = Locked<Int>(0)

    var calls: Int { counter.withLock { $0 } }

    /// `answers: false` is a socket that receives and never answers.
    init(port: UInt16 = 0, answers: Bool = true, delays: [Duration] = []) throws {
        let socket = try Sockets.loopback(datagram: true, port: port)
        self.port = try Sockets.port(of: socket)
        self.socket = .some(socket)
        self.delays = delays
        self.answers = answers
        NamedThread(name: "DatagramResponder") { [self] in run() }.detach()
    }

    /// Stops the thread (bounded wait), which closes the socket. Idempotent.
    func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        _ = finished.wait(timeout: .seconds(5), clearing: false)
    }

    deinit { stop() }

    private func run() {
        defer {
            socket = nil
            finished.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            guard let ready = try? socket?.wait(for: .readable, timeout: .milliseconds(20)), !ready.isEmpty else { continue }
            guard case .done(let (count, peer))? = buffer.withUnsafeMutableBytes({ try? socket?.receive(into: $0) }),
                  count > 0, let call = RawRPC.parseCall(buffer[0..<count]) else { continue }
            let number = counter.withLock { calls in
                defer { calls += 1 }
                return calls
            }
            guard answers else { continue }
            if number < delays.count {
                // Blocking this thread is the point: the reply arrives after the client gave up.
                SystemClock.sleep(delays[number])
            }
            _ = RawRPC.reply(xid: call.xid, .success).withUnsafeBytes { try? socket?.send($0, to: peer) }
        }
    }
}
