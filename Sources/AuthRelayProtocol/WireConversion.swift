import CAuthRelayRPC
import Glibc
import ONCRPC

// Conversions between the Swift values and rpcgen's C structs. `package`:
// the collector module needs them too, no user of the library does.

/// The program: its number, versions, procedures and XDR routines.
public enum AuthRelayProgram {
    /// AUTHRELAY_PROG. Clients and servers also take another number at run time.
    public static let program = UInt32(AUTHRELAY_PROG)
    public static let versions: ClosedRange<UInt32> = 1...2

    package static let event = XDRRoutine(CAuthRelayRPC_xdr_ar_event)
    package static let ack = XDRRoutine(CAuthRelayRPC_xdr_ar_ack)
    package static let batchHeader = XDRRoutine(CAuthRelayRPC_xdr_ar_batch_header)
    package static let eventBatch = XDRRoutine(CAuthRelayRPC_xdr_ar_event_batch)
    package static let batchAck = XDRRoutine(CAuthRelayRPC_xdr_ar_batch_ack)
    package static let stats = XDRRoutine(CAuthRelayRPC_xdr_ar_stats)

    package static let reportEventV1 = UInt32(AR1_REPORT_EVENT)
    package static let reportBatchV2 = UInt32(AR2_REPORT_BATCH)
    package static let getStatsV2 = UInt32(AR2_GET_STATS)
}

extension String {
    /// Reads a decoded XDR string; NULL (never sent by a valid peer) reads as "".
    package init(xdr pointer: UnsafeMutablePointer<CChar>?) {
        self = pointer.map { String(cString: $0) } ?? ""
    }
}

extension Event {
    package init(wire: UnsafePointer<ar_event>) {
        let event = wire.pointee
        self.init(
            sequence: UInt64(event.seq),
            timestampNanoseconds: UInt64(event.timestamp_ns),
            kind: Kind(rawValue: event.kind.rawValue),
            verdict: event.verdict.rawValue == 0 ? .allow : .deny,
            decisionNanoseconds: UInt64(event.decision_ns),
            pid: event.pid, ppid: event.ppid, uid: event.uid, gid: event.gid,
            flags: Flags(rawValue: event.flags),
            executablePath: String(xdr: event.exe_path),
            targetPath: String(xdr: event.target_path),
            digest: event.digest.digest_val.map {
                Array(UnsafeRawBufferPointer(start: $0, count: Int(event.digest.digest_len)))
            } ?? [])
    }
}

extension BatchHeader {
    package init(wire: ar_batch_header) {
        self.init(agentID: String(xdr: wire.agent_id), bootID: String(xdr: wire.boot_id),
                  firstSequence: UInt64(wire.first_seq), dropped: UInt64(wire.dropped))
    }
}

extension Ack {
    package init(wire: ar_ack) {
        self.init(status: ReportStatus(rawValue: wire.status.rawValue), sequence: UInt64(wire.seq))
    }

    package var wire: ar_ack {
        ar_ack(status: ar_status(rawValue: status.rawValue), seq: u_quad_t(sequence))
    }
}

extension BatchAck {
    package init(wire: ar_batch_ack) {
        self.init(status: ReportStatus(rawValue: wire.status.rawValue), accepted: wire.accepted,
                  duplicates: wire.duplicates, highestSequence: UInt64(wire.highest_seq))
    }

    package var wire: ar_batch_ack {
        ar_batch_ack(status: ar_status(rawValue: status.rawValue), accepted: accepted, duplicates: duplicates,
                     highest_seq: u_quad_t(highestSequence))
    }
}

extension CollectorStats {
    package init(wire: ar_stats) {
        self.init()
        startedNanoseconds = UInt64(wire.started_ns)
        batches = UInt64(wire.batches)
        events = UInt64(wire.events)
        written = UInt64(wire.written)
        duplicates = UInt64(wire.duplicates)
        legacyEvents = UInt64(wire.legacy_events)
        reportedDropped = UInt64(wire.reported_dropped)
        gapEvents = UInt64(wire.gap_events)
        rejected = UInt64(wire.rejected)
        sinkErrors = UInt64(wire.sink_errors)
        agents = wire.agents
        connections = wire.connections
    }

    package var wire: ar_stats {
        ar_stats(started_ns: u_quad_t(startedNanoseconds), batches: u_quad_t(batches), events: u_quad_t(events),
                 written: u_quad_t(written), duplicates: u_quad_t(duplicates), legacy_events: u_quad_t(legacyEvents),
                 reported_dropped: u_quad_t(reportedDropped), gap_events: u_quad_t(gapEvents),
                 rejected: u_quad_t(rejected), sink_errors: u_quad_t(sinkErrors), agents: agents,
                 connections: connections)
    }
}

