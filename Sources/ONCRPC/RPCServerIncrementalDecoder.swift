import CONCRPC

/// Decodes a procedure's argument while its record is still arriving.
///
/// A client that sends a large argument in many record fragments (libtirpc's
/// `clnt_vc` sends 9000-byte fragments over AF_LOCAL) would otherwise have the
/// whole argument decoded only after its last byte: with a client that waits
/// for each reply, that decoding adds to every round trip. An incremental
/// decoder does the work as the bytes come, on the loop's thread, without ever
/// waiting for them. It is only an optimisation: when it cannot finish, the
/// server decodes the complete record with the procedure's XDR routine as usual.
/// A record that arrives whole (in one read, or a datagram) is given to a
/// decoder made for it (`finish` only), then to the routine if that fails.
public protocol RPCIncrementalDecoder: AnyObject {
    /// Decodes what it can of `bytes`: every argument byte received so far
    /// (each call sees the bytes of the previous one, and more). Returns false
    /// when the bytes cannot be this argument (the server then stops calling it).
    func decode(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// Called with the complete argument: true when the argument is decoded,
    /// in `argument`, exactly as the XDR routine would have decoded it.
    func finish(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// The decoded argument (the procedure's argument type) after `finish` returned true.
    var argument: UnsafeMutableRawPointer { get }
    /// Frees what was decoded and starts over (after the handler ran, or when given up).
    func reset()
}

/// The argument of the record in progress on one connection, decoded as it arrives.
enum IncrementalArgument {
    /// The record's call header has not been looked at yet.
    case notStarted
    /// Decoding; the argument starts at this offset of the record.
    case decoding(RPCIncrementalDecoder, argumentsOffset: Int)
    /// Not for this record: the procedure has no incremental decoder, or it gave up.
    case notUsed

    /// Frees an argument decoded ahead that was not used; ready for the next record.
    mutating func end() {
        if case .decoding(let decoder, _) = self { decoder.reset() }
        self = .notStarted
    }
}

extension XDRRoutine {
    /// Decodes one value from the front of `bytes` into a zeroed `value`; returns
    /// the bytes used, or nil when `bytes` do not (yet) hold a whole value. After
    /// nil, free what the decoder allocated with `free(value)`.
    public func decodePrefix<Value>(_ bytes: UnsafeRawBufferPointer, into value: UnsafeMutablePointer<Value>) -> Int? {
        var used: UInt32 = 0
        guard CONCRPC_xdr_decode_prefix(routine, value, bytes.baseAddress, UInt32(clamping: bytes.count), &used) != 0 else {
            return nil
        }
        return Int(used)
    }
}
