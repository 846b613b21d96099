import CONCRPC

/// Writes an accepted (or AUTH_ERROR) reply to a call: the header, then the
/// result encoded with the procedure's XDR routine. The dispatcher uses it
/// for the replies it writes at once, `RPCCompletion` for deferred ones.
enum RPCReplyEncoder {
    /// The reply with its record mark when `framed` (a stream), alone for a datagram.
    static func append(_ reply: RPCReply, xid: UInt32, result: XDRRoutine, resultMemory: UnsafeMutableRawPointer,
                       framed: Bool, to output: ByteBuffer) {
        let start = output.count
        if framed { output.appendWord(0) }
        // A stream reply is one fragment: its length must fit the mark's 31 bits.
        let limit = framed ? 0x7FFF_FFFF : Int(UInt32.max)
        appendBody(reply, xid: xid, result: result, resultMemory: resultMemory, limit: limit, to: output)
        if framed { output.setWord(0x8000_0000 | UInt32(output.count - start - 4), at: start) }
    }

    /// The header and the result, in at most `limit` bytes for the result's
    /// part; a result that does not encode (or fit) is answered SYSTEM_ERR.
    static func appendBody(_ reply: RPCReply, xid: UInt32, result: XDRRoutine, resultMemory: UnsafeMutableRawPointer,
                           limit: Int, to output: ByteBuffer) {
        switch reply {
        case .result:
            let header = output.count
            RPCServerMessage.acceptedHeader(xid: xid, .success).forEach(output.appendWord)
            if !encodeResult(result, resultMemory, into: output, limit: limit - 24) {
                output.count = header
                RPCServerMessage.acceptedHeader(xid: xid, .systemError).forEach(output.appendWord)
            }
        case .systemError, .deferred:
            RPCServerMessage.acceptedHeader(xid: xid, .systemError).forEach(output.appendWord)
        case .garbageArguments:
            RPCServerMessage.acceptedHeader(xid: xid, .garbageArguments).forEach(output.appendWord)
        case .tooWeakAuthentication:
            RPCServerMessage.authError(xid: xid, RPCServerMessage.authTooWeak).forEach(output.appendWord)
        }
    }

    /// Encodes the result after the header, in at most `limit` bytes; sizes it
    /// first only when it does not fit 4 KiB.
    private static func encodeResult(_ routine: XDRRoutine, _ value: UnsafeMutableRawPointer, into output: ByteBuffer,
                                     limit: Int) -> Bool {
        output.reserve(output.count + 4096)
        let room = { UInt32(clamping: min(output.capacity - output.count, limit)) }
        var written = CONCRPC_xdr_encode(routine.routine, value, output.base! + output.count, room())
        if written < 0 {
            let size = Int(CONCRPC_xdr_sizeof(routine.routine, value))
            guard size <= limit else { return false }
            output.reserve(output.count + size)
            written = CONCRPC_xdr_encode(routine.routine, value, output.base! + output.count, room())
        }
        guard written >= 0 else { return false }
        output.count += written
        return true
    }
}
