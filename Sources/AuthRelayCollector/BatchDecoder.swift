import AuthRelayProtocol
import CAuthRelayRPC
import Glibc
import ONCRPC

/// Decodes an `ar_event_batch` event by event while its record arrives, so a
/// batch sent in many fragments is mostly decoded by the time its last byte
/// comes (see `RPCIncrementalDecoder`).
///
/// It produces exactly what rpcgen's `xdr_ar_event_batch` would: the header
/// with `xdr_ar_batch_header`, the count checked against AR_BATCH_MAX, the
/// array allocated with calloc as `xdr_array` does, each event with
/// `xdr_ar_event`; and it is freed the same way, with `xdr_free`. An event
/// not all there yet is freed and decoded again when more bytes come.
final class BatchDecoder: RPCIncrementalDecoder {
    private let batch = UnsafeMutablePointer<ar_event_batch>.allocate(capacity: 1)
    /// Argument bytes taken by the header, the count and the decoded events.
    private var consumed = 0
    private var headerDecoded = false
    private var expectedEvents: Int?
    private var decodedEvents = 0

    /// The largest encodings: past them, a piece that does not decode never will.
    private static let maxHeaderBytes = 2 * (4 + Int(AR_ID_MAX)) + 16
    private static let maxEventBytes = 64 + 2 * Int(AR_PATH_MAX) + Int(AR_DIGEST_MAX)
    private static let header = AuthRelayProgram.batchHeader

    init() {
        batch.initialize(to: ar_event_batch())
    }

    deinit {
        reset()
        batch.deallocate()
    }

    var argument: UnsafeMutableRawPointer { UnsafeMutableRawPointer(batch) }

    func decode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // Each call sees the bytes of the one before, and more: fewer is a caller's
        // mistake, refused rather than read past (every `bytes.count - consumed` below is then >= 0).
        guard bytes.count >= consumed else { return false }
        if !headerDecoded {
            guard let used = Self.header.decodePrefix(rest(bytes), into: &batch.pointee.header) else {
                Self.header.free(&batch.pointee.header)
                batch.pointee.header = ar_batch_header()
                return bytes.count - consumed < Self.maxHeaderBytes
            }
            consumed += used
            headerDecoded = true
        }
        if expectedEvents == nil {
            guard bytes.count - consumed >= 4 else { return true }
            // Bounded before it sizes anything, as xdr_array does.
            let count = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: consumed, as: UInt32.self)))
            guard count <= Int(AR_BATCH_MAX) else { return false }
            consumed += 4
            expectedEvents = count
            if count > 0 {
                let events = calloc(count, MemoryLayout<ar_event>.stride)!  // xdr_array's mem_alloc
                batch.pointee.events.events_val = events.assumingMemoryBound(to: ar_event.self)
            }
            batch.pointee.events.events_len = u_int(count)
        }
        while decodedEvents < expectedEvents!, let events = batch.pointee.events.events_val {
            let event = events + decodedEvents
            guard let used = AuthRelayProgram.event.decodePrefix(rest(bytes), into: event) else {
                AuthRelayProgram.event.free(event)
                event.pointee = ar_event()
                return bytes.count - consumed < Self.maxEventBytes
            }
            consumed += used
            decodedEvents += 1
        }
        return true
    }

    func finish(_ bytes: UnsafeRawBufferPointer) -> Bool {
        decode(bytes) && headerDecoded && decodedEvents == expectedEvents
    }

    func reset() {
        AuthRelayProgram.eventBatch.free(batch)  // the header's strings, every event's fields, the array
        batch.pointee = ar_event_batch()
        consumed = 0
        headerDecoded = false
        expectedEvents = nil
        decodedEvents = 0
    }

    private func rest(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[consumed...])
    }
}
