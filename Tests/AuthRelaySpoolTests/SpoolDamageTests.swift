import AuthRelayHarness
@testable import AuthRelaySpool
import Glibc
import SystemSupport
import Testing

@Suite struct SpoolDamageTests {
    /// Offset of record `index` (from 0) in a segment of 8-event records.
    static func recordOffset(_ index: Int64) -> Int64 { headerBytes + index * recordBytes(perRecord: 8) }

    /// Boot "boot-1" with `records` 8-event records, closed uncleanly (or cleanly).
    static func spooled(_ fixture: SpoolFixture, records: Int, segmentBytes: Int64 = 1 << 16, clean: Bool = false) throws {
        let spool = try fixture.openSpool(boot: "boot-1", segmentBytes: segmentBytes)
        try fixture.append(spool, from: 1, records: records)
        if clean { try spool.markClean(lastSequence: UInt64(records) * 8) }
    }

    @Test("a torn last record is cut off at open and counted", arguments: ["short frame", "short record", "zeros"])
    func tornTail(kind: String) throws {
        let fixture = try SpoolFixture()
        try Self.spooled(fixture, records: 10)
        let segment = try #require(fixture.segments("boot-1").last)
        var record: [UInt8] = []
        eventPayload(first: 81, count: 8).withUnsafeBytes {
            SpoolRecordEncoding.encode(into: &record, kind: .events, first: 81, count: 8, payload: $0)
        }
        let tail: [UInt8] = switch kind {
        case "short frame": Array(record.prefix(6))
        case "short record": Array(record.prefix(500))
        default: [UInt8](repeating: 0, count: 2000)
        }
        try fixture.appendBytes(segment, tail)
        let spool = try fixture.openSpool(boot: "boot-2")
        #expect(spool.stats().tornBytes == UInt64(tail.count))
        #expect(fixture.size(segment) == Self.recordOffset(10))
        #expect(spool.earlierBoots.first?.lastSequence == 80)
        #expect(checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 1)), from: 1, through: 80).isEmpty)
    }

    @Test("a flipped byte in a record makes exactly its sequences a corrupt range, counted once",
          arguments: [("payload", 21 + 100), ("length", 1), ("crc", 5), ("first sequence", 10), ("count", 18)] as [(String, Int64)])
    func flippedByte(field: String, offset: Int64) throws {
        let fixture = try SpoolFixture()
        try Self.spooled(fixture, records: 10)
        let segment = try #require(fixture.segments("boot-1").last)
        try fixture.flipByte(segment, at: Self.recordOffset(4) + offset)
        let spool = try fixture.openSpool(boot: "boot-2")
        for _ in 0..<2 {
            let losses = checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 1)), from: 1, through: 80)
            #expect(losses == [SpoolLoss(first: 33, last: 40, reason: .corrupt)])
        }
        #expect(spool.stats().corruptEvents == 8)
        #expect(spool.stats().tornBytes == 0)
        #expect(spool.earlierBoots.first?.lastSequence == 80)
    }

    @Test("damage at a segment's end is bounded by the next segment's header, or by its name when that is damaged too",
          arguments: [false, true])
    func damagedSegmentEnd(nextHeaderDamaged: Bool) throws {
        let fixture = try SpoolFixture()
        try Self.spooled(fixture, records: 12, segmentBytes: 4096)  // 1-24, 25-48, 49-72, 73-96
        let segments = fixture.segments("boot-1")
        try fixture.flipByte(segments[0], at: Self.recordOffset(2) + 300)
        if nextHeaderDamaged { try fixture.flipByte(segments[1], at: 100) }
        do {
            let spool = try fixture.openSpool(boot: "boot-2")
            #expect(spool.stats().corruptEvents == 0)  // only a boot's last segment is scanned at open
            let losses = checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 1)), from: 1, through: 96)
            #expect(losses == [SpoolLoss(first: 17, last: 24, reason: .corrupt)])
            #expect(spool.stats().corruptEvents == 8)
        }
        // Recorded in `losses`: the next process knows it before reading.
        let spool = try fixture.openSpool(boot: "boot-3")
        let losses = checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 1)), from: 1, through: 96)
        #expect(losses == [SpoolLoss(first: 17, last: 24, reason: .corrupt)])
        #expect(spool.stats().corruptEvents == 0)
    }

    @Test("damage in the last record of an unclean boot is a write cut short: cut, the boot ends before it")
    func damagedLastRecordUnclean() throws {
        let fixture = try SpoolFixture()
        try Self.spooled(fixture, records: 10)
        let segment = try #require(fixture.segments("boot-1").last)
        try fixture.flipByte(segment, at: Self.recordOffset(9) + 400)
        let spool = try fixture.openSpool(boot: "boot-2")
        #expect(spool.earlierBoots.first?.lastSequence == 72)
        #expect(spool.stats().tornBytes == UInt64(recordBytes(perRecord: 8)))
        #expect(checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 1)), from: 1, through: 72).isEmpty)
    }

    @Test("damage at the end of a clean boot is corrupt up to the last sequence its state names")
    func damagedLastRecordClean() throws {
        let fixture = try SpoolFixture()
        try Self.spooled(fixture, records: 10, clean: true)
        let segment = try #require(fixture.segments("boot-1").last)
        try fixture.flipByte(segment, at: Self.recordOffset(9) + 400)
        let spool = try fixture.openSpool(boot: "boot-2")
        #expect(spool.earlierBoots.first?.lastSequence == 80)
        #expect(spool.earlierBoots.first?.ending == .clean)
        let losses = checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 1)), from: 1, through: 80)
        #expect(losses == [SpoolLoss(first: 73, last: 80, reason: .corrupt)])
        #expect(spool.stats().corruptEvents == 8)
    }

    @Test("kill -9 mid-append: every record an append returned for reads back, the boot ends unclean")
    func killNine() throws {
        let writer = Executables.holding("authrelay-spool-writer").path("authrelay-spool-writer")
        let fixture = try SpoolFixture()
        let child = try ChildProcess(writer, [fixture.directory, "killed", "64"], outputIn: fixture.temporary, tag: "writer")
        try child.waitFor("appended 20032", timeout: .seconds(20))
        child.kill()
        #expect(child.exitStatus == .signalled(SIGKILL))
        let reported = child.stderr.split(separator: "\n").compactMap { line in
            line.hasPrefix("appended ") ? UInt64(line.dropFirst("appended ".count)) : nil
        }.max() ?? 0
        #expect(reported >= 20032)

        let spool = try fixture.openSpool(boot: "after")
        let earlier = try #require(spool.earlierBoots.first)
        #expect(earlier.bootID == "killed" && earlier.agentID == "writer" && earlier.ending == .unclean)
        let last = try #require(earlier.lastSequence)
        #expect(last >= reported)
        #expect(checkCoverage(try readAll(spool.reader(boot: "killed", from: 1)), from: 1, through: last).isEmpty)
    }
}
