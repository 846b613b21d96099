import FuzzSupport
@testable import ONCRPC

/// The call header: `RPCServerMessage.parseCall` agrees with a plain reading
/// of RFC 5531 over the whole array; a prefix that holds the header parses as
/// the record does (what `decodeAhead` relies on) and a shorter one not at
/// all; the dispatcher answers every call with one well-formed reply to its
/// xid (framed and not), refuses what is no call, and an incremental decoder
/// is shown exactly the argument's bytes, growing, from where it starts.
///
/// Input: a step byte (decodeAhead sees prefixes 1...16 bytes apart), then the record.
@main
enum CallHeaderTarget {
    static let program: UInt32 = 0x2000_0A7E

    static func main() {
        runFuzzer(seeds: seeds, test: test)
    }

    static func test(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let step = Int(input.byte() % 16) + 1
        let record = input.rest()
        let call = RPCServerMessage.parseCall(record)
        let expected = reference(Array(record))
        check(call?.xid == expected?.xid && call?.procedure == expected?.procedure && call?.version == expected?.version
                && call?.argumentsOffset == expected?.argumentsOffset && call?.credentialFlavor == expected?.flavor,
              "parseCall \(String(describing: call)), expected \(String(describing: expected))")
        for length in 0...min(record.count, RPCServerMessage.maxCallHeaderBytes + 8) {
            let prefix = RPCServerMessage.parseCall(UnsafeRawBufferPointer(rebasing: record[..<length]))
            if let call, length >= call.argumentsOffset {
                check(prefix?.argumentsOffset == call.argumentsOffset && prefix?.xid == call.xid, "prefix of \(length) parses otherwise")
            } else {
                check(prefix == nil, "prefix of \(length) parses, the record \(call == nil ? "does not" : "needs more")")
            }
        }
        dispatch(record, call: call, step: step)
    }

    /// The record through a dispatcher serving versions 1 and 3 (a gap at 2) of `program`.
    static func dispatch(_ record: UnsafeRawBufferPointer, call: RPCServerMessage.Call?, step: Int) {
        let arguments = call.map { Array(record[$0.argumentsOffset...]) } ?? []
        let dispatcher = RPCDispatcher(programs: [
            RPCProgram(program: program, version: 1, procedures: [
                .null(),
                RPCProcedure(1, argument: .wrapString, UnsafeMutablePointer<CChar>?.self, result: .void, Int32.self) { _, _, _ in .result },
            ]),
            RPCProgram(program: program, version: 3, procedures: [
                .null(), .null(1),
                RPCProcedure(2, argument: .void, Int32.self, result: .void, Int32.self,
                             incremental: { PrefixCheckingDecoder(arguments) }) { _, _, _ in .result },
            ]),
        ])
        let request = RPCRequest(transport: .tcp, program: 0, version: 0, procedure: 0)
        let framed = ByteBuffer()
        let unframed = ByteBuffer()
        var state = IncrementalArgument.notStarted
        for length in stride(from: step, to: record.count, by: step) {
            dispatcher.decodeAhead(UnsafeRawBufferPointer(rebasing: record[..<length]), &state)
        }
        let answered = dispatcher.handle(record, request: request, framed: true, into: framed, decodedAhead: state)
        state.end()
        _ = dispatcher.handle(record, request: request, framed: false, into: unframed, decodedAhead: .notUsed)
        guard let call else {
            check(!answered && framed.count == 0 && unframed.count == 0, "no call, yet answered")
            return
        }
        let reply = Array(framed.bytes)
        check(answered && reply.count >= 24 && reply.count % 4 == 0, "a reply of \(reply.count) bytes")
        check(word(reply, 0) == 0x8000_0000 | UInt32(reply.count - 4), "the reply's record mark")
        check(word(reply, 4) == call.xid && word(reply, 8) == 1, "the reply's xid and REPLY")
        check(Array(unframed.bytes) == Array(reply[4...]), "the datagram reply differs from the stream's")
    }

    static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// RFC 5531's call header read plainly off the array: what parseCall must agree with.
    static func reference(_ record: [UInt8]) -> (xid: UInt32, version: UInt32, procedure: UInt32, flavor: UInt32, argumentsOffset: Int)? {
        var offset = 0
        func next() -> UInt32? {
            guard offset + 4 <= record.count else { return nil }
            defer { offset += 4 }
            return word(record, offset)
        }
        func opaque() -> Bool {
            guard let length = next(), length <= 400, offset + Int(length) + (4 - Int(length) % 4) % 4 <= record.count else { return false }
            offset += Int(length) + (4 - Int(length) % 4) % 4
            return true
        }
        guard let xid = next(), next() == 0, next() != nil, next() != nil, let version = next(), let procedure = next(),
              let flavor = next(), opaque(), next() != nil, opaque() else { return nil }
        return (xid, version, procedure, flavor, offset)
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let calls = SeedCalls.everyProcedure + SeedCalls.malformed + [
            ("incremental-procedure", SeedCalls.call(program: program, version: 3, procedure: 2, arguments: Array(repeating: 7, count: 64))),
            ("string-argument", SeedCalls.call(program: program, version: 1, procedure: 1, arguments: SeedCalls.words([5, 0x6865_6C6C, 0x6F00_0000]))),
            ("credential-400", SeedCalls.words([3, 0, 2, program, 1, 0, 1, 400]) + Array(repeating: 1, count: 400) + SeedCalls.words([0, 0])),
            ("credential-wraps", SeedCalls.words([3, 0, 2, program, 1, 0, 1, 0xFFFF_FFFD, 0, 0])),
            ("reply", SeedCalls.words([3, 1, 0, 0, 0, 0])),
        ]
        return calls.map { name, message in (name, [3] + message) }
    }
}

/// Checks that `decodeAhead` shows it the argument's bytes from where they
/// start, more each time, and `finish` all of them.
final class PrefixCheckingDecoder: RPCIncrementalDecoder {
    private let expected: [UInt8]
    private var seen = 0
    private let scratch = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)

    init(_ expected: [UInt8]) {
        self.expected = expected
    }

    deinit { scratch.deallocate() }

    func decode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        check(bytes.count >= seen && bytes.count <= expected.count && bytes.elementsEqual(expected[..<bytes.count]),
              "decodeAhead showed \(bytes.count) bytes that are not the argument's first (seen \(seen) before)")
        seen = bytes.count
        return true
    }

    func finish(_ bytes: UnsafeRawBufferPointer) -> Bool {
        check(bytes.elementsEqual(expected), "finish was not shown the whole argument")
        return true
    }

    var argument: UnsafeMutableRawPointer { scratch }

    func reset() { seen = 0 }
}
