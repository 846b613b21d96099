import SystemSupport

/// The bytes of the spool's files. Every integer is little-endian: the byte
/// order of every machine an agent runs on, so nothing is swapped on the way
/// in or out (the XDR inside an EVENTS payload is big-endian, but opaque here).
///
/// A segment or losses file is a 192-byte header, then records:
///
///     offset  size
///     0       8    magic "ARSPOOL\0"
///     8       4    format version (1)
///     12      4    header bytes (192)
///     16      1    file kind: 1 segment, 2 losses
///     17      1    flags: bit 0 = "previous last sequence" is set
///     18      1    agent id bytes (<= 64)
///     19      1    boot id bytes (<= 64)
///     20      64   agent id, zero padded
///     84      64   boot id, zero padded
///     148     8    first sequence (segment; 0 in losses)
///     156     8    previous last sequence: the boot's last sequence before
///                  this segment (bounds a damaged tail of the one before it)
///     164     8    created, CLOCK_REALTIME ns (the first record's append time)
///     172     16   zero
///     188     4    CRC32C of bytes 0..<188
///
/// A record: `[u32 length][u32 crc32c][u8 kind][u64 first_seq][u32 count][payload]`.
/// `length` counts the bytes after the crc field (13 + payload); the crc
/// covers every byte of the record but its own four. EVENTS (kind 1): the
/// payload is `count` events as the caller encoded them, numbered
/// first_seq...first_seq+count-1. LOSS (kind 2): the payload is `[u64 last][u32 reason]`,
/// and count is last - first + 1 (saturated at UInt32.max).
enum SpoolFormat {
    static let magic: [UInt8] = Array("ARSPOOL".utf8) + [0]
    static let version: UInt32 = 1
    static let fileHeaderBytes = 192
    /// length and crc: what must be there to know a record's extent.
    static let frameBytes = 8
    /// frame, kind, first_seq, count.
    static let recordHeaderBytes = 21
    static let lossPayloadBytes = 12
    /// One record's bound (a 512-event batch of 4 KiB paths is about 4.5 MiB):
    /// a length above it is damage, never an allocation.
    static let maxRecordBytes = 64 << 20

    enum FileKind: UInt8 { case segment = 1, losses = 2 }
    enum RecordKind: UInt8 { case events = 1, loss = 2 }

    static let statePath = "state"
    static let lossesName = "losses"
    static let lockName = "lock"
    static let segmentPrefix = "segment-"

    /// "segment-00000000000000000001": sorts as the numbers do.
    static func segmentName(_ first: UInt64) -> String {
        let digits = String(first)
        return segmentPrefix + String(repeating: "0", count: 20 - digits.count) + digits
    }

    static func segmentFirstSequence(_ name: String) -> UInt64? {
        guard name.hasPrefix(segmentPrefix) else { return nil }
        let digits = name.dropFirst(segmentPrefix.count)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }
}

// MARK: Little-endian fields

extension UnsafeRawBufferPointer {
    func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

// MARK: The file header

struct SpoolFileHeader: Equatable {
    var kind: SpoolFormat.FileKind
    var agentID: String
    var bootID: String
    var firstSequence: UInt64
    var previousLastSequence: UInt64?
    var createdNanoseconds: UInt64

    func encoded() -> [UInt8] {
        var bytes = SpoolFormat.magic
        bytes.reserveCapacity(SpoolFormat.fileHeaderBytes)
        bytes.appendLittleEndian(SpoolFormat.version)
        bytes.appendLittleEndian(UInt32(SpoolFormat.fileHeaderBytes))
        bytes.append(kind.rawValue)
        bytes.append(previousLastSequence == nil ? 0 : 1)
        bytes.append(UInt8(agentID.utf8.count))
        bytes.append(UInt8(bootID.utf8.count))
        for id in [agentID, bootID] {
            bytes.append(contentsOf: id.utf8)
            bytes.append(contentsOf: [UInt8](repeating: 0, count: Spool.maxIDBytes - id.utf8.count))
        }
        bytes.appendLittleEndian(firstSequence)
        bytes.appendLittleEndian(previousLastSequence ?? 0)
        bytes.appendLittleEndian(createdNanoseconds)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: SpoolFormat.fileHeaderBytes - 4 - bytes.count))
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    enum Decoded: Equatable {
        case header(SpoolFileHeader)
        /// Not a header (short, wrong magic, failed checksum): the records may still read.
        case damaged
        /// A spool header of a format this code does not know.
        case unsupported(version: UInt32)
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
        guard bytes.count >= SpoolFormat.fileHeaderBytes, bytes.prefix(8).elementsEqual(SpoolFormat.magic) else { return .damaged }
        let crcOffset = SpoolFormat.fileHeaderBytes - 4
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<crcOffset])) == bytes.littleEndian(UInt32.self, at: crcOffset) else {
            return .damaged
        }
        let version = bytes.littleEndian(UInt32.self, at: 8)
        guard version == SpoolFormat.version else { return .unsupported(version: version) }
        guard let kind = SpoolFormat.FileKind(rawValue: bytes[16]),
              Int(bytes[18]) <= Spool.maxIDBytes, Int(bytes[19]) <= Spool.maxIDBytes else { return .damaged }
        let agentID = String(decoding: bytes[20..<(20 + Int(bytes[18]))], as: UTF8.self)
        let bootID = String(decoding: bytes[84..<(84 + Int(bytes[19]))], as: UTF8.self)
        let hasPrevious = bytes[17] & 1 != 0
        return .header(SpoolFileHeader(
            kind: kind, agentID: agentID, bootID: bootID,
            firstSequence: bytes.littleEndian(UInt64.self, at: 148),
            previousLastSequence: hasPrevious ? bytes.littleEndian(UInt64.self, at: 156) : nil,
            createdNanoseconds: bytes.littleEndian(UInt64.self, at: 164)))
    }
}

// MARK: Records

enum SpoolRecordEncoding {
    /// Lays out one record in `bytes` (emptied first, capacity kept).
    static func encode(into bytes: inout [UInt8], kind: SpoolFormat.RecordKind, first: UInt64, count: UInt32,
                       payload: UnsafeRawBufferPointer) {
        bytes.removeAll(keepingCapacity: true)
        bytes.appendLittleEndian(UInt32(SpoolFormat.recordHeaderBytes - SpoolFormat.frameBytes + payload.count))
        bytes.appendLittleEndian(UInt32(0))
        bytes.append(kind.rawValue)
        bytes.appendLittleEndian(first)
        bytes.appendLittleEndian(count)
        bytes.append(contentsOf: payload)
        bytes.withUnsafeMutableBytes { raw in
            let crc = checksum(UnsafeRawBufferPointer(raw))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    static func encodeLoss(into bytes: inout [UInt8], _ loss: SpoolLoss) {
        var payload: [UInt8] = []
        payload.appendLittleEndian(loss.last)
        payload.appendLittleEndian(loss.reason.rawValue)
        payload.withUnsafeBytes { encode(into: &bytes, kind: .loss, first: loss.first, count: loss.savedCount, payload: $0) }
    }

    /// The crc of a whole record (its crc field skipped).
    static func checksum(_ record: UnsafeRawBufferPointer) -> UInt32 {
        let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<4]))
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[SpoolFormat.frameBytes...]), continuing: head)
    }
}
