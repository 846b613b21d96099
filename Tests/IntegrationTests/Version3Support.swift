import AuthRelay
import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC
import TestSupport

/// Version 3 calls as an agent makes them: ONCRPC's client, AuthRelayProtocol's
/// wire layout, the rpcgen routines. (The sender's own version 3 client is
/// another area's; these tests need only the calls.)
final class Version3Client {
    private let rpc: RPCClient
    private let arena = WireArena()

    init(_ endpoint: RPCEndpoint, timeout: Duration = .seconds(5)) {
        rpc = RPCClient(endpoint: endpoint, program: AuthRelayProgram.program, version: 3, timeout: timeout, connectTimeout: timeout)
    }

    func report(_ batch: EventBatch) throws(RPCError) -> BatchAck {
        try arena.withWire(version3: batch) { (wire) throws(RPCError) -> BatchAck in
            try rpc.call(AuthRelayProgram.reportBatchV3, &wire.pointee, encode: AuthRelayProgram.eventBatchV3,
                         decode: AuthRelayProgram.batchAck, as: ar_batch_ack.self) { BatchAck(wire: $0.pointee) }
        }
    }

    func reportBootEnd(_ report: BootEnd) throws(RPCError) -> ReportStatus {
        try arena.withWire(report) { (wire) throws(RPCError) -> ReportStatus in
            try rpc.call(AuthRelayProgram.reportBootEndV3, &wire.pointee, encode: AuthRelayProgram.bootEnd,
                         decode: AuthRelayProgram.status, as: ar_status.self) { ReportStatus(rawValue: $0.pointee.rawValue) }
        }
    }

    func ping() throws(RPCError) {
        try rpc.ping()
    }
}

extension Sample {
    /// A version 3 batch: `events` (numbered events) and `losses`, accounting from `first`.
    static func batchV3(agent: String = "agent-1", boot: String = "boot-1", first: UInt64, events: [UInt64],
                        losses: [LossRange] = [], status: AgentStatus = AgentStatus()) -> EventBatch {
        EventBatch(header: BatchHeader(agentID: agent, bootID: boot, firstSequence: first, losses: losses, status: status),
                   events: events.map { numbered($0) })
    }
}

extension RawRPC.XDR {
    /// An `ar3_event_batch`: header (ids, first_seq, loss ranges, a zero status), then `events` events from `first`.
    /// `sequences` replaces the numbering from `first` (which wraps past UInt64.max, as a hostile peer's may).
    mutating func eventBatchV3(agent: [UInt8] = Array("raw-agent".utf8), boot: [UInt8] = Array("raw-boot".utf8), first: UInt64 = 1,
                               losses: [(first: UInt64, last: UInt64, reason: UInt32)] = [], events: Int, sequences: [UInt64]? = nil,
                               kind: UInt32 = 1, verdict: UInt32 = 0) {
        opaque(agent)
        opaque(boot)
        hyper(first)
        word(UInt32(losses.count))
        for loss in losses {
            hyper(loss.first)
            hyper(loss.last)
            word(loss.reason)
        }
        for _ in 0..<9 { hyper(0) }  // ar_agent_status: nine hypers
        word(0)
        word(0)
        let numbers = sequences ?? (0..<events).map { first &+ UInt64($0) }
        word(UInt32(numbers.count))
        for sequence in numbers {
            eventWith(sequence: sequence, kind: kind, verdict: verdict)
        }
    }

    /// An `ar_event_batch` whose events carry `sequences` as given (wrapping past UInt64.max, say).
    mutating func eventBatchV2(agent: [UInt8], first: UInt64, dropped: UInt64 = 0, sequences: [UInt64]) {
        opaque(agent)
        opaque(Array("raw-boot".utf8))
        hyper(first)
        hyper(dropped)
        word(UInt32(sequences.count))
        for sequence in sequences { eventWith(sequence: sequence, kind: 1, verdict: 0) }
    }

    /// An `ar_event` like `event(sequence:)` with the kind and verdict words given (negative ones too).
    mutating func eventWith(sequence: UInt64, kind: UInt32, verdict: UInt32) {
        hyper(sequence)
        hyper(1_700_000_000_000_000_000)
        word(kind)
        word(verdict)
        hyper(100)
        for value: UInt32 in [10, 1, 0, 0, 0] { word(value) }
        opaque(Array("/bin/sh".utf8))
        opaque(Array("/etc/hosts".utf8))
        opaque([])
    }

    /// An `ar_boot_end` with any ending word.
    mutating func bootEnd(agent: [UInt8] = Array("raw-agent".utf8), boot: [UInt8] = Array("raw-boot".utf8), ending: UInt32,
                          last: UInt64, endedNanoseconds: UInt64 = 1, reportedBy: [UInt8] = Array("raw-boot-2".utf8)) {
        opaque(agent)
        opaque(boot)
        word(ending)
        hyper(last)
        hyper(endedNanoseconds)
        opaque(reportedBy)
    }
}

extension RawRPC.Connection {
    /// Sends a call (a record over a stream, a datagram over udp) and returns the reply's words after the xid, or nil.
    func call(_ message: [UInt8], datagram: Bool) -> [UInt32]? {
        send(datagram ? message : RawRPC.recordMarked(message))
        return (datagram ? receiveDatagram() : receiveReply()).map { Array($0.dropFirst()) }
    }
}

/// The words of a SUCCESS reply's result, after the accepted header; nil when not SUCCESS.
func successResult(_ reply: [UInt32]?) -> [UInt32]? {
    guard let reply, reply.count >= 5, Array(reply.prefix(5)) == RawRPC.acceptedReplyHeader(0) else { return nil }
    return Array(reply.dropFirst(5))
}
