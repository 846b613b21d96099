import CAuthRelayRPC
import AuthRelayProtocol
import Glibc
import ONCRPC

/// Round trips through the real rpcgen routines, the path every report takes:
/// WireArena lays the value out as C structs -> xdr_ar_* encodes -> xdr_ar_* decodes
/// into fresh C structs -> the Swift value is read back -> the decoder's memory is freed.
package enum Wire {
    /// The XDR bytes of `event`, or nil when the encoder refuses it.
    package static func encode(_ event: Event, arena: WireArena = WireArena()) -> [UInt8]? {
        arena.withWire(event) { AuthRelayProgram.event.encode(&$0.pointee) }
    }

    package static func encode(_ batch: EventBatch, arena: WireArena = WireArena()) -> [UInt8]? {
        arena.withWire(batch) { AuthRelayProgram.eventBatch.encode(&$0.pointee) }
    }

    package static func decodeEvent(_ bytes: [UInt8]) -> Event? {
        bytes.withUnsafeBytes { AuthRelayProgram.event.decode($0, as: ar_event.self) { Event(wire: $0) } }
    }

    package static func decodeBatch(_ bytes: [UInt8]) -> EventBatch? {
        bytes.withUnsafeBytes {
            AuthRelayProgram.eventBatch.decode($0, as: ar_event_batch.self) { wire in
                let events = UnsafeBufferPointer(start: wire.pointee.events.events_val, count: Int(wire.pointee.events.events_len))
                return EventBatch(
                    header: BatchHeader(wire: wire.pointee.header),
                    events: events.indices.map { Event(wire: events.baseAddress! + $0) })
            }
        }
    }

    package static func roundTrip(_ event: Event) -> Event? {
        encode(event).flatMap(decodeEvent)
    }

    package static func roundTrip(_ batch: EventBatch) -> EventBatch? {
        encode(batch).flatMap(decodeBatch)
    }
}

/// Events at the edges of the protocol's bounds.
package enum Sample {
    package static func event(
        sequence: UInt64 = 1, path: String = "/usr/bin/true", target: String = "/etc/passwd", digest: [UInt8] = [0xde, 0xad]
    ) -> Event {
        Event(
            sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000, kind: .open, verdict: .allow,
            decisionNanoseconds: 1234, pid: 4321, ppid: 1, uid: 1000, gid: 1000, flags: [.cached],
            executablePath: path, targetPath: target, digest: digest)
    }

    /// Every variable field at its maximum, every number at an extreme.
    package static func maximal(sequence: UInt64 = .max) -> Event {
        Event(
            sequence: sequence, timestampNanoseconds: .max, kind: .other(.max), verdict: .deny,
            decisionNanoseconds: .max, pid: .min, ppid: .max, uid: .max, gid: .max,
            flags: Event.Flags(rawValue: .max),
            executablePath: "/" + String(repeating: "e", count: Event.maxPathBytes - 1),
            targetPath: "/" + String(repeating: "t", count: Event.maxPathBytes - 1),
            digest: (0..<Event.maxDigestBytes).map { UInt8(255 - $0) })
    }

    package static func batch(count: Int, firstSequence: UInt64 = 1, make: (UInt64) -> Event = { event(sequence: $0) }) -> EventBatch {
        EventBatch(
            header: BatchHeader(agentID: "agent-1", bootID: "boot-1", firstSequence: firstSequence, dropped: 0),
            events: (0..<count).map { make(firstSequence + UInt64($0)) })
    }
}
