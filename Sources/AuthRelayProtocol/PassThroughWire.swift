import CAuthRelayRPC
import CTIRPC
import ONCRPC

/// A batch whose events are already XDR (`EventXDR`): the header as values,
/// the events as the bytes the spool holds. Sent through the pass-through
/// routines below, which encode the header with rpcgen's routine and copy the
/// events as they are: the same bytes on the wire as `ar_event_batch` /
/// `ar3_event_batch` with those events.
package struct EncodedBatch: Sendable, Equatable {
    package var agentID: String
    package var bootID: String
    /// The lowest sequence the batch accounts for (the first event's, or the first loss's).
    package var firstSequence: UInt64
    /// The highest sequence the batch accounts for (`firstSequence - 1` when it accounts for none).
    package var lastSequence: UInt64
    /// Version 3 only: ascending, disjoint, between and around the events.
    package var losses: [LossRange] = []
    package var status = AgentStatus()
    /// Version 2 only: events dropped before this batch that have no number
    /// (the memory sender's); the spool's losses go as ranges (or gaps) instead.
    package var dropped: UInt64 = 0
    package var eventCount = 0
    /// `eventCount` encoded ar_events, ascending.
    package var events: [UInt8] = []

    package init(agentID: String, bootID: String, firstSequence: UInt64) {
        self.agentID = agentID
        self.bootID = bootID
        self.firstSequence = firstSequence
        lastSequence = firstSequence &- 1
    }

    /// Bytes of the call's arguments for `version` (2: the v2 header; 3: the v3 header with its losses).
    package func argumentBytes(version: ProtocolVersion) -> Int {
        let header = version == .v3
            ? WireSize.batchHeaderV3(agentID: agentID.utf8.count, bootID: bootID.utf8.count, losses: losses.count)
            : WireSize.batchHeader(agentID: agentID.utf8.count, bootID: bootID.utf8.count)
        return header + 4 + events.count
    }
}

/// What the pass-through routines get as their argument: one layout for the
/// three (each reads its part), so callers hold one type.
package struct PassThroughArgument {
    fileprivate var headerV2 = ar_batch_header()
    fileprivate var headerV3 = ar3_batch_header()
    fileprivate var count: u_int = 0
    fileprivate var events: UnsafeMutablePointer<CChar>?
    fileprivate var bytes: u_int = 0
}

/// `xdr_opaque` of a whole number of words adds no padding: XDR events are
/// words, so the copy is exactly the events' encoding. Encode only: the
/// sender never decodes with these, and libtirpc frees nothing of an argument.
private func putEvents(_ xdrs: UnsafeMutableRawPointer?, count: u_int, events: UnsafeMutablePointer<CChar>?, bytes: u_int) -> Int32 {
    guard let xdrs = xdrs?.assumingMemoryBound(to: XDR.self), xdrs.pointee.x_op == XDR_ENCODE else { return 0 }
    var count = count
    guard xdr_u_int(xdrs, &count) != 0 else { return 0 }
    return bytes == 0 ? 1 : xdr_opaque(xdrs, events, bytes)
}

private let passThroughBatchV2: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32 = { xdrs, argument in
    guard let batch = argument?.assumingMemoryBound(to: PassThroughArgument.self) else { return 0 }
    guard CAuthRelayRPC_xdr_ar_batch_header(xdrs, &batch.pointee.headerV2) != 0 else { return 0 }
    return putEvents(xdrs, count: batch.pointee.count, events: batch.pointee.events, bytes: batch.pointee.bytes)
}

private let passThroughBatchV3: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32 = { xdrs, argument in
    guard let batch = argument?.assumingMemoryBound(to: PassThroughArgument.self) else { return 0 }
    guard CAuthRelayRPC_xdr_ar3_batch_header(xdrs, &batch.pointee.headerV3) != 0 else { return 0 }
    return putEvents(xdrs, count: batch.pointee.count, events: batch.pointee.events, bytes: batch.pointee.bytes)
}

