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
