import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC

/// Decodes a REPORT_BATCH argument (version 2 or 3) straight from the call's
/// bytes into a `ReceivedBatch` that it keeps from call to call: fixed fields
/// by value, ids, paths and digests as views of the argument bytes. Once its
/// `events` have held the largest batch it allocates nothing (rpcgen's
/// routines malloc two strings and a digest per event and calloc the array).
///
/// Incremental, as `RPCIncrementalDecoder` asks: each event is decoded once,
/// when its last byte has come. The record buffer may move as it grows (the
/// framer reallocates it), so views made from earlier bytes would dangle:
/// `rebase` moves every view by the distance the buffer moved, before any
/// decode or finish reads on (the bytes themselves never change, only where
/// they are). That keeps the incremental property without copying.
///
/// Accepts exactly what rpcgen's `xdr_ar_event_batch` / `xdr_ar3_event_batch`
/// accept (see `XDRViewReader`), trailing bytes after the batch included
/// (the dispatcher's decode ignores them too); the differential fuzz target
/// fuzz-view-decoder checks that on the same bytes.
final class ViewBatchDecoder: RPCIncrementalDecoder {
    enum Version { case v2, v3 }

    let version: Version
    /// The decoded batch, after `finish` returned true; its views are valid while the call's bytes are.
    private(set) var batch = ReceivedBatch()
    /// Handed to the dispatcher as "the argument": only its address means anything
    /// (the handler asks the pool whose it is). Zeroed C batch-sized memory, in case.
    let argument: UnsafeMutableRawPointer
    /// Gives this decoder back when reset (nil: not pooled).
    weak var pool: ViewBatchDecoderPool?
    /// In its pool's free list.
    var isFree = false

    private var consumed = 0
    private var headerDecoded = false
    private var expectedEvents: Int?
    /// Where the bytes were when the views were made.
    private var base: UnsafeRawPointer?

    init(_ version: Version) {
        self.version = version
        let size = max(MemoryLayout<ar_event_batch>.size, MemoryLayout<ar3_event_batch>.size)
        argument = .allocate(byteCount: size, alignment: 16)
        argument.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    }

    deinit { argument.deallocate() }

    func decode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // Each call sees the bytes of the one before, and more: fewer is a caller's mistake.
        guard bytes.count >= consumed else { return false }
        rebase(to: bytes.baseAddress)
        do {
            if !headerDecoded {
                var reader = XDRViewReader(bytes, at: consumed)
                try decodeHeader(&reader)
                consumed = reader.offset
                headerDecoded = true
            }
            if expectedEvents == nil {
                var reader = XDRViewReader(bytes, at: consumed)
                let count = try reader.u32()
                guard count <= UInt32(AR_BATCH_MAX) else { return false }  // xdr_array's bound
                consumed = reader.offset
                expectedEvents = Int(count)
                batch.events.reserveCapacity(Int(count))
            }
            while batch.events.count < expectedEvents! {
                var reader = XDRViewReader(bytes, at: consumed)
                batch.events.append(try Self.event(&reader))
                consumed = reader.offset
            }
            return true
        } catch .needsMore {
            if !headerDecoded { batch.losses.removeAll(keepingCapacity: true) }  // read again with more bytes
            return true
        } catch {
            return false
        }
    }

    func finish(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let done = decode(bytes) && headerDecoded && batch.events.count == expectedEvents
        if done { pool?.finished = self }
        return done
    }

    func reset() {
        batch.removeAll()
        batch.firstSequence = 0
        batch.dropped = 0
        consumed = 0
        headerDecoded = false
        expectedEvents = nil
        base = nil
        pool?.giveBack(self)
    }

    private func decodeHeader(_ reader: inout XDRViewReader) throws(XDRViewReader.Failure) {
        batch.agentID = try reader.string(max: UInt32(AR_ID_MAX))
        batch.bootID = try reader.string(max: UInt32(AR_ID_MAX))
        batch.firstSequence = try reader.u64()
        switch version {
        case .v2:
            batch.dropped = try reader.u64()
            batch.status = nil
        case .v3:
            batch.dropped = 0
            let count = try reader.u32()
            guard count <= UInt32(AR_LOSS_MAX) else { throw .invalid }
            batch.losses.removeAll(keepingCapacity: true)
            for _ in 0..<count {
                let first = try reader.u64(), last = try reader.u64()
                let reason = try reader.u32()
                batch.losses.append(LossRange(first: first, last: last, reason: LossReason(rawValue: reason)))
            }
            batch.status = try Self.status(&reader)
        }
    }

    /// `ar_agent_status`, converted as `AgentStatus(wire:)` converts the C struct.
    private static func status(_ reader: inout XDRViewReader) throws(XDRViewReader.Failure) -> AgentStatus {
        var wire = ar_agent_status()
        wire.submitted = u_quad_t(try reader.u64())
        wire.spooled = u_quad_t(try reader.u64())
        wire.replayed = u_quad_t(try reader.u64())
        wire.evicted = u_quad_t(try reader.u64())
        wire.corrupt = u_quad_t(try reader.u64())
        wire.queue_dropped = u_quad_t(try reader.u64())
        wire.memory_fallbacks = u_quad_t(try reader.u64())
        wire.spool_bytes = u_quad_t(try reader.u64())
        wire.oldest_spooled_ns = u_quad_t(try reader.u64())
        wire.spool_segments = try reader.u32()
        wire.spool_usable = try reader.u32()
        return AgentStatus(wire: wire)
    }

    /// One `ar_event`, as `ReceivedEvent(ar_event)` reads the C struct.
    private static func event(_ reader: inout XDRViewReader) throws(XDRViewReader.Failure) -> ReceivedEvent {
        let sequence = try reader.u64(), timestamp = try reader.u64()
        let kind = try reader.u32(), verdict = try reader.u32()
        let decision = try reader.u64()
        let pid = try reader.i32(), ppid = try reader.i32()
        let uid = try reader.u32(), gid = try reader.u32(), flags = try reader.u32()
        let executable = try reader.string(max: UInt32(AR_PATH_MAX))
        let target = try reader.string(max: UInt32(AR_PATH_MAX))
        let digest = try reader.opaque(max: UInt32(AR_DIGEST_MAX))
        return ReceivedEvent(sequence: sequence, timestampNanoseconds: timestamp, kind: kind, verdict: verdict,
                             decisionNanoseconds: decision, pid: pid, ppid: ppid, uid: uid, gid: gid, flags: flags,
                             executablePath: executable, targetPath: target, digest: digest)
    }

    /// Moves every view made so far to where the bytes are now.
    private func rebase(to address: UnsafeRawPointer?) {
        defer { base = address }
        guard let old = base, let new = address, old != new else { return }
        func moved(_ view: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
            guard let start = view.baseAddress else { return view }
            return UnsafeRawBufferPointer(start: new + (start - old), count: view.count)
        }
        batch.agentID = moved(batch.agentID)
        batch.bootID = moved(batch.bootID)
        for index in batch.events.indices {
            batch.events[index].executablePath = moved(batch.events[index].executablePath)
            batch.events[index].targetPath = moved(batch.events[index].targetPath)
            batch.events[index].digest = moved(batch.events[index].digest)
        }
    }
}
