import CONCRPC
import SystemSupport

/// Turns one call record into one reply: header checks, program/version/
/// procedure lookup, argument decoding with the procedure's XDR routine, the
/// handler, result encoding. Shared by streams and datagrams.
final class RPCDispatcher {
    private let procedures: [UInt32: [UInt32: [RPCProcedure?]]]  // program -> version -> by number
    private let versions: [UInt32: ClosedRange<UInt32>]
    private let argumentScratch: UnsafeMutableRawPointer
    private let resultScratch: UnsafeMutableRawPointer
    /// What the dispatcher counted (calls, undecodable arguments, unserved calls).
    private(set) var counters = RPCServer.Statistics()
    /// The last call `handle` took was deferred: its reply comes later, through `completions`.
    private(set) var lastCallDeferred = false
    /// Where deferred replies are posted (the server's; a queue of its own otherwise).
    let completions: RPCCompletionQueue
    private let deferral: DeferralContext

    init(programs: [RPCProgram], completions: RPCCompletionQueue = RPCCompletionQueue(wake: WakeSignal())) {
        self.completions = completions
        deferral = DeferralContext(queue: completions)
        var procedures: [UInt32: [UInt32: [RPCProcedure?]]] = [:]
        var versions: [UInt32: ClosedRange<UInt32>] = [:]
        var largestArgument = 16
        var largestResult = 16
        for program in programs {
            var byNumber = [RPCProcedure?](repeating: nil, count: Int(program.procedures.map(\.number).max() ?? 0) + 1)
            for procedure in program.procedures {
                byNumber[Int(procedure.number)] = procedure
                largestArgument = max(largestArgument, procedure.argumentSize)
                largestResult = max(largestResult, procedure.resultSize)
            }
            procedures[program.program, default: [:]][program.version] = byNumber
            let range = versions[program.program].map { min($0.lowerBound, program.version)...max($0.upperBound, program.version) }
            versions[program.program] = range ?? program.version...program.version
        }
        self.procedures = procedures
        self.versions = versions
        argumentScratch = .allocate(byteCount: largestArgument, alignment: 16)
        resultScratch = .allocate(byteCount: largestResult, alignment: 16)
    }

    deinit {
        argumentScratch.deallocate()
        resultScratch.deallocate()
    }

