@testable import AuthRelaySpool
import SystemSupport
import Testing

@Suite struct SpoolRoundTripTests {
    @Test("records read back in order and byte for byte, across segments and boots")
    func roundTrip() throws {
        let fixture = try SpoolFixture()
        do {
            let spool = try fixture.openSpool(boot: "boot-1")
            #expect(spool.earlierBoots.isEmpty)
            #expect(spool.nextSequence == nil)
            // 3 records of 1,221 bytes fit a 4 KiB segment after its header: 14 segments.
            try fixture.append(spool, from: 1, records: 40)
            #expect(spool.nextSequence == 321)
            #expect(fixture.segments("boot-1").count == 14)
            #expect(checkCoverage(try readAll(spool.reader(from: 1)), from: 1, through: 320).isEmpty)
            // From the middle: the record that holds it comes first, whole.
            let middle = try readAll(spool.reader(from: 100))
            #expect(middle.first?.first == 97)
            #expect(checkCoverage(middle, from: 97, through: 320).isEmpty)
            let stats = spool.stats()
            #expect(stats.segments == 14 && stats.appendedEvents == 320 && stats.appendedRecords == 40)
            #expect(stats.bytes == 14 * headerBytes + 40 * recordBytes(perRecord: 8))
            #expect(stats.oldestBootID == "boot-1" && stats.oldestFirstSequence == 1)
            #expect((stats.oldestAppendedNanoseconds ?? 0) > 0 && stats.oldestAppendedNanoseconds! <= SystemClock.realtimeNanoseconds())
        }
        let second = try fixture.openSpool(boot: "boot-2")
        let earlier = try #require(second.earlierBoots.first)
        #expect(second.earlierBoots.count == 1)
        #expect(earlier.bootID == "boot-1" && earlier.agentID == SpoolFixture.agentID)
        #expect(earlier.ending == .unclean && earlier.lastSequence == 320 && earlier.firstUnacknowledged == 1)
        #expect(earlier.endedNanoseconds > 0 && earlier.endedNanoseconds <= SystemClock.realtimeNanoseconds())
        #expect(checkCoverage(try readAll(second.reader(boot: "boot-1", from: 1)), from: 1, through: 320).isEmpty)
        try fixture.append(second, from: 1, records: 5)
        #expect(checkCoverage(try readAll(second.reader(from: 1)), from: 1, through: 40).isEmpty)
        #expect(second.stats().boots == 2)
    }

