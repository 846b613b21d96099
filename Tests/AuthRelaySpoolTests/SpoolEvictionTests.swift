@testable import AuthRelaySpool
import SystemSupport
import Testing

@Suite struct SpoolEvictionTests {
    @Test("at the cap the oldest segment goes, its exact range recorded as evicted, and the reader says so")
    func evictsOldest() throws {
        let fixture = try SpoolFixture()
        let maxBytes: Int64 = 5 * 4096
        let spool = try fixture.openSpool(boot: "boot-1", maxBytes: maxBytes)
        var next: UInt64 = 1
        for _ in 0..<60 {
            next = try fixture.append(spool, from: next, records: 1)
            #expect(spool.stats().bytes <= maxBytes)
        }
        let stats = spool.stats()
        // 5 x 4 KiB hold 4 full segments, the losses file and the open one: what is left is the newest.
        let first = try #require(fixture.oldestSegmentFirst("boot-1"))
        #expect(stats.evictedEvents == first - 1)
        #expect(stats.evictedSegments == (first - 1) / 24)
        let reads = try readAll(spool.reader(from: 1))
        let losses = checkCoverage(reads, from: 1, through: 480)
        #expect(losses == [SpoolLoss(first: 1, last: first - 1, reason: .evicted)])
    }

    @Test("evicted ranges survive a restart; eviction takes earlier boots first, without what was acknowledged")
    func acrossBoots() throws {
        let fixture = try SpoolFixture()
        let maxBytes: Int64 = 7 * 4096
        do {
            let spool = try fixture.openSpool(boot: "boot-1", maxBytes: maxBytes)
            try fixture.append(spool, from: 1, records: 15)  // 5 segments of 24 events
            try spool.acknowledge(boot: "boot-1", through: 10)  // deletes nothing: 1...24 is not wholly acknowledged
        }
        let spool = try fixture.openSpool(boot: "boot-2", maxBytes: maxBytes)
        try spool.acknowledge(boot: "boot-1", through: 10)  // a new process: acknowledgements come again
        try fixture.append(spool, from: 1, records: 12)  // 4 more segments: two of boot-1's go
        #expect(fixture.segments("boot-1").count == 3)
        #expect(fixture.segments("boot-2").count == 4)
        #expect(spool.stats().evictedEvents == 38)  // 11...24 and 25...48
        let losses = checkCoverage(try readAll(spool.reader(boot: "boot-1", from: 11)), from: 11, through: 120)
        #expect(losses == [SpoolLoss(first: 11, last: 48, reason: .evicted)])
        #expect(spool.earlierBoots.first?.firstUnacknowledged == 11)
        #expect(checkCoverage(try readAll(spool.reader(boot: "boot-2", from: 1)), from: 1, through: 96).isEmpty)
    }

    @Test("a loss record inside an evicted segment keeps its reason and place")
    func keepsCallerLosses() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1", maxBytes: 4 * 4096)
        try fixture.append(spool, from: 1, records: 1)
        try spool.appendLoss(first: 9, last: 12, reason: .queueFull)
        try fixture.append(spool, from: 13, records: 2)  // segment 1: 1...8, loss 9...12, 13...20, 21...28
        try fixture.append(spool, from: 29, records: 12)
        let losses = checkCoverage(try readAll(spool.reader(from: 1)), from: 1, through: 124)
        #expect(losses.prefix(2) == [SpoolLoss(first: 1, last: 8, reason: .evicted), SpoolLoss(first: 9, last: 12, reason: .queueFull)])
        #expect(losses.count == 3 && losses[2].first == 13 && losses[2].reason == .evicted)
        #expect(spool.stats().evictedEvents == losses.filter { $0.reason == .evicted }.reduce(0) { $0 + $1.count })
    }

    @Test("evictions between deliveries stay under the cap: acknowledged loss ranges are forgotten")
    func acknowledgedLossesForgotten() throws {
        let fixture = try SpoolFixture()
        let maxBytes: Int64 = 5 * 4096
        let spool = try fixture.openSpool(boot: "boot-1", maxBytes: maxBytes)
        var next: UInt64 = 1
        var acknowledged: UInt64 = 0
        for _ in 0..<1000 {  // a loss record each: 37 KB of them, more than the cap
            next = try fixture.append(spool, from: next, records: 3)  // about one segment
            #expect(spool.stats().bytes <= maxBytes)
            // Part of the oldest segment delivered: its eviction loses the rest,
            // a range apart from the previous one (they cannot merge).
            let oldest = try #require(fixture.oldestSegmentFirst("boot-1"))
            acknowledged = max(acknowledged, oldest + 4)
            try spool.acknowledge(boot: "boot-1", through: acknowledged)
        }
        let stats = spool.stats()
        #expect(stats.evictedSegments > 900)
        #expect(stats.bytes <= maxBytes)
        // What is left to read still starts exactly after the acknowledged ones.
        let reads = try readAll(spool.reader(from: acknowledged + 1))
        #expect(reads.first.map { $0.first <= acknowledged + 1 && $0.last > acknowledged } == true)
        #expect(reads.last?.last == next - 1)
    }

    @Test("the segment being written is never evicted: a cap of one segment keeps the newest records")
    func neverTheOpenSegment() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1", maxBytes: 4096, segmentBytes: 4096)
        try fixture.append(spool, from: 1, records: 10)
        #expect(spool.stats().bytes <= 4096)
        let reads = try readAll(spool.reader(from: 1))
        let losses = checkCoverage(reads, from: 1, through: 80)
        #expect(losses.count == 1 && losses[0].reason == .evicted && losses[0].first == 1)
        #expect(reads.last?.last == 80)
    }
}
