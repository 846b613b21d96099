import AuthRelay
import Glibc
import Synchronization
import SystemSupport

/// The floor under any IPC: a raw ping-pong over a stream socket with no RPC,
/// the payload the size of an encoded event, echoed back by a thread in this
/// process. What RPC adds on the same transport is the difference.
final class EchoServer: @unchecked Sendable {
    // @unchecked: `thread` is set in init and read only by stop(), on the thread that made the server.
    let address: LocalStreamAddress
    private let listener: Int32
    private let payloadSize: Int
    private let stopping = Atomic<Bool>(false)
    /// The connection being served, so stop() can end it even while a client holds it open.
    private let serving = Atomic<Int32>(-1)
    private var thread: NamedThread?

    /// Listens on `unixPath`, or on TCP loopback when nil.
    init(unixPath: String?, payloadSize: Int) throws(LatencyError) {
        (listener, address) = try Sockets.listen(unixPath: unixPath)
        self.payloadSize = payloadSize
        thread = NamedThread(name: "latency-echo") { [self] in serve() }
    }

    /// Ends the echo thread, and the connection it serves.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        let connection = serving.load(ordering: .relaxed)
        if connection >= 0 { shutdown(connection, Int32(SHUT_RDWR)) }
        thread.take()?.join()
        close(listener)
        if case .unix(let path) = address { unlink(path) }
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: payloadSize)
        while !stopping.load(ordering: .relaxed) {
            let connection = Sockets.accept(listener)
            guard connection >= 0 else {
                if errno == EINTR { continue }
                return
            }
            serving.store(connection, ordering: .relaxed)
            if stopping.load(ordering: .relaxed) { shutdown(connection, Int32(SHUT_RDWR)) }
            if case .tcp = address { Sockets.setNoDelay(connection) }
            buffer.withUnsafeMutableBytes { raw in
                while Sockets.readFully(connection, raw.baseAddress!, raw.count),
                      Sockets.writeFully(connection, raw.baseAddress!, raw.count) {}
            }
            serving.store(-1, ordering: .relaxed)
            close(connection)
        }
    }
}

/// The client side of the floor: one connection, one round trip per call.
final class PingPongClient {
    private let fd: Int32
    private var payload: [UInt8]

    init(_ address: LocalStreamAddress, payloadSize: Int) throws(LatencyError) {
        fd = try Sockets.connect(address)
        payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0) }
    }

    deinit { close(fd) }

    /// One round trip; throws when the echo is gone.
    func roundTrip() throws(LatencyError) {
        let ok = payload.withUnsafeMutableBytes { raw in
            Sockets.writeFully(fd, raw.baseAddress!, raw.count) && Sockets.readFully(fd, raw.baseAddress!, raw.count)
        }
        guard ok else { throw LatencyError("raw ping-pong: the echo connection failed: \(errnoText())") }
    }
}