/// Lays Swift events out as rpcgen C structs, for encoding.
///
/// Reused from call to call: the C event array and one byte arena that holds
/// every string and digest (NUL-terminated), so a batch of 512 events costs a
/// few memcpy calls and no allocation once warm. Not thread-safe: one per sender.
package final class WireArena {
    private var events: UnsafeMutableBufferPointer<ar_event>
    private var losses: UnsafeMutableBufferPointer<ar_loss_range>
    private var bytes: UnsafeMutableRawBufferPointer
    private var used = 0

    package init(eventCapacity: Int = Event.maxBatchEvents, byteCapacity: Int = 64 * 1024) {
        events = .allocate(capacity: eventCapacity)
        losses = .allocate(capacity: Event.maxLossRanges)
        bytes = .allocate(byteCount: byteCapacity, alignment: 8)
    }

    deinit {
        events.deallocate()
        losses.deallocate()
        bytes.deallocate()
    }

    /// Lays out `event` and lets `body` use it; pointers are valid only inside `body`.
    package func withWire<T, E: Error>(_ event: Event, _ body: (UnsafeMutablePointer<ar_event>) throws(E) -> T) throws(E) -> T {
        reset(events: 1, stringBytes: Self.stringBytes(event))
        events[0] = lay(event)
        return try body(events.baseAddress!)
    }

    /// Lays out a batch (validated by the caller) and lets `body` use it.
    package func withWire<T, E: Error>(_ batch: EventBatch, _ body: (UnsafeMutablePointer<ar_event_batch>) throws(E) -> T) throws(E) -> T {
        let stringBytes = batch.events.reduce(batch.header.agentID.utf8.count + batch.header.bootID.utf8.count + 2) {
            $0 + Self.stringBytes($1)
        }
        reset(events: batch.events.count, stringBytes: stringBytes)
        for (index, event) in batch.events.enumerated() {
            events[index] = lay(event)
        }
        var wire = ar_event_batch()
        wire.header.agent_id = copy(batch.header.agentID)
        wire.header.boot_id = copy(batch.header.bootID)
        wire.header.first_seq = u_quad_t(batch.header.firstSequence)
        wire.header.dropped = u_quad_t(batch.header.dropped)
        wire.events.events_len = u_int(batch.events.count)
        wire.events.events_val = events.baseAddress
        return try body(&wire)
    }

    /// Lays out a version 3 batch (validated by the caller) and lets `body` use it.
    package func withWire<T, E: Error>(version3 batch: EventBatch, _ body: (UnsafeMutablePointer<ar3_event_batch>) throws(E) -> T) throws(E) -> T {
        let stringBytes = batch.events.reduce(batch.header.agentID.utf8.count + batch.header.bootID.utf8.count + 2) {
            $0 + Self.stringBytes($1)
        }
        reset(events: batch.events.count, stringBytes: stringBytes)
        for (index, event) in batch.events.enumerated() {
            events[index] = lay(event)
        }
        let lossCount = min(batch.header.losses.count, losses.count)
        for index in 0..<lossCount { losses[index] = batch.header.losses[index].wire }
        var wire = ar3_event_batch()
        wire.header.agent_id = copy(batch.header.agentID)
        wire.header.boot_id = copy(batch.header.bootID)
        wire.header.first_seq = u_quad_t(batch.header.firstSequence)
        wire.header.losses.losses_len = u_int(lossCount)
        wire.header.losses.losses_val = losses.baseAddress
        wire.header.status = batch.header.status.wire
        wire.events.events_len = u_int(batch.events.count)
        wire.events.events_val = events.baseAddress
        return try body(&wire)
    }

    /// Lays out a boot-end report and lets `body` use it.
    package func withWire<T, E: Error>(_ report: BootEnd, _ body: (UnsafeMutablePointer<ar_boot_end>) throws(E) -> T) throws(E) -> T {
        reset(events: 0, stringBytes: report.agentID.utf8.count + report.bootID.utf8.count + report.reportedBy.utf8.count + 3)
        var wire = ar_boot_end()
        wire.agent_id = copy(report.agentID)
        wire.boot_id = copy(report.bootID)
        wire.ending = report.ending == .clean ? AR_BOOT_CLEAN : AR_BOOT_UNCLEAN
        wire.last_seq = u_quad_t(report.lastSequence)
        wire.ended_ns = u_quad_t(report.endedNanoseconds)
        wire.reported_by = copy(report.reportedBy)
        return try body(&wire)
    }

    private static func stringBytes(_ event: Event) -> Int {
        event.executablePath.utf8.count + event.targetPath.utf8.count + event.digest.count + 2
    }

    private func reset(events count: Int, stringBytes: Int) {
        if count > events.count {
            events.deallocate()
            events = .allocate(capacity: count)
        }
        if stringBytes > bytes.count {
            bytes.deallocate()
            bytes = .allocate(byteCount: max(stringBytes, bytes.count * 2), alignment: 8)
        }
        used = 0
    }

    private func lay(_ event: Event) -> ar_event {
        var wire = ar_event()
        wire.seq = u_quad_t(event.sequence)
        wire.timestamp_ns = u_quad_t(event.timestampNanoseconds)
        wire.kind = ar_kind(rawValue: event.kind.rawValue)
        wire.verdict = ar_verdict(rawValue: event.verdict.rawValue)
        wire.decision_ns = u_quad_t(event.decisionNanoseconds)
        wire.pid = event.pid
        wire.ppid = event.ppid
        wire.uid = event.uid
        wire.gid = event.gid
        wire.flags = event.flags.rawValue
        wire.exe_path = copy(event.executablePath)
        wire.target_path = copy(event.targetPath)
        wire.digest.digest_len = u_int(event.digest.count)
        wire.digest.digest_val = copy(bytes: event.digest)
        return wire
    }

    private func copy(_ text: String) -> UnsafeMutablePointer<CChar> {
        var text = text
        let start = bytes.baseAddress! + used
        let count = text.withUTF8 { utf8 in
            if let source = utf8.baseAddress { start.copyMemory(from: source, byteCount: utf8.count) }
            return utf8.count
        }
        start.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
        used += count + 1
        return start.assumingMemoryBound(to: CChar.self)
    }

    private func copy(bytes source: [UInt8]) -> UnsafeMutablePointer<CChar> {
        let start = bytes.baseAddress! + used
        source.withUnsafeBytes { if let from = $0.baseAddress { start.copyMemory(from: from, byteCount: $0.count) } }
        used += source.count
        return start.assumingMemoryBound(to: CChar.self)
    }
}