private let passThroughEvent: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32 = { xdrs, argument in
    guard let xdr = xdrs?.assumingMemoryBound(to: XDR.self), xdr.pointee.x_op == XDR_ENCODE,
          let event = argument?.assumingMemoryBound(to: PassThroughArgument.self) else { return 0 }
    return xdr_opaque(xdr, event.pointee.events, event.pointee.bytes)
}

extension AuthRelayProgram {
    package static let passThroughBatchV2Routine = XDRRoutine(passThroughBatchV2)
    package static let passThroughBatchV3Routine = XDRRoutine(passThroughBatchV3)
    package static let passThroughEventRoutine = XDRRoutine(passThroughEvent)
}

/// Lays an `EncodedBatch` out as a pass-through argument; pointers are valid
/// only inside `body`. The events' bytes are not copied.
package enum PassThroughWire {
    /// `body` gets the argument and the routine that encodes it.
    package static func withBatch<T, E: Error>(
        _ batch: EncodedBatch, version: ProtocolVersion,
        _ body: (inout PassThroughArgument, XDRRoutine) throws(E) -> T
    ) throws(E) -> T {
        // Array's closures rethrow untyped errors: the typed one travels in a Result.
        let result: Result<T, E> = batch.events.withUnsafeBytes { events in
            Result { () throws(E) -> T in try withBatch(batch, events: events, version: version, body) }
        }
        return try result.get()
    }

    /// The same with the events' bytes held elsewhere: `batch.events` is not read.
    package static func withBatch<T, E: Error>(
        _ batch: EncodedBatch, events raw: UnsafeRawBufferPointer, version: ProtocolVersion,
        _ body: (inout PassThroughArgument, XDRRoutine) throws(E) -> T
    ) throws(E) -> T {
        var agentID = Array(batch.agentID.utf8) + [0]
        var bootID = Array(batch.bootID.utf8) + [0]
        var losses = batch.losses.map(\.wire)
        // Array's closures rethrow untyped errors: the typed one travels in a Result.
        let result: Result<T, E> = agentID.withUnsafeMutableBytes { agent in
            bootID.withUnsafeMutableBytes { boot in
                losses.withUnsafeMutableBufferPointer { lossBuffer in
                    let agent = agent.baseAddress!.assumingMemoryBound(to: CChar.self)
                    let boot = boot.baseAddress!.assumingMemoryBound(to: CChar.self)
                    let events = UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: CChar.self))
                    return Result { () throws(E) -> T in
                        var argument = PassThroughArgument(count: u_int(batch.eventCount), events: events, bytes: u_int(raw.count))
                        if version == .v3 {
                            argument.headerV3.agent_id = agent
                            argument.headerV3.boot_id = boot
                            argument.headerV3.first_seq = u_quad_t(batch.firstSequence)
                            argument.headerV3.losses.losses_len = u_int(lossBuffer.count)
                            argument.headerV3.losses.losses_val = lossBuffer.baseAddress
                            argument.headerV3.status = batch.status.wire
                            return try body(&argument, AuthRelayProgram.passThroughBatchV3Routine)
                        }
                        argument.headerV2.agent_id = agent
                        argument.headerV2.boot_id = boot
                        argument.headerV2.first_seq = u_quad_t(batch.firstSequence)
                        argument.headerV2.dropped = u_quad_t(batch.dropped)
                        return try body(&argument, AuthRelayProgram.passThroughBatchV2Routine)
                    }
                }
            }
        }
        return try result.get()
    }

    /// One encoded event as a version 1 REPORT_EVENT argument.
    package static func withEvent<T, E: Error>(
        _ bytes: UnsafeRawBufferPointer, _ body: (inout PassThroughArgument, XDRRoutine) throws(E) -> T
    ) throws(E) -> T {
        var argument = PassThroughArgument(events: UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: CChar.self)),
                                           bytes: u_int(bytes.count))
        return try body(&argument, AuthRelayProgram.passThroughEventRoutine)
    }
}
