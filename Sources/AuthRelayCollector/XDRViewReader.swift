import Glibc

/// Reads XDR from bytes that stay where they are: integers by value, strings
/// and opaques as views of the bytes. What it accepts is what libtirpc's
/// xdrmem decode accepts (src/xdr.c, 1.3.3): a length over its bound is
/// refused before its bytes are looked at, padding bytes are skipped whatever
/// they hold (xdr_opaque reads them into `crud`), enums are any 32 bits.
struct XDRViewReader {
    /// Why a value could not be read.
    enum Failure: Error {
        /// The bytes end inside it: more may come (incremental decoding), or the input is short.
        case needsMore
        /// No more bytes can make it valid (a length over its bound).
        case invalid
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func u32() throws(Failure) -> UInt32 {
        guard remaining >= 4 else { throw .needsMore }
        defer { offset += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64() throws(Failure) -> UInt64 {
        guard remaining >= 8 else { throw .needsMore }
        defer { offset += 8 }
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func i32() throws(Failure) -> Int32 { Int32(bitPattern: try u32()) }

    /// `opaque<max>` (xdr_bytes): its bytes as sent; an empty one is a nil view,
    /// as xdr_bytes leaves the pointer NULL for a length of 0.
    mutating func opaque(max: UInt32) throws(Failure) -> UnsafeRawBufferPointer {
        let count = try u32()
        guard count <= max else { throw .invalid }
        guard count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return try body(Int(count))
    }

    /// `string<max>` (xdr_string): the bytes up to the first NUL, as `strlen`
    /// of the string xdr_string decodes reads them (it keeps every byte sent and
    /// adds a NUL; today's views are `strlen` long).
    mutating func string(max: UInt32) throws(Failure) -> UnsafeRawBufferPointer {
        let count = try u32()
        guard count <= max else { throw .invalid }
        let view = try body(Int(count))
        guard let start = view.baseAddress, let nul = memchr(start, 0, view.count) else { return view }
        return UnsafeRawBufferPointer(start: start, count: UnsafeRawPointer(nul) - start)
    }

    /// `count` bytes and the padding to a multiple of 4 (its contents ignored).
    private mutating func body(_ count: Int) throws(Failure) -> UnsafeRawBufferPointer {
        let padded = (count + 3) & ~3
        guard remaining >= padded else { throw .needsMore }
        defer { offset += padded }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }
}
