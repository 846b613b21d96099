import SystemSupport
import Testing

/// What the agent's spool added to the seam: CRC32C and file modification times.
@Suite struct SpoolAdditionsTests {
    /// RFC 3720 B.4 and the usual check value.
    static let vectors: [([UInt8], UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0...31), 0x46DD_794E),
        (Array((0...31).reversed()), 0x113F_DB5C),
        ([], 0),
    ]

    @Test("CRC32C gives the known check values, with the instruction and with the table")
    func knownVectors() {
        for (bytes, expected) in Self.vectors {
            #expect(CRC32C.checksum(bytes) == expected)
            #expect(bytes.withUnsafeBytes { CRC32C.tableChecksum($0) } == expected)
        }
    }

    @Test("CRC32C continues across pieces, at every split and alignment")
    func continuing() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let whole = CRC32C.checksum(bytes)
        bytes.withUnsafeBytes { raw in
            #expect(CRC32C.tableChecksum(raw) == whole)
            for split in [0, 1, 3, 7, 8, 9, 63, 500, 999, 1000] {
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<split]))
                #expect(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[split...]), continuing: first) == whole)
                let tableFirst = CRC32C.tableChecksum(UnsafeRawBufferPointer(rebasing: raw[..<split]))
                #expect(CRC32C.tableChecksum(UnsafeRawBufferPointer(rebasing: raw[split...]), continuing: tableFirst) == whole)
            }
        }
    }

    @Test("this x86-64 machine has SSE4.2: the instruction is used")
    func hardware() {
        #if arch(x86_64)
        #expect(CRC32C.usesHardware == (FileSystem.readText("/proc/cpuinfo")?.contains("sse4_2") ?? false))
        #endif
    }

    @Test("a file's modification time is now after a write; nil when nothing is there")
    func modificationTime() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "spool-additions")
        defer { FileSystem.removeTree(directory) }
        let before = SystemClock.realtimeNanoseconds()
        try FileSystem.writeFile(directory + "/f", [1, 2, 3])
        let modified = try #require(try FileSystem.modificationNanoseconds(directory + "/f"))
        // Coarse kernel timestamps (one tick) may read a little before `before`.
        #expect(modified + 20_000_000 >= before && modified <= SystemClock.realtimeNanoseconds())
        #expect(try FileSystem.modificationNanoseconds(directory + "/none") == nil)
        let tooLong = "/" + String(repeating: "a", count: 5000)
        #expect(throws: SystemError.self) { try FileSystem.modificationNanoseconds(tooLong) }
    }
}
