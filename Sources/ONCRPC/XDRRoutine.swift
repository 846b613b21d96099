import CONCRPC

/// An rpcgen XDR routine (`xdr_<type>`), held as the non-variadic C function
/// pointer that `CONCRPC_xdrproc` declares.
///
/// rpcgen routines have the type `bool_t xdr_T(XDR *, T *)`; libtirpc's own
/// `xdrproc_t` is variadic and cannot be called from Swift. Export each routine
/// from a C file as a `CONCRPC_xdrproc` constant, then wrap it:
///
///     // C:     const CONCRPC_xdrproc my_xdr_item = (CONCRPC_xdrproc)xdr_item;
///     // Swift: let item = XDRRoutine(my_xdr_item)
public struct XDRRoutine: @unchecked Sendable {
    // A C function pointer: immutable code, safe to share between threads.
    let routine: CONCRPC_xdrproc

    public init(_ routine: @escaping @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32) {
        self.routine = routine
    }

    /// `xdr_void`: no argument or no result.
    public static let void = XDRRoutine(CONCRPC_xdr_void)
    /// `xdr_wrapstring`: a NUL-terminated string (rpcbind's addresses). libtirpc bounds
    /// it at RPC_MAXDATASIZE, 9000 bytes: longer strings fail to encode and decode.
    public static let wrapString = XDRRoutine(CONCRPC_xdr_wrapstring)

    /// Encodes `value` into `buffer`; returns the bytes written, or nil when the
    /// value does not fit or breaks a bound of the `.x`.
    public func encode<Value>(_ value: inout Value, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard let base = buffer.baseAddress else { return nil }
        let written = withUnsafeMutablePointer(to: &value) {
            CONCRPC_xdr_encode(routine, $0, base, UInt32(clamping: buffer.count))
        }
        return written < 0 ? nil : written
    }

    /// Encodes `value` into new bytes, or nil when it breaks a bound of the `.x`.
    public func encode<Value>(_ value: inout Value) -> [UInt8]? {
        // xdr_sizeof is 0 both for a value that does not encode and for one that is
        // empty on the wire (void): one spare word lets the encoder tell them apart.
        let size = withUnsafeMutablePointer(to: &value) { CONCRPC_xdr_sizeof(routine, $0) }
        var bytes = [UInt8](repeating: 0, count: Int(size) + 4)
        let written = bytes.withUnsafeMutableBytes { encode(&value, into: $0) }
        guard let written else { return nil }
        return Array(bytes.prefix(written))
    }

    /// Decodes `bytes` into a zeroed `Value`, lets `body` read it, then frees
    /// whatever the decoder allocated. Returns nil when the bytes do not decode.
    public func decode<Value, Result>(
        _ bytes: UnsafeRawBufferPointer, as type: Value.Type,
        _ body: (UnsafePointer<Value>) throws -> Result
    ) rethrows -> Result? {
        let value = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        UnsafeMutableRawPointer(value).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Value>.size)
        defer {
            free(value)
            value.deallocate()
        }
        guard CONCRPC_xdr_decode(routine, value, bytes.baseAddress, UInt32(clamping: bytes.count)) != 0 else {
            return nil
        }
        return try body(value)
    }

    /// Frees what a decode allocated inside `value` (not `value` itself).
    public func free<Value>(_ value: UnsafeMutablePointer<Value>) {
        CONCRPC_xdr_free(routine, value)
    }
}
