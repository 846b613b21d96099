@testable import AuthRelayCollector
@testable import AuthRelayProtocol
import FuzzSupport
import Glibc
import Logging
@testable import ONCRPC
import SystemSupport

/// The collector's handling of a sequence of calls, several per input (the
/// bugs that need two, such as counters that overflow on the second call):
/// each call goes through the RPC dispatcher into the collector's real
/// handlers and `CollectorCore`, whose state lives in memory (an in-memory
/// sink) and is made anew for every input. Checked: no trap; every call gets
/// one reply to its xid; a batch's `accepted` is what reached the sink; an
/// event once written is never written again for its (agent, boot) while no
/// pair was forgotten; `written` is what the sink holds; GET_STATS answers.
///
/// Input: a configuration byte (bit 0: --allow-uid 1000; bits 1-3: 1 + that
/// many agents remembered), then calls, each a flags byte (bits 0-1: udp, tcp,
/// unix as uid 1000, unix as uid 0; bit 2: decoded ahead from its first half;
/// bit 3: the sink fails), a two-byte length and the call message.
@main
enum CollectorTarget {
    static func main() {
        runFuzzer(seeds: seeds, test: test)
    }

    static let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }

    static func test(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let configuration = input.byte()
        let maxAgents = 1 + Int(configuration >> 1 & 7)
        let sink = MemorySink()
        let core = CollectorCore(sink: sink, allowedUIDs: configuration & 1 != 0 ? [1000] : [], maxAgents: maxAgents,
                                 logger: logger, clock: { 1_700_000_000_000_000_000 })
        let handlers = ReportHandlers(core: core, injectedDelay: nil, afterBatch: {})
        let dispatcher = RPCDispatcher(programs: handlers.programs(AuthRelayProgram.program) { _ in core.statistics })
        let output = ByteBuffer()
        while input.remaining > 0 {
            let flags = input.byte()
            let call = input.take(Int(input.uint16()))
            sink.failing = flags & 8 != 0
            let before = sink.events
            output.count = 0
            let answered = handle(call, flags: flags, dispatcher, into: output)
            check(answered == (RPCServerMessage.parseCall(call) != nil), "answered \(answered) a record that is \(answered ? "no" : "a") call")
            guard answered else { continue }
            let reply = Array(output.bytes)
            let framed = flags & 3 != 0
            let header = framed ? 4 : 0
            check(reply.count >= header + 20 && word(reply, header) == word(Array(call), 0), "a reply to another xid")
            if framed { check(word(reply, 0) == 0x8000_0000 | UInt32(reply.count - 4), "the reply's record mark") }
            // A REPORT_BATCH answered: accept_stat SUCCESS, then status, accepted, duplicates, highest.
            if isReportBatch(call), reply.count == header + 44, word(reply, header + 20) == 0 {
                check(Int(word(reply, header + 28)) == sink.events - before, "accepted \(word(reply, header + 28)), written \(sink.events - before)")
            }
        }
        check(core.statistics.written == UInt64(sink.events), "written \(core.statistics.written), the sink holds \(sink.events)")
        check(sink.distinctPairs > maxAgents || sink.rewritten == 0, "\(sink.rewritten) events written twice")
        output.count = 0
        let stats = SeedCalls.call(xid: 99, version: 2, procedure: 2)
        _ = stats.withUnsafeBytes { handle($0, flags: 1, dispatcher, into: output) }
        // The record mark, the accepted reply's 24 bytes (SUCCESS at 24), ar_stats' 88.
        check(output.count == 4 + 24 + 88 && word(Array(output.bytes), 24) == 0, "GET_STATS not answered: \(output.count) bytes")
    }

    static func handle(_ call: UnsafeRawBufferPointer, flags: UInt8, _ dispatcher: RPCDispatcher, into output: ByteBuffer) -> Bool {
        let transport: RPCTransport = [.udp, .tcp, .local, .local][Int(flags & 3)]
        let peer = transport == .local ? PeerCredentials(pid: 4242, uid: flags & 3 == 2 ? 1000 : 0, gid: 0) : nil
        let request = RPCRequest(transport: transport, program: 0, version: 0, procedure: 0, peer: peer)
        guard transport != .udp else {
            return dispatcher.handle(call, request: request, framed: false, into: output, decodedAhead: .notUsed)
        }
        var state = IncrementalArgument.notStarted
        defer { state.end() }
        if flags & 4 != 0 {
            dispatcher.decodeAhead(UnsafeRawBufferPointer(rebasing: call[..<(call.count / 2)]), &state)
        }
        return dispatcher.handle(call, request: request, framed: true, into: output, decodedAhead: state)
    }

    static func isReportBatch(_ call: UnsafeRawBufferPointer) -> Bool {
        let bytes = Array(call.prefix(24))
        return bytes.count == 24 && word(bytes, 16) == 2 && word(bytes, 20) == AuthRelayProgram.reportBatchV2
    }

    static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        guard offset >= 0, bytes.count - offset >= 4 else { return 0 }
        return bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        /// Calls behind their flags and lengths (`flags` cycled: tcp unless told).
        func sequence(_ calls: [[UInt8]], flags: [UInt8] = [1], configuration: UInt8 = 14) -> [UInt8] {
            [configuration] + calls.enumerated().flatMap { index, call in
                [flags[index % flags.count], UInt8(call.count >> 8), UInt8(call.count & 0xFF)] + call
            }
        }
        func batch(_ batch: EventBatch, xid: UInt32 = 1) -> [UInt8] {
            SeedCalls.call(xid: xid, version: 2, procedure: 1, arguments: SeedCalls.encode(batch))
        }
        var seeds = (SeedCalls.everyProcedure + SeedCalls.malformed).map { name, call in (name, sequence([call])) }
        seeds += [
            ("retry-is-duplicates", sequence([batch(SeedCalls.batch(first: 1, count: 3)), batch(SeedCalls.batch(first: 1, count: 3), xid: 2)])),
            ("overlap-then-gap", sequence([batch(SeedCalls.batch(first: 1, count: 3)), batch(SeedCalls.batch(first: 2, count: 3), xid: 2),
                                           batch(SeedCalls.batch(first: 9, count: 1, dropped: 2), xid: 3)])),
            ("two-agents", sequence([batch(SeedCalls.batch(first: 1, count: 1)), batch(SeedCalls.batch(agent: "agent-2", first: 5, count: 1), xid: 2)])),
            ("every-transport", sequence([batch(SeedCalls.batch(first: 1, count: 2)), batch(SeedCalls.batch(first: 3, count: 2), xid: 2),
                                          batch(SeedCalls.batch(first: 5, count: 2), xid: 3), batch(SeedCalls.batch(first: 7, count: 2), xid: 4)],
                                         flags: [0, 1, 2, 3], configuration: 15)),
            ("decoded-ahead", sequence([batch(SeedCalls.batch(first: 1, count: 4, pathBytes: 300))], flags: [6])),
            ("sink-fails-then-retry", sequence([batch(SeedCalls.batch(first: 1, count: 2)), batch(SeedCalls.batch(first: 1, count: 2), xid: 2)],
                                               flags: [9, 1])),
            // Issue 11's two-call overflows: each call alone is handled, the second overflows a counter.
            ("two-calls-dropped-overflow", sequence([batch(SeedCalls.batch(first: 1, count: 0, dropped: .max)),
                                                     batch(SeedCalls.batch(agent: "agent-2", first: 1, count: 0, dropped: 1), xid: 2)])),
            ("two-calls-gap-overflow", sequence([batch(SeedCalls.batch(first: .max, count: 0)),
                                                 batch(SeedCalls.batch(agent: "agent-2", first: .max, count: 0), xid: 2)])),
            ("versions-1-and-2", sequence([SeedCalls.call(version: 1, procedure: 1, arguments: SeedCalls.encode(SeedCalls.event(1))),
                                           batch(SeedCalls.batch(first: 1, count: 1)), SeedCalls.call(version: 2, procedure: 2)])),
        ]
        return seeds
    }
}

/// Counts what it is given, per (agent id, boot id); fails while told to.
final class MemorySink: EventSink {
    var failing = false
    private(set) var events = 0
    private(set) var rewritten = 0
    private var highest: [[UInt8]: UInt64] = [:]

    var distinctPairs: Int { highest.count }

    func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError) {
        if failing { throw SinkError(SystemError(function: "write", errno: ENOSPC)) }
        let key = Array(context.agentID ?? UnsafeRawBufferPointer(start: nil, count: 0)) + [0]
            + Array(context.bootID ?? UnsafeRawBufferPointer(start: nil, count: 0))
        for event in events {
            if let last = highest[key], event.sequence <= last { rewritten += 1 }
            highest[key] = max(highest[key] ?? 0, event.sequence)
        }
        self.events += events.count
    }

    func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError) {
        if failing { throw SinkError(SystemError(function: "write", errno: ENOSPC)) }
        events += 1
    }

    func write(note: CollectorNote, context: ReportContext) throws(SinkError) {
        if failing { throw SinkError(SystemError(function: "write", errno: ENOSPC)) }
    }

    var position: SinkPosition? { nil }
    func sync() throws(SinkError) {}
    func tick() {}
    func close() {}
}
