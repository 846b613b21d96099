import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC
import Testing
import TestSupport

/// Events encoded once by the sender (`EventXDR`) and sent through the
/// pass-through routines must be byte for byte what rpcgen's routines make of
/// the same values: a collector cannot tell the difference.
@Suite("Encoded events and pass-through batches")
struct EncodedEventsTests {
    static let events: [Event] = [
        Sample.event(),
        Sample.maximal(),
        Sample.event(sequence: 7, path: "/usr/bin/é", target: "/tmp/odd-\u{1F600}", digest: [1, 2, 3]),
        Sample.event(sequence: 8, path: "", target: "", digest: []),
        Sample.numbered(9),
    ]

    /// What xdr_ar_event writes for `event`.
    static func rpcgenBytes(_ event: Event) -> [UInt8]? {
        WireArena().withWire(event) { wire in AuthRelayProgram.event.encode(&wire.pointee) }
    }

    @Test("EventXDR writes what xdr_ar_event writes, and reads its lengths, sequence and timestamp back")
    func sameBytesAsRpcgen() throws {
        for event in Self.events {
            var bytes: [UInt8] = []
            let size = EventXDR.append(event, to: &bytes)
            #expect(size == event.encodedSize && bytes.count == size)
            #expect(bytes == Self.rpcgenBytes(event), "\(event)")
            bytes.withUnsafeBytes { raw in
                #expect(EventXDR.length(in: raw, at: 0) == size)
                #expect(EventXDR.sequence(in: raw, at: 0) == event.sequence)
                #expect(EventXDR.timestamp(in: raw, at: 0) == event.timestampNanoseconds)
            }
        }
    }

    @Test("boundaries of concatenated events; bytes that do not hold whole events do not read")
    func boundaries() {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for event in Self.events {
            EventXDR.append(event, to: &bytes)
            ends.append(bytes.count)
        }
        bytes.withUnsafeBytes { raw in
            #expect(EventXDR.boundaries(of: raw, count: Self.events.count) == ends)
            #expect(EventXDR.boundaries(of: raw, count: Self.events.count - 1) == nil, "bytes left over")
            let cut = UnsafeRawBufferPointer(rebasing: raw[..<(raw.count - 4)])
            #expect(EventXDR.boundaries(of: cut, count: Self.events.count) == nil)
            #expect(EventXDR.length(in: cut, at: ends[ends.count - 2]) == nil)
        }
        // A length over the path bound is damage, not a length.
        var bad = bytes
        bad.replaceSubrange(EventXDR.fixedBytes..<(EventXDR.fixedBytes + 4), with: [0, 0, 0x10, 0x01])
        bad.withUnsafeBytes { #expect(EventXDR.length(in: $0, at: 0) == nil) }
    }

    /// The bytes a pass-through call puts on the wire for `batch`.
    static func passThroughBytes(_ batch: EncodedBatch, version: ProtocolVersion) -> [UInt8]? {
        PassThroughWire.withBatch(batch, version: version) { argument, routine in routine.encode(&argument) }
    }

    static func encoded(_ batch: EventBatch) -> EncodedBatch {
        var encoded = EncodedBatch(agentID: batch.header.agentID, bootID: batch.header.bootID, firstSequence: batch.header.firstSequence)
        for event in batch.events { EventXDR.append(event, to: &encoded.events) }
        encoded.eventCount = batch.events.count
        encoded.losses = batch.header.losses
        encoded.status = batch.header.status
        return encoded
    }

    @Test("a version 2 pass-through batch is xdr_ar_event_batch's bytes (dropped 0)")
    func versionTwo() {
        for count in [0, 1, 17, Event.maxBatchEvents] {
            let batch = Sample.batch(count: count, firstSequence: 100) { Sample.numbered($0) }
            let expected = WireArena().withWire(batch) { wire in AuthRelayProgram.eventBatch.encode(&wire.pointee) }
            #expect(Self.passThroughBytes(Self.encoded(batch), version: .v2) == expected, "\(count) events")
        }
    }

    @Test("a version 3 pass-through batch is xdr_ar3_event_batch's bytes, losses and status included")
    func versionThree() {
        // Events 10, 11, 15, 16, 17 around losses 12...14 and 18...20.
        var batch = Sample.batch(count: 5, firstSequence: 10) { Sample.numbered($0 < 12 ? $0 : $0 + 3) }
        batch.header.losses = [LossRange(first: 12, last: 14, reason: .queueFull), LossRange(first: 18, last: 20, reason: .spoolEvicted)]
        batch.header.status.submitted = 99
        batch.header.status.spooled = 77
        batch.header.status.spoolUsable = true
        batch.header.status.oldestSpooledNanoseconds = 1_700_000_000_000_000_000
        let expected = WireArena().withWire(version3: batch) { wire in AuthRelayProgram.eventBatchV3.encode(&wire.pointee) }
        #expect(expected != nil)
        #expect(Self.passThroughBytes(Self.encoded(batch), version: .v3) == expected)
    }

    @Test("a version 1 pass-through event is xdr_ar_event's bytes")
    func versionOne() {
        for event in Self.events {
            var bytes: [UInt8] = []
            EventXDR.append(event, to: &bytes)
            let sent = bytes.withUnsafeBytes { raw in
                PassThroughWire.withEvent(raw) { argument, routine in routine.encode(&argument) }
            }
            #expect(sent == Self.rpcgenBytes(event))
        }
    }

    @Test("argument sizes: what the UDP cap counts")
    func argumentSizes() {
        var batch = Self.encoded(Sample.batch(count: 3) { Sample.numbered($0) })
        #expect(batch.argumentBytes(version: .v2) == Self.passThroughBytes(batch, version: .v2)?.count)
        batch.losses = [LossRange(first: 4, last: 9, reason: .refused)]
        #expect(batch.argumentBytes(version: .v3) == Self.passThroughBytes(batch, version: .v3)?.count)
    }
}
