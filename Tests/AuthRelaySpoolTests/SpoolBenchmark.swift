@testable import AuthRelaySpool
import SystemSupport
import Testing

/// Throughput of the spool on this machine (not a timed test: it asserts
/// nothing about speed). Run it with
/// `AUTHRELAY_SPOOL_BENCHMARK=1 swift test -c release --filter SpoolBenchmark`.
@Suite struct SpoolBenchmark {
    static let enabled = Processes.environmentValue("AUTHRELAY_SPOOL_BENCHMARK") != nil

    @Test("append and read-back throughput, 512-event records of 150-byte events", .enabled(if: enabled))
    func throughput() throws {
        for (label, perRecord, durability, maxBytes) in [
            ("512 events, no sync", UInt32(512), SpoolDurability.none, Int64(1) << 32),
            ("512 events, sync at segment close", 512, .onSegmentClose, Int64(1) << 32),
            ("512 events, at the cap (64 MiB: evicting)", 512, .none, Int64(64) << 20),
            ("16 events, no sync", 16, .none, Int64(1) << 32),
        ] {
            let records = 1_024_000 / Int(perRecord)
            let payload = eventPayload(first: 1, count: perRecord)
            let fixture = try SpoolFixture()
            let spool = try fixture.openSpool(boot: "bench", maxBytes: maxBytes, segmentBytes: 8 << 20, durability: durability)
            let start = SystemClock.monotonicNanoseconds()
            var next: UInt64 = 1
            for _ in 0..<records {
                try spool.append(events: payload, firstSequence: next, count: perRecord)
                next += UInt64(perRecord)
            }
            let appendSeconds = Double(SystemClock.monotonicNanoseconds() - start) / 1e9
            let bytes = Double(spool.stats().appendedBytes)

            let reader = spool.reader(from: 1)
            let readStart = SystemClock.monotonicNanoseconds()
            var readBytes = 0
            var readRecords = 0
            while let record = try reader.next() {
                if case .events(_, _, let bytes) = record { readBytes += bytes.count; readRecords += 1 }
            }
            let readSeconds = Double(SystemClock.monotonicNanoseconds() - readStart) / 1e9
            print("""
                spool \(label): append \(Int(bytes / appendSeconds / 1e6)) MB/s, \
                \(Int(Double(records) / appendSeconds)) records/s (\(Int(Double(records) * Double(perRecord) / appendSeconds)) events/s); \
                read back \(readRecords) records \(Int(Double(readBytes) / readSeconds / 1e6)) MB/s, \
                \(Int(Double(readRecords) / readSeconds)) records/s; evicted \(spool.stats().evictedEvents)
                """)
        }
        var bytes = [UInt8](repeating: 7, count: 1 << 20)
        let crcStart = SystemClock.monotonicNanoseconds()
        var crc: UInt32 = 0
        for _ in 0..<512 { crc = CRC32C.checksum(bytes, continuing: crc) }
        let crcSeconds = Double(SystemClock.monotonicNanoseconds() - crcStart) / 1e9
        bytes[0] = UInt8(truncatingIfNeeded: crc)
        print("crc32c (\(CRC32C.usesHardware ? "sse4.2" : "table")): \(Int(512.0 * Double(1 << 20) / crcSeconds / 1e9 * 10) / 10) GB/s")
    }
}
