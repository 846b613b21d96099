/// PostgreSQL's binary format, as binary parameters (arrays) and binary COPY
/// carry it: big-endian integers, each value as a 32-bit length (-1 for
/// NULL) then its bytes.
struct BinaryWriter {
    private(set) var bytes: [UInt8] = []
    /// Set when a UInt64 did not fit PostgreSQL's bigint (the value is then written wrapped).
    private(set) var overflow = false

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func int16(_ value: Int16) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
    mutating func int32(_ value: Int32) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
    mutating func int64(_ value: Int64) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
    mutating func raw(_ other: [UInt8]) { bytes += other }

    // MARK: Values (length, then bytes)

    mutating func null() { int32(-1) }

    mutating func text(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            int32(Int32(utf8.count))
            bytes += utf8
        }
    }

    mutating func bytea(_ value: [UInt8]) {
        int32(Int32(value.count))
        bytes += value
    }

    mutating func integer(_ value: Int32) {
        int32(4)
        int32(value)
    }

    mutating func bigint(_ value: Int64) {
        int32(8)
        int64(value)
    }

    /// A UInt64 as bigint; marks `overflow` past Int64.max.
    mutating func bigint(_ value: UInt64) {
        if value > UInt64(Int64.max) { overflow = true }
        bigint(Int64(bitPattern: value))
    }

    /// A UInt32 (a uid, a flag set) as bigint: exact, where integer would wrap.
    mutating func bigint(_ value: UInt32) { bigint(Int64(value)) }
}

/// A column of a table as the store writes it: its name, its element type
/// and how one row's value is written. Both write paths use these: a binary
/// array per column (unnest) and a binary COPY row.
struct Column<Row>: Sendable {
    /// PostgreSQL's types here, by oid (pg_type) and the array type's name.
    enum Kind: Int32, Sendable {
        case text = 25
        case bigint = 20
        case integer = 23
        case bytea = 17

        var arrayName: String {
            switch self {
            case .text: "text[]"
            case .bigint: "int8[]"
            case .integer: "int4[]"
            case .bytea: "bytea[]"
            }
        }
    }

    let name: String
    let kind: Kind
    let write: @Sendable (Row, inout BinaryWriter) -> Void

    init(_ name: String, _ kind: Kind, _ write: @escaping @Sendable (Row, inout BinaryWriter) -> Void) {
        self.name = name
        self.kind = kind
        self.write = write
    }

    /// A one-dimensional binary array of this column's values for `rows`
    /// (array_recv's format: ndim, has-null flag, element oid, then length
    /// and lower bound per dimension, then the values).
    func array(_ rows: [Row]) -> BinaryWriter {
        var writer = BinaryWriter(capacity: 20 + rows.count * 16)
        writer.int32(rows.isEmpty ? 0 : 1)
        writer.int32(1)  // "may hold NULLs": array_recv reads the flag but every value carries its own length
        writer.int32(kind.rawValue)
        if !rows.isEmpty {
            writer.int32(Int32(rows.count))
            writer.int32(1)
        }
        for row in rows { write(row, &writer) }
        return writer
    }
}
