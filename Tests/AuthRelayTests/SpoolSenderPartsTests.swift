@testable import AuthRelay
import AuthRelayProtocol
import Logging
import SystemSupport
import Testing
import TestSupport

/// The small parts of the sender with a spool: where a refused submit's
/// number goes, the ledger of boot ends, the spool's default size.
@Suite("Spool sender parts")
struct SpoolSenderPartsTests {
    static func core(capacity: Int, overflow: EventSender.OverflowPolicy = .dropNewest) -> SenderCore {
        var configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent"), agentID: "parts")
        configuration.capacity = capacity
        configuration.overflow = overflow
        return SenderCore(configuration: configuration)
    }

    @Test("a refused submit rides on the next queued event, in queue order; with an empty queue it is taken as pending")
    func dropsTakeTheirPlace() throws {
        let core = Self.core(capacity: 4)
        for sequence in UInt64(1)...6 { core.submit(Sample.event(sequence: sequence)) }  // 4 queued, 2 refused
        #expect(core.counters.dropped.load(ordering: .relaxed) == 2)
        for expected in 0..<4 {
            let (event, position) = try #require(core.takePositioned())
            #expect(position == expected && event.sequence == 0, "sequence carries the drops before it")
        }
        #expect(core.submit(Sample.event(sequence: 7, target: "/seventh")) == .queued)
        let (carrier, _) = try #require(core.takePositioned())
        #expect(carrier.targetPath == "/seventh" && carrier.sequence == 2, "the two drops happened before the seventh event")
        core.submit(Sample.event(sequence: 8))
        core.submit(Sample.event(sequence: 9))
        core.submit(Sample.event(sequence: 10))
        core.submit(Sample.event(sequence: 11))
        core.submit(Sample.event(sequence: 12))  // refused: nothing after it yet
        while core.takePositioned() != nil {}
        #expect(core.takeDropsPending() == 1)
        #expect(core.takeDropsPending() == 0)
    }

    @Test("drop-oldest: the consumer finds each eviction as a jump in queue positions")
    func evictionsAreJumps() throws {
        let core = Self.core(capacity: 4, overflow: .dropOldest)
        for (sequence, name) in zip(UInt64(1)...6, ["first", "second", "third", "fourth", "fifth", "sixth"]) {
            #expect(core.submit(Sample.event(sequence: sequence, target: "/" + name)) == .queued)
        }
        #expect(core.counters.evicted.load(ordering: .relaxed) == 2)
        let (first, position) = try #require(core.takePositioned())
        #expect(first.targetPath == "/third" && position == 2, "positions 0 and 1 were evicted")
    }

    @Test("the ledger of boot ends: kept across a reopen, one entry per boot, removed once reported")
    func ledger() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "authrelay-ledger")
        defer { FileSystem.removeTree(directory) }
        let unclean = BootEnd(agentID: "host 1", bootID: "b1", ending: .unclean, lastSequence: 41, endedNanoseconds: 9, reportedBy: "b3")
        let clean = BootEnd(agentID: "host 1", bootID: "b2", ending: .clean, lastSequence: 0, endedNanoseconds: 10, reportedBy: "b3")
        let ledger = BootEndLedger(directory: directory)
        try ledger.add([unclean, clean])
        try ledger.add([unclean])
        #expect(ledger.pending == [unclean, clean])
        #expect(BootEndLedger(directory: directory).pending == [unclean, clean])
        try ledger.remove(unclean)
        #expect(BootEndLedger(directory: directory).pending == [clean])
        try ledger.remove(clean)
        #expect(!FileSystem.exists(directory + "/" + BootEndLedger.fileName))
        try FileSystem.writeFile(directory + "/" + BootEndLedger.fileName, Array("garbage\n\(BootEndLedger.line(clean))".utf8))
        #expect(BootEndLedger(directory: directory).pending == [clean], "a line that does not read is skipped")
        let small = BootEndLedger(directory: directory, capacity: 2)
        try small.add([unclean])
        var third = clean
        third.bootID = "b4"
        try small.add([third])
        #expect(small.pending == [unclean, third], "past its capacity the oldest goes")
    }

    @Test("the default spool holds 10 minutes at 2,000 events/s of 240-byte events: 320 MiB")
    func defaultSize() {
        #expect(SpoolSizing.realisticEventBytes == 240)
        #expect(SpoolSizing.defaultMaxBytes == 320 << 20)
        #expect(Double(SpoolSizing.defaultMaxBytes) >= 1_200_000.0 * Double(SpoolSizing.realisticEventBytes))
        #expect(SpoolSizing.segmentBytes(forMaxBytes: 1 << 20) == 64 << 10)
        #expect(SpoolSizing.segmentBytes(forMaxBytes: SpoolSizing.defaultMaxBytes) == 8 << 20)
        // Docs/Operations.md's sizing table.
        for (rate, minutes, mebibytes) in [(2000.0, 10, 320), (2000, 60, 1872), (10_000, 10, 1560), (500, 60, 480)] {
            #expect(SpoolSizing.bytes(rate: rate, outage: .seconds(minutes * 60)) == Int64(mebibytes) << 20, "\(rate)/s, \(minutes) min")
        }
    }
}
