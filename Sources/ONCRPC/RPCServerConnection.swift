import SystemSupport

/// A growable byte buffer: what the server has read, a record being
/// assembled, the replies not yet sent. Storage is allocated on first use and
/// can be released, so an idle connection holds none.
final class ByteBuffer {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    var count = 0

    deinit { base?.deallocate() }

    /// Makes room for `total` bytes in all, growing by doubling.
    func reserve(_ total: Int) {
        guard total > capacity else { return }
        var newCapacity = max(capacity * 2, 4096)
        while newCapacity < total { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let base {
            newBase.copyMemory(from: base, byteCount: count)
            base.deallocate()
        }
        base = newBase
        capacity = newCapacity
    }

    /// Frees the storage (when empty), e.g. after an unusually large record.
    func release() {
        base?.deallocate()
        base = nil
        capacity = 0
        count = 0
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func append(_ source: UnsafeRawPointer, count length: Int) {
        reserve(count + length)
        (base! + count).copyMemory(from: source, byteCount: length)
        count += length
    }

    func appendWord(_ value: UInt32) {
        reserve(count + 4)
        (base! + count).storeBytes(of: value.bigEndian, toByteOffset: 0, as: UInt32.self)
        count += 4
    }

    func setWord(_ value: UInt32, at offset: Int) {
        base!.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
}

/// One accepted stream connection: the server frames its records itself.
///
/// Why not libtirpc's stream transport (1.3.3): in blocking mode (svc_fd_create,
/// or svc_vc_create without a record cap) read_vc waits up to 35 s for the rest
/// of a record, so one client that stops halfway stalls every other one. The
/// non-blocking mode (RPC_SVC_CONNMAXREC_SET, applied by svc_vc_create's
/// rendezvous only, not to svc_fd_create's transports) caps records, but its
/// __xdrrec_getrec never clears `last_frag` (it starts TRUE), so every record
/// ends at its first fragment: a batch sent in several fragments (a unix client
/// sends 9000-byte fragments) is cut short and answered GARBAGE_ARGS.
/// Here the socket is non-blocking, a record is assembled across reads and
/// fragments up to a cap (`RPCRecordFramer`), and memory grows only with bytes
/// actually received.
final class StreamConnection {
    /// The descriptor, for poll and the server's table (valid until `close()`).
    let fd: Int32
    let transport: RPCTransport
    /// Kernel credentials of an AF_LOCAL peer, taken at accept.
    let peer: PeerCredentials?
    /// The server's serial number for it: what a deferred reply names it by.
    let id: UInt64
    /// Calls whose replies were deferred and are not written yet.
    var deferredReplies = 0
    /// CLOCK_MONOTONIC nanoseconds of the last byte received.
    var lastActivity: UInt64

    /// Cuts the stream into records; made at the first read, with the server's cap.
    private var framer: RPCRecordFramer?
    /// Replies encoded and not yet written; while there are some, the connection is not read.
    let output = ByteBuffer()
    private var outputSent = 0
    /// The argument of the record in progress, decoded as it arrives (see RPCIncrementalDecoder).
    var incremental = IncrementalArgument.notStarted
    /// Owned: closed once, by `close()`.
    private var socket: FileDescriptor?

    /// Takes a connection `accept` returned (non-blocking): AF_LOCAL peers' credentials are read now.
    init(_ socket: consuming FileDescriptor, transport: RPCTransport, id: UInt64, now: UInt64) {
        fd = socket.rawValue
        self.transport = transport
        self.id = id
        peer = transport == .local ? socket.peerIdentity().map(PeerCredentials.init) : nil
        lastActivity = now
        self.socket = .some(socket)
    }

    /// Frees an argument decoded ahead and closes the socket; once.
    func close() {
        endRecord()
        socket = nil
    }

    var hasPendingOutput: Bool { outputSent < output.count }

    enum ReadOutcome {
        case open
        /// End of stream or a socket error.
        case closed
        /// A fragment would take the record past the cap.
        case recordTooLarge(Int)
        /// A record that is not an RPC call: the stream is out of step.
        case notACall
    }

    /// Reads what the socket has (one read, into `buffer`, the server's: the framer
    /// keeps what it needs of it) and feeds it to the framer: every complete record
    /// goes to `handle`, which returns false when the record is not a call, then
    /// what has arrived of a record still incomplete to `partial`.
    func read(into buffer: ByteBuffer, chunkSize: Int, maxRecordSize: Int, _ handle: (UnsafeRawBufferPointer) -> Bool,
              partial: (UnsafeRawBufferPointer) -> Void) -> ReadOutcome {
        buffer.reserve(chunkSize)
        let space = UnsafeMutableRawBufferPointer(start: buffer.base, count: buffer.capacity)
        let received: Int
        switch try? socket?.readNonBlocking(into: space) {
        case .done(let count)? where count > 0: received = count
        case .wouldBlock?: return .open
        default: return .closed  // end of stream, a socket error, or closed
        }
        let framer = self.framer ?? RPCRecordFramer(maxRecordSize: maxRecordSize)
        self.framer = framer
        let outcome = framer.feed(UnsafeRawBufferPointer(rebasing: space[..<received]), { record in
            defer { endRecord() }
            return handle(record)
        }, partial: partial)
        switch outcome {
        case .open: return .open
        case .recordTooLarge(let size): return .recordTooLarge(size)
        case .outOfStep: return .notACall
        }
    }

    /// Frees an argument decoded ahead that was not used, before the next record or the close.
    func endRecord() {
        incremental.end()
    }

    /// Writes pending replies; false when the socket failed.
    func flush() -> Bool {
        while outputSent < output.count {
            // MSG_NOSIGNAL: a client gone away is a failed send, never SIGPIPE.
            let pending = UnsafeRawBufferPointer(start: output.base! + outputSent, count: output.count - outputSent)
            switch try? socket?.send(pending) {
            case .done(let written)?: outputSent += written
            case .wouldBlock?: return true
            default: return false
            }
        }
        output.count = 0
        outputSent = 0
        if output.capacity > 1 << 20 { output.release() }
        return true
    }
}
