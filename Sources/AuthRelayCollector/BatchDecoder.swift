import AuthRelayProtocol
import CAuthRelayRPC
import Glibc
import ONCRPC

/// The C layout of a REPORT_BATCH argument: a header, then `ar_event events<AR_BATCH_MAX>`.
/// Version 2's `ar_event_batch` and version 3's `ar3_event_batch` differ only in the header.
protocol WireEventBatch {
    associatedtype Header
    init()
    var header: Header { get set }
    var eventCount: u_int { get set }
    var eventArray: UnsafeMutablePointer<ar_event>? { get set }
    /// The header's and the whole batch's rpcgen routines.
    static var headerRoutine: XDRRoutine { get }
    static var batchRoutine: XDRRoutine { get }
    /// The largest encoding of a header: past it, bytes that do not decode as one never will.
    static var maxHeaderBytes: Int { get }
    static func emptyHeader() -> Header
}

extension ar_event_batch: WireEventBatch {
    var eventCount: u_int {
        get { events.events_len }
        set { events.events_len = newValue }
    }
    var eventArray: UnsafeMutablePointer<ar_event>? {
        get { events.events_val }
        set { events.events_val = newValue }
    }
    static var headerRoutine: XDRRoutine { AuthRelayProgram.batchHeader }
    static var batchRoutine: XDRRoutine { AuthRelayProgram.eventBatch }
    /// Two ids, first_seq, dropped.
    static var maxHeaderBytes: Int { 2 * (4 + Int(AR_ID_MAX)) + 16 }
    static func emptyHeader() -> ar_batch_header { ar_batch_header() }
}

extension ar3_event_batch: WireEventBatch {
    var eventCount: u_int {
        get { events.events_len }
        set { events.events_len = newValue }
    }
    var eventArray: UnsafeMutablePointer<ar_event>? {
        get { events.events_val }
        set { events.events_val = newValue }
    }
    static let version3Header = XDRRoutine(CAuthRelayRPC_xdr_ar3_batch_header)
    static var headerRoutine: XDRRoutine { version3Header }
    static var batchRoutine: XDRRoutine { AuthRelayProgram.eventBatchV3 }
    /// Two ids, first_seq, the loss count and 64 ranges of 20 bytes, the status (9 hypers, 2 ints).
    static var maxHeaderBytes: Int { 2 * (4 + Int(AR_ID_MAX)) + 8 + 4 + Int(AR_LOSS_MAX) * 20 + 9 * 8 + 2 * 4 }
    static func emptyHeader() -> ar3_batch_header { ar3_batch_header() }
}

/// rpcgen's way, kept beside `ViewBatchDecoder` (which the collector uses) for
/// fuzz-batch-decoder and comparisons.
///
/// Decodes a REPORT_BATCH argument (version 2 or 3) event by event while its
/// record arrives, so a batch sent in many fragments is mostly decoded by the
/// time its last byte comes (see `RPCIncrementalDecoder`).
///
/// It produces exactly what rpcgen's routine for the batch would: the header
/// with the header's routine, the count checked against AR_BATCH_MAX, the
/// array allocated with calloc as `xdr_array` does, each event with
/// `xdr_ar_event`; and it is freed the same way, with `xdr_free`. An event
/// not all there yet is freed and decoded again when more bytes come.
final class BatchDecoder<Batch: WireEventBatch>: RPCIncrementalDecoder {
    private let batch = UnsafeMutablePointer<Batch>.allocate(capacity: 1)
    /// Argument bytes taken by the header, the count and the decoded events.
    private var consumed = 0
    private var headerDecoded = false
    private var expectedEvents: Int?
    private var decodedEvents = 0

    /// The largest encoding of an event: past it, a piece that does not decode never will.
    private static var maxEventBytes: Int { 64 + 2 * Int(AR_PATH_MAX) + Int(AR_DIGEST_MAX) }

    init() {
        batch.initialize(to: Batch())
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
            guard let used = Batch.headerRoutine.decodePrefix(rest(bytes), into: &batch.pointee.header) else {
                Batch.headerRoutine.free(&batch.pointee.header)
                batch.pointee.header = Batch.emptyHeader()
                return bytes.count - consumed < Batch.maxHeaderBytes
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
                batch.pointee.eventArray = events.assumingMemoryBound(to: ar_event.self)
            }
            batch.pointee.eventCount = u_int(count)
        }
        while decodedEvents < expectedEvents!, let events = batch.pointee.eventArray {
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
        Batch.batchRoutine.free(batch)  // the header's strings (and losses), every event's fields, the array
        batch.pointee = Batch()
        consumed = 0
        headerDecoded = false
        expectedEvents = nil
        decodedEvents = 0
    }

    private func rest(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[consumed...])
    }
}