    /// Appends the reply to `record` to `output` (with a record mark when
    /// `framed`), unless a deferrable procedure deferred it (`lastCallDeferred`:
    /// nothing is appended, the reply goes to `target` later). Returns false
    /// when the record is not a call at all.
    func handle(_ record: UnsafeRawBufferPointer, request: RPCRequest, framed: Bool, into output: ByteBuffer,
                decodedAhead: IncrementalArgument, target: RPCReplyTarget = .none) -> Bool {
        lastCallDeferred = false
        guard let call = RPCServerMessage.parseCall(record) else { return false }
        counters.calls += 1
        let start = output.count
        if framed { output.appendWord(0) }  // the record mark, set below
        defer {
            // At most 0x7FFF_FFFF: the result encoding below is limited to what a fragment holds.
            // Nothing to mark when the reply was deferred (nothing was written).
            if framed, output.count > start { output.setWord(0x8000_0000 | UInt32(output.count - start - 4), at: start) }
        }
        guard call.rpcVersion == 2 else {
            counters.unservedCalls += 1
            RPCServerMessage.rpcMismatch(xid: call.xid).forEach(output.appendWord)
            return true
        }
        guard RPCServerMessage.acceptedFlavors.contains(call.credentialFlavor) else {
            counters.unservedCalls += 1
            RPCServerMessage.authError(xid: call.xid, RPCServerMessage.authRejectedCredentials).forEach(output.appendWord)
            return true
        }
        guard let byVersion = procedures[call.program] else {
            counters.unservedCalls += 1
            RPCServerMessage.acceptedHeader(xid: call.xid, .programUnavailable).forEach(output.appendWord)
            return true
        }
        guard let byNumber = byVersion[call.version] else {
            counters.unservedCalls += 1
            let range = versions[call.program]!
            RPCServerMessage.acceptedHeader(xid: call.xid, .programMismatch).forEach(output.appendWord)
            output.appendWord(range.lowerBound)
            output.appendWord(range.upperBound)
            return true
        }
        guard call.procedure < byNumber.count, let procedure = byNumber[Int(call.procedure)] else {
            counters.unservedCalls += 1
            RPCServerMessage.acceptedHeader(xid: call.xid, .procedureUnavailable).forEach(output.appendWord)
            return true
        }

        resultScratch.initializeMemory(as: UInt8.self, repeating: 0, count: procedure.resultSize)
        let arguments = UnsafeRawBufferPointer(rebasing: record[call.argumentsOffset...])
        let argument: UnsafeMutableRawPointer
        // A record that came whole (one read, a datagram) is decoded by a decoder
        // made now, when the procedure has one: it may be faster than the routine.
        var decodedNow: RPCIncrementalDecoder?
        if case .decoding = decodedAhead {} else { decodedNow = procedure.makeIncrementalDecoder?() }
        defer { decodedNow?.reset() }  // after the handler: the argument ends with the call
        if case .decoding(let decoder, _) = decodedAhead, decoder.finish(arguments) {
            argument = decoder.argument  // freed by the connection's endRecord()
        } else if let decoder = decodedNow, decoder.finish(arguments) {
            argument = decoder.argument
        } else {
            argument = argumentScratch
            argumentScratch.initializeMemory(as: UInt8.self, repeating: 0, count: procedure.argumentSize)
            // A record over 4 GiB (a cap raised that far) is not decoded short: it is refused.
            guard let length = UInt32(exactly: arguments.count),
                  CONCRPC_xdr_decode(procedure.argument.routine, argumentScratch, arguments.baseAddress, length) != 0 else {
                CONCRPC_xdr_free(procedure.argument.routine, argumentScratch)  // what a decode that failed halfway allocated
                counters.undecodableArguments += 1
                RPCServerMessage.acceptedHeader(xid: call.xid, .garbageArguments).forEach(output.appendWord)
                return true
            }
        }
        defer {
            if argument == argumentScratch { CONCRPC_xdr_free(procedure.argument.routine, argumentScratch) }
        }
        var request = request
        request.program = call.program
        request.version = call.version
        request.procedure = call.procedure
        let reply: RPCReply
        if let deferrable = procedure.deferrableHandler {
            deferral.xid = call.xid
            deferral.target = target
            deferral.result = procedure.result
            deferral.resultSize = procedure.resultSize
            deferral.framed = framed
            deferral.taken = nil
            reply = deferrable(request, argument, resultScratch, RPCDeferral(context: deferral))
            if reply == .deferred, deferral.taken != nil {
                lastCallDeferred = true
                deferral.taken = nil
                output.count = start  // no record mark: the reply comes later
                return true
            }
            deferral.taken?.cancel()  // answered at once after all: the token must never send
            deferral.taken = nil
        } else {
            reply = procedure.handler(request, argument, resultScratch)
        }
        // At most 0x7FFF_FFFF: the result encoding is limited to what a fragment holds.
        let limit = framed ? 0x7FFF_FFFF - (output.count - start - 4) : Int(UInt32.max)
        RPCReplyEncoder.appendBody(reply == .deferred ? .systemError : reply, xid: call.xid, result: procedure.result,
                                   resultMemory: resultScratch, limit: limit, to: output)
        return true
    }

    /// Decodes the argument of a record still arriving, when its procedure has an
    /// incremental decoder: the call header is read once it is all there.
    /// `received` is every byte of the record so far (more at each call, until
    /// the record ends and `state` is ended).
    func decodeAhead(_ received: UnsafeRawBufferPointer, _ state: inout IncrementalArgument) {
        switch state {
        case .notUsed:
            return
        case .notStarted:
            guard let call = RPCServerMessage.parseCall(received) else {
                // Not all of the header yet, unless it is already longer than any header.
                if received.count > RPCServerMessage.maxCallHeaderBytes { state = .notUsed }
                return
            }
            guard call.rpcVersion == 2, RPCServerMessage.acceptedFlavors.contains(call.credentialFlavor),
                  let byNumber = procedures[call.program]?[call.version], call.procedure < byNumber.count,
                  let makeDecoder = byNumber[Int(call.procedure)]?.makeIncrementalDecoder else {
                state = .notUsed
                return
            }
            state = .decoding(makeDecoder(), argumentsOffset: call.argumentsOffset)
            decodeAhead(received, &state)
        case .decoding(let decoder, let offset):
            // offset <= received.count: the header was parsed from fewer of these same bytes.
            guard offset <= received.count, decoder.decode(UnsafeRawBufferPointer(rebasing: received[offset...])) else {
                decoder.reset()
                state = .notUsed  // the full decode at the end answers GARBAGE_ARGS
                return
            }
        }
    }
}
