import SystemSupport

/// A growable byte buffer: what a connection has read, the record being
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

    /// Drops the first `length` bytes, keeping the rest at the start.
    func removeFirst(_ length: Int) {
        guard length > 0 else { return }
        if length < count, let base {
            base.copyMemory(from: base + length, byteCount: count - length)
        }
        count -= min(length, count)
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
/// fragments up to a cap, and memory grows only with bytes actually received.
final class StreamConnection {
    /// The descriptor, for poll and the server's table (valid until `close()`).
    let fd: Int32
    let transport: RPCTransport
    /// Kernel credentials of an AF_LOCAL peer, taken at accept.
    let peer: PeerCredentials?
    /// CLOCK_MONOTONIC nanoseconds of the last byte received.
    var lastActivity: UInt64

    private let input = ByteBuffer()
    private let record = ByteBuffer()
    /// Replies encoded and not yet written; while there are some, the connection is not read.
    let output = ByteBuffer()
    private var outputSent = 0
    private var fragmentRemaining = 0
    private var inFragment = false
    private var lastFragment = false
    /// The argument of the record in progress, decoded as it arrives (see RPCIncrementalDecoder).
    var incremental = IncrementalArgument.notStarted
    /// Owned: closed once, by `close()`.
    private var socket: FileDescriptor?

    enum IncrementalArgument {
        /// The record's call header has not been looked at yet.
        case notStarted
        /// Decoding; the argument starts at this offset of the record.
        case decoding(RPCIncrementalDecoder, argumentsOffset: Int)
        /// Not for this record: the procedure has no incremental decoder, or it gave up.
        case notUsed
    }

    /// Takes a connection `accept` returned (non-blocking): AF_LOCAL peers' credentials are read now.
    init(_ socket: consuming FileDescriptor, transport: RPCTransport, now: UInt64) {
        fd = socket.rawValue
        self.transport = transport
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

    /// Reads what the socket has (one read) and hands every complete record to
    /// `handle`, which returns false when the record is not a call, then what
    /// has arrived of a record still incomplete to `partial`.
    func read(maxRecordSize: Int, chunkSize: Int, _ handle: (UnsafeRawBufferPointer) -> Bool,
              partial: (UnsafeRawBufferPointer) -> Void) -> ReadOutcome {
        input.reserve(chunkSize)
        let space = UnsafeMutableRawBufferPointer(start: input.base! + input.count, count: input.capacity - input.count)
        switch try? socket?.readNonBlocking(into: space) {
        case .done(let received)? where received > 0: input.count += received
        case .wouldBlock?: return .open
        default: return .closed  // end of stream, a socket error, or closed
        }
        var offset = 0
        defer { input.removeFirst(offset) }
        let bytes = input.bytes
        while true {
            if !inFragment {
                guard bytes.count - offset >= 4 else { break }
                let header = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                offset += 4
                let length = Int(header & 0x7FFF_FFFF)
                guard record.count + length <= maxRecordSize else { return .recordTooLarge(record.count + length) }
                fragmentRemaining = length
                lastFragment = header & 0x8000_0000 != 0
                inFragment = true
                // The common case: a whole one-fragment record is already here; no copy.
                if lastFragment, record.count == 0, bytes.count - offset >= length {
                    inFragment = false
                    let whole = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
                    offset += length
                    let isCall = handle(whole)
                    endRecord()
                    guard isCall else { return .notACall }
                    continue
                }
            }
            let take = min(fragmentRemaining, bytes.count - offset)
            if take > 0 {
                record.append(bytes.baseAddress! + offset, count: take)
                offset += take
                fragmentRemaining -= take
            }
            guard fragmentRemaining == 0 else { break }
            inFragment = false
            if lastFragment {
                let isCall = handle(record.bytes)
                endRecord()
                // A record far above the usual size does not keep its memory while idle.
                if record.capacity > 1 << 20 { record.release() } else { record.count = 0 }
                guard isCall else { return .notACall }
            }
        }
        if record.count > 0 { partial(record.bytes) }
        return .open
    }

    /// Frees an argument decoded ahead that was not used, before the next record or the close.
    func endRecord() {
        if case .decoding(let decoder, _) = incremental { decoder.reset() }
        incremental = .notStarted
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
