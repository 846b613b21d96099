/// The ONC RPC message header (RFC 5531), read and written by hand: a call is
/// fourteen words and two opaque fields, a reply six words and a result.
enum RPCServerMessage {
    /// The parts of a CALL the server needs; the arguments start at `argumentsOffset`.
    struct Call {
        var xid: UInt32
        var rpcVersion: UInt32
        var program: UInt32
        var version: UInt32
        var procedure: UInt32
        var credentialFlavor: UInt32
        var argumentsOffset: Int
    }

    /// Auth flavors accepted as they are: AUTH_NONE and AUTH_SYS (never trusted,
    /// only let through, as the libtirpc server does). Others get AUTH_REJECTEDCRED.
    static let acceptedFlavors: Set<UInt32> = [0, 1]
    /// The largest credential or verifier body (RFC 5531's MAX_AUTH_BYTES).
    static let maxAuthBytes = 400
    /// Ten words and the two bodies: a record this long that does not parse never will.
    static let maxCallHeaderBytes = 10 * 4 + 2 * maxAuthBytes

    /// Reads a call header, or nil when the bytes are not one (the stream is then
    /// out of step and the connection is closed, as libtirpc does). A prefix of a
    /// record that holds the whole header parses to the same call as the record.
    static func parseCall(_ record: UnsafeRawBufferPointer) -> Call? {
        var reader = Reader(record)
        guard let xid = reader.word(), reader.word() == 0,  // msg_type CALL
              let rpcVersion = reader.word(), let program = reader.word(),
              let version = reader.word(), let procedure = reader.word(),
              let flavor = reader.word(), reader.skipOpaque(max: maxAuthBytes),
              reader.word() != nil, reader.skipOpaque(max: maxAuthBytes)  // verifier
        else { return nil }
        return Call(xid: xid, rpcVersion: rpcVersion, program: program, version: version, procedure: procedure,
                    credentialFlavor: flavor, argumentsOffset: reader.offset)
    }

    /// accept_stat of an accepted reply.
    enum AcceptStatus: UInt32 {
        case success = 0
        case programUnavailable = 1
        case programMismatch = 2
        case procedureUnavailable = 3
        case garbageArguments = 4
        case systemError = 5
    }

    /// The header of an accepted reply (with a null verifier); a result or the
    /// mismatch range follows.
    static func acceptedHeader(xid: UInt32, _ status: AcceptStatus) -> [UInt32] {
        [xid, 1, 0, 0, 0, status.rawValue]  // REPLY, MSG_ACCEPTED, AUTH_NONE verifier of length 0
    }

    /// A denied reply: RPC_MISMATCH (supports 2 only) or AUTH_ERROR with an auth_stat.
    static func rpcMismatch(xid: UInt32) -> [UInt32] { [xid, 1, 1, 0, 2, 2] }
    static func authError(xid: UInt32, _ authStatus: UInt32) -> [UInt32] { [xid, 1, 1, 1, authStatus] }
    static let authTooWeak: UInt32 = 5
    static let authRejectedCredentials: UInt32 = 2

    /// Big-endian words from a record, never reading past its end: every length
    /// from the wire is compared with the bytes left before it is added to `offset`.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func word() -> UInt32? {
            guard bytes.count - offset >= 4 else { return nil }
            let value = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            offset += 4
            return value
        }

        /// Skips a variable-length opaque of at most `max` bytes and its padding.
        mutating func skipOpaque(max: Int) -> Bool {
            // Bounded before any arithmetic: a length near 2^32 cannot wrap the padding.
            guard let length = word().map(Int.init), length <= max else { return false }
            let padded = length + (4 - length % 4) % 4
            guard bytes.count - offset >= padded else { return false }
            offset += padded
            return true
        }
    }
}