    @Test("the current boot's reader follows appends as they come")
    func followsAppends() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1")
        let reader = spool.reader(from: 1)
        #expect(try reader.next() == nil)
        var next: UInt64 = 1
        for round in 0..<10 {
            next = try fixture.append(spool, from: next, records: round % 3 + 1)
            let reads = try readAll(reader)
            #expect(reads.last?.last == next - 1)
            #expect(reader.position == next)
        }
        reader.rewind(to: 1)
        checkCoverage(try readAll(reader), from: 1, through: next - 1)
    }

    @Test("a clean stop says so, with its last sequence; a missing or garbled state reads as unclean")
    func endings() throws {
        let fixture = try SpoolFixture()
        do {
            let spool = try fixture.openSpool(boot: "clean")
            try fixture.append(spool, from: 1, records: 4)
            try spool.markClean(lastSequence: 40)  // 8 more numbered but never spooled (memory-only, say)
            #expect(throws: SpoolError.closed) { try fixture.append(spool, from: 33, records: 1) }
            #expect(throws: SpoolError.closed) { try spool.reopen() }
        }
        for (boot, damage) in [("no-state", "remove"), ("garbled", "garble")] {
            let spool = try fixture.openSpool(boot: boot)
            try fixture.append(spool, from: 1, records: 2)
            try spool.markClean(lastSequence: 16)
            let state = fixture.directory + "/" + boot + "/state"
            if damage == "remove" { try FileSystem.removeFile(state) } else { try FileSystem.writeFile(state, Array("authrelay-spool-state 1\nending cle".utf8)) }
        }
        let spool = try fixture.openSpool(boot: "now")
        let boots = Dictionary(uniqueKeysWithValues: spool.earlierBoots.map { ($0.bootID, $0) })
        #expect(boots["clean"]?.ending == .clean && boots["clean"]?.lastSequence == 40)
        #expect(boots["no-state"]?.ending == .unclean && boots["no-state"]?.lastSequence == 16)
        #expect(boots["garbled"]?.ending == .unclean && boots["garbled"]?.lastSequence == 16)
        // The reader of a clean boot ends at what it holds: 33...40 never reached the spool, and is no loss of its.
        checkCoverage(try readAll(spool.reader(boot: "clean", from: 1)), from: 1, through: 32)
    }

    @Test("the state file is text that reads back, and nothing else reads as one")
    func stateText() {
        let state = BootState(agentID: "a b", bootID: "b", clean: true, lastSequence: 9, acknowledgedThrough: nil, endedNanoseconds: 5)
        #expect(BootState(text: state.text) == state)
        #expect(BootState(text: state.text.replacing("clean", with: "cleaned")) == nil)
        #expect(BootState(text: String(state.text.dropLast(3))) == nil)
        #expect(BootState(text: "") == nil)
    }

    @Test("acknowledging deletes the segments wholly at or below it, then a finished boot's directory")
    func acknowledge() throws {
        let fixture = try SpoolFixture()
        do {
            let spool = try fixture.openSpool(boot: "boot-1")
            try fixture.append(spool, from: 1, records: 12)  // 4 segments: 1-24, 25-48, 49-72, 73-96
            #expect(fixture.segments("boot-1").count == 4)
            try spool.acknowledge(boot: "boot-1", through: 30)
            #expect(fixture.segments("boot-1").count == 3)
            #expect(spool.stats().oldestFirstSequence == 25)
            // The open segment stays, even wholly acknowledged: it holds the boot's last sequence.
            try spool.acknowledge(boot: "boot-1", through: 96)
            #expect(fixture.segments("boot-1").map(FileSystem.baseName(of:)) == ["segment-00000000000000000073"])
            #expect(spool.stats().oldestFirstSequence == nil)
            try fixture.append(spool, from: 97, records: 3)
        }
        let spool = try fixture.openSpool(boot: "boot-2")
        #expect(spool.earlierBoots.first?.firstUnacknowledged == 73)  // acknowledgements are the collector's to repeat
        try spool.acknowledge(boot: "boot-1", through: 100)
        #expect(spool.earlierBoots.first?.firstUnacknowledged == 101)
        #expect(FileSystem.exists(fixture.directory + "/boot-1"))
        try spool.acknowledge(boot: "boot-1", through: 120)
        #expect(spool.earlierBoots.isEmpty)
        #expect(!FileSystem.exists(fixture.directory + "/boot-1"))
        try spool.acknowledge(boot: "boot-1", through: 200)  // gone: nothing to do
    }

    @Test("a clean stop deletes what was acknowledged, its open segment included")
    func cleanStopDeletes() throws {
        let fixture = try SpoolFixture()
        do {
            let spool = try fixture.openSpool(boot: "boot-1", durability: .onSegmentClose)
            try fixture.append(spool, from: 1, records: 5)
            try spool.acknowledge(boot: "boot-1", through: 40)
            try spool.markClean(lastSequence: 40)
            #expect(fixture.segments("boot-1").isEmpty)
        }
        let spool = try fixture.openSpool(boot: "boot-2")
        let earlier = try #require(spool.earlierBoots.first)
        #expect(earlier.ending == .clean && earlier.lastSequence == 40 && earlier.firstUnacknowledged == nil)
        try spool.acknowledge(boot: "boot-1", through: 40)
        #expect(spool.earlierBoots.isEmpty)
    }

    @Test("a gap in the numbers starts a segment and is no loss; a lower number is refused")
    func gap() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1")
        try fixture.append(spool, from: 1, records: 1)
        try fixture.append(spool, from: 20, records: 1)
        #expect(fixture.segments("boot-1").count == 2)
        #expect(throws: SpoolError.outOfOrder(expected: 28, got: 27)) { try fixture.append(spool, from: 27, records: 1) }
        let reads = try readAll(spool.reader(from: 1))
        #expect(reads.map(\.description) == ["events 1...8", "events 20...27"])
    }

    @Test("loss records the caller appends come back in their places")
    func callerLosses() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1")
        try fixture.append(spool, from: 1, records: 1)
        try spool.appendLoss(first: 9, last: 100, reason: .queueFull)
        try fixture.append(spool, from: 101, records: 1)
        let losses = checkCoverage(try readAll(spool.reader(from: 1)), from: 1, through: 108)
        #expect(losses == [SpoolLoss(first: 9, last: 100, reason: .queueFull)])
        #expect(spool.stats().appendedEvents == 16)
    }

    @Test("configurations that cannot work are refused before anything is touched",
          arguments: [("", "b"), ("a", ""), ("a", "x/y"), ("a", ".."), ("a\nb", "b"), (String(repeating: "a", count: 65), "b")])
    func badConfiguration(agent: String, boot: String) throws {
        let fixture = try SpoolFixture()
        #expect(throws: SpoolError.self) {
            try Spool.open(SpoolConfiguration(directory: fixture.directory, agentID: agent, bootID: boot, maxBytes: 1 << 20))
        }
        #expect(throws: SpoolError.self) {
            try Spool.open(SpoolConfiguration(directory: fixture.directory, agentID: "a", bootID: "b", maxBytes: 4096, segmentBytes: 8192))
        }
        #expect(!FileSystem.exists(fixture.directory))
    }

    @Test("a record over the bound is refused, and the spool goes on")
    func recordTooLarge() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1", maxBytes: 8192, segmentBytes: 4096)
        #expect(throws: SpoolError.recordTooLarge(bytes: 21 + 9000, limit: 8192 - 192)) {
            try spool.append(events: [UInt8](repeating: 1, count: 9000), firstSequence: 1, count: 1)
        }
        try fixture.append(spool, from: 1, records: 1)
        #expect(spool.isUsable)
    }

    @Test("durability .interval: a tick syncs the open segment once the interval has passed, not before")
    func intervalSync() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1", durability: .interval(.seconds(10)))
        try fixture.append(spool, from: 1, records: 1)
        let dirty = { spool.locked { $0.writer?.dirty } }
        #expect(dirty() == true)
        try spool.tick(now: SystemClock.monotonicNanoseconds())
        #expect(dirty() == true)
        try spool.tick(now: SystemClock.monotonicNanoseconds() + 11_000_000_000)
        #expect(dirty() == false)
        try fixture.append(spool, from: 9, records: 1)
        try spool.sync()
        #expect(dirty() == false)
    }

    @Test("format: the file header and segment names read back")
    func format() throws {
        let header = SpoolFileHeader(kind: .segment, agentID: "agent", bootID: "boot", firstSequence: 42,
                                     previousLastSequence: 41, createdNanoseconds: 7)
        let bytes = header.encoded()
        #expect(bytes.count == SpoolFormat.fileHeaderBytes)
        #expect(bytes.withUnsafeBytes { SpoolFileHeader.decode($0) } == .header(header))
        var damaged = bytes
        damaged[30] ^= 1
        #expect(damaged.withUnsafeBytes { SpoolFileHeader.decode($0) } == .damaged)
        #expect(SpoolFormat.segmentName(42) == "segment-00000000000000000042")
        #expect(SpoolFormat.segmentFirstSequence("segment-00000000000000000042") == 42)
        #expect(SpoolFormat.segmentFirstSequence("segment-42") == nil)
        #expect(SpoolFormat.segmentName(.max).count == "segment-".count + 20)
    }
}
