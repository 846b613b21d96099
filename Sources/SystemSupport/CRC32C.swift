import CSystemSupport

/// CRC32C (Castagnoli): what the agent's spool frames its records with.
/// SSE4.2's crc32 instruction when the processor has it (several GB/s, so a
/// record's checksum costs less than copying it), a slicing-by-8 table
/// otherwise. Continues like zlib's crc32(): `checksum(b, continuing:
/// checksum(a))` is the checksum of a followed by b.
package enum CRC32C {
    package static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        CSystemSupport_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    package static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The table path alone, whatever the processor has (tests compare the two).
    package static func tableChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        CSystemSupport_crc32c_table(crc, bytes.baseAddress, bytes.count)
    }

    /// Whether `checksum` runs on the processor's crc32 instruction.
    package static var usesHardware: Bool { CSystemSupport_crc32c_hardware() != 0 }
}
