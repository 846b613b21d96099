@testable import AuthRelay
import AuthRelayProtocol
import Logging
import Testing
import TestSupport

/// How the delivery thread cuts what the spooler stored into batches: loss
/// ranges in the header for version 3, as the gaps they leave for version 2,
/// within the event and byte limits (UDP's 8,800 bytes), a single event always.
@Suite("Batch composition")
struct BatchComposerTests {
    static let logger = Logger(label: "composer-test")

    /// A window holding events `first...last` as one piece.
    static func events(_ first: UInt64, _ last: UInt64, target: String = "/etc/passwd") -> StoredPiece {
        var bytes: [UInt8] = []
        for sequence in first...last { EventXDR.append(Sample.event(sequence: sequence, target: target), to: &bytes) }
        return StoredPiece(first: first, last: last, content: .events(count: Int(last - first + 1), bytes: bytes[...]))
    }

    static func loss(_ first: UInt64, _ last: UInt64, _ reason: LossReason = .queueFull) -> StoredPiece {
        StoredPiece(first: first, last: last, content: .loss(reason))
    }

    static func cursor(_ pieces: [StoredPiece]) -> BootCursor {
        let window = DeliveryWindow(liveBytes: 1 << 30, memoryBytes: 1 << 30)
        for piece in pieces { window.offer(piece, onDisk: false) }
        return BootCursor(current: "agent-1", bootID: "boot-1", window: window, logger: logger)
    }

    static func compose(_ cursor: BootCursor, _ version: ProtocolVersion, events: Int = 512, bytes: Int = 1 << 20) -> PendingBatch? {
        BatchComposer.compose(cursor, limits: BatchLimits(version: version, maxEvents: events, maxArgumentBytes: bytes),
                              status: AgentStatus(), logger: logger)
    }

    static func sequences(_ batch: EncodedBatch) -> [UInt64] {
        batch.events.withUnsafeBytes { raw in
            var offsets = [0]
            offsets += EventXDR.boundaries(of: raw, count: batch.eventCount)?.dropLast() ?? []
            return offsets.map { EventXDR.sequence(in: raw, at: $0) }
        }
    }

    @Test("version 3: events and loss ranges in one batch, every sequence once")
    func versionThreeCarriesLosses() throws {
        let cursor = Self.cursor([Self.events(1, 10), Self.loss(11, 15), Self.events(16, 20), Self.loss(21, 21, .spoolEvicted)])
        let pending = try #require(Self.compose(cursor, .v3))
        #expect(pending.batch.firstSequence == 1 && pending.batch.lastSequence == 21)
        #expect(pending.batch.losses == [LossRange(first: 11, last: 15, reason: .queueFull), LossRange(first: 21, last: 21, reason: .spoolEvicted)])
        #expect(Self.sequences(pending.batch) == Array(1...10) + Array(16...20))
        #expect(pending.spoolLost == 1)
        #expect(Self.compose(cursor, .v3) == nil, "nothing more")
    }

    @Test("version 2: a batch ends before a loss; the next starts after it; a trailing loss goes as an empty batch past it")
    func versionTwoLeavesGaps() throws {
        let cursor = Self.cursor([Self.events(1, 10), Self.loss(11, 15), Self.events(16, 20), Self.loss(21, 30)])
        let first = try #require(Self.compose(cursor, .v2))
        #expect(first.batch.firstSequence == 1 && first.batch.lastSequence == 10 && first.batch.losses.isEmpty)
        cursor.acknowledge(through: first.batch.lastSequence)
        let second = try #require(Self.compose(cursor, .v2))
        #expect(second.batch.firstSequence == 16 && second.batch.lastSequence == 20, "the collector sees 11...15 as a gap")
        #expect(Self.sequences(second.batch) == Array(16...20))
        let third = try #require(Self.compose(cursor, .v2))
        #expect(third.batch.eventCount == 0 && third.batch.firstSequence == 31 && third.batch.lastSequence == 30)
    }

    @Test("limits: events per batch, bytes per call (at least one event always), loss ranges per header")
    func limits() throws {
        let cursor = Self.cursor([Self.events(1, 100)])
        let byCount = try #require(Self.compose(cursor, .v3, events: 30))
        #expect(byCount.batch.eventCount == 30 && byCount.batch.lastSequence == 30)
        let eventBytes = Sample.event().encodedSize
        let header = byCount.batch.argumentBytes(version: .v3) - byCount.batch.events.count
        let byBytes = try #require(Self.compose(cursor, .v3, bytes: header + 7 * eventBytes + eventBytes / 2))
        #expect(byBytes.batch.firstSequence == 31 && byBytes.batch.eventCount == 7)
        #expect(byBytes.batch.argumentBytes(version: .v3) <= header + 7 * eventBytes + eventBytes / 2)
        let alone = try #require(Self.compose(cursor, .v3, bytes: 10))
        #expect(alone.batch.eventCount == 1, "a single event goes whatever the cap")

        var pieces: [StoredPiece] = []
        for index in UInt64(0)..<70 { pieces += [Self.events(2 * index + 1, 2 * index + 1), Self.loss(2 * index + 2, 2 * index + 2)] }
        let many = try #require(Self.compose(Self.cursor(pieces), .v3))
        #expect(many.batch.losses.count == Event.maxLossRanges && many.batch.lastSequence == 129, "the 64th loss is 128; event 129 still fits")
    }

    @Test("a piece that starts below the position is cut to it")
    func pieceCutToPosition() throws {
        let cursor = Self.cursor([Self.events(1, 10)])
        cursor.position = 4
        let pending = try #require(Self.compose(cursor, .v2))
        #expect(pending.batch.firstSequence == 4 && Self.sequences(pending.batch) == Array(4...10))
    }

    @Test("a range given up on (refused by a version 3 collector) goes as a refused loss")
    func givenUp() throws {
        let cursor = Self.cursor([Self.events(1, 10)])
        cursor.giveUp(1...5, reason: .refused)
        let pending = try #require(Self.compose(cursor, .v3))
        #expect(pending.batch.losses == [LossRange(first: 1, last: 5, reason: .refused)])
        #expect(Self.sequences(pending.batch) == Array(6...10))
    }
}
