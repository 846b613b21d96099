import AuthRelayHarness
import Glibc  // AF_LOCAL, AF_INET
import Synchronization
import SystemSupport

/// A socket that two threads use: the echo thread reads and writes it, and
/// `EchoServer.stop()` shuts it down to end that thread. Shared as an object,
/// so the descriptor is closed only once neither holds it (never a raw number
/// that could be closed and reused under the other).
private final class SharedSocket: Sendable {
    let descriptor: FileDescriptor
    init(_ descriptor: consuming FileDescriptor) { self.descriptor = descriptor }
}

/// The floor under any IPC: a raw ping-pong over a stream socket with no RPC,
/// the payload the size of an encoded event, echoed back by a thread in this
/// process. What RPC adds on the same transport is the difference.
final class EchoServer: @unchecked Sendable {
    // @unchecked: `thread` is set in init and read only by stop(), on the thread that made the server.
    let address: SocketAddress
    private let listener: SharedSocket
    private let payloadSize: Int
    private let stopping = Atomic<Bool>(false)
    /// The connection being served, so stop() can end it even while a client holds it open.
    private let serving = Locked<SharedSocket?>(nil)
    private var thread: NamedThread?

    /// Listens on AF_LOCAL at `unixPath`, or on TCP 127.0.0.1 with a port the kernel picks when nil.
    init(unixPath: String?, payloadSize: Int) throws(LatencyError) {
        do {
            let socket: FileDescriptor
            if let unixPath {
                let path = try SocketAddress.unix(path: unixPath)  // refuses a path that does not fit
                socket = try FileDescriptor.socket(family: AF_LOCAL, .stream)
                try? FileSystem.removeFile(unixPath)
                try socket.bind(to: path)
            } else {
                socket = try FileDescriptor.socket(family: AF_INET, .stream)
                try socket.bind(to: .loopback(port: 0))
            }
            try socket.listen(backlog: 64)
            address = try socket.localAddress()
            listener = SharedSocket(socket)
        } catch {
            throw LatencyError("raw ping-pong: cannot listen on \(unixPath.map { "unix \($0)" } ?? "tcp 127.0.0.1")", system: error)
        }
        self.payloadSize = payloadSize
        thread = NamedThread(name: "latency-echo") { [self] in serve() }
    }

    /// Ends the echo thread, and the connection it serves.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        listener.descriptor.shutdownReadingAndWriting()
        serving.withLock { $0?.descriptor.shutdownReadingAndWriting() }
        thread.take()?.join()
        if address.family == AF_LOCAL { try? FileSystem.removeFile(address.host) }
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: payloadSize)
        while !stopping.load(ordering: .relaxed) {
            // Fails once stop() has shut the listener down.
            guard let accepted = try? listener.descriptor.accept(nonBlocking: false) else { return }
            let connection = SharedSocket(accepted)
            serving.withLock { $0 = connection }
            if stopping.load(ordering: .relaxed) { connection.descriptor.shutdownReadingAndWriting() }
            if address.family == AF_INET { try? connection.descriptor.setNoDelay() }
            buffer.withUnsafeMutableBytes { raw in
                while Self.echo(connection.descriptor, raw) {}
            }
            serving.withLock { $0 = nil }
        }
    }

    /// Reads one payload and writes it back; false at end of stream or on an error.
    private static func echo(_ connection: borrowing FileDescriptor, _ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard (try? connection.readFully(into: buffer)) == buffer.count else { return false }
        return (try? connection.writeAll(UnsafeRawBufferPointer(buffer))) != nil
    }
}

/// The client side of the floor: one connection, one round trip per call.
final class PingPongClient {
    private let socket: FileDescriptor
    private var payload: [UInt8]

    /// Connects to `address`, with TCP_NODELAY on TCP (what an RPC client sets too).
    init(_ address: SocketAddress, payloadSize: Int) throws(LatencyError) {
        do {
            socket = try FileDescriptor.socket(family: address.family, .stream)
            _ = try socket.connect(to: address)
            if address.family == AF_INET { try socket.setNoDelay() }
        } catch {
            throw LatencyError("raw ping-pong: cannot connect to \(address)", system: error)
        }
        payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0) }
    }

    /// One round trip; throws when the echo is gone.
    func roundTrip() throws(LatencyError) {
        let failure = payload.withUnsafeMutableBytes { raw -> SystemError? in
            do throws(SystemError) {
                try socket.writeAll(UnsafeRawBufferPointer(raw))
                if try socket.readFully(into: raw) < raw.count {
                    return SystemError(function: "read", errno: 0, detail: "the echo closed the connection")
                }
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw LatencyError("raw ping-pong: the echo connection failed", system: failure) }
    }
}
