@testable import AuthRelayCollector
@testable import AuthRelayProtocol
import CAuthRelayRPC
import FuzzSupport
@testable import ONCRPC

/// The incremental batch decoder: a REPORT_BATCH argument decoded as its bytes
/// arrive (cut into random fragments, fed in random pieces through the framer,
/// `BatchDecoder` fed at each piece) gives a reply byte-identical to the one
/// from decoding the whole record with rpcgen's `xdr_ar_event_batch`. The
/// procedure answers with its argument itself, encoded again, so the reply is
/// every decoded field. And the decoder never gives up on, or fails to finish,
/// a batch that the whole decode takes.
///
/// Input: fragment sizes and piece sizes (`FuzzInput.pieces`, twice), then
/// the argument bytes (an `ar_event_batch` as XDR).
@main
enum BatchDecoderTarget {
    static func main() {
        runFuzzer(seeds: seeds, test: test)
    }

    /// The BatchDecoders made for this input, to see whether they gave up or finished.
    nonisolated(unsafe) static var decoders: [WatchedDecoder] = []
    nonisolated(unsafe) static let dispatcher = RPCDispatcher(programs: [
        RPCProgram(program: SeedCalls.program, version: 2, procedures: [
            RPCProcedure(1, argument: AuthRelayProgram.eventBatch, ar_event_batch.self, result: AuthRelayProgram.eventBatch,
                         ar_event_batch.self, incremental: { watched() }) { _, batch, echo in
                echo.pointee = batch.pointee  // encoded before the argument is freed
                return .result
            },
        ]),
    ])

    static func watched() -> RPCIncrementalDecoder {
        let decoder = WatchedDecoder()
        decoders.append(decoder)
        return decoder
    }

    static func test(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let fragments = input.pieces()
        let pieces = input.pieces()
        let record = SeedCalls.call(version: 2, procedure: 1) + Array(input.rest())
        let request = RPCRequest(transport: .local, program: 0, version: 0, procedure: 0)

        let whole = ByteBuffer()
        _ = record.withUnsafeBytes {
            dispatcher.handle($0, request: request, framed: true, into: whole, decodedAhead: .notUsed)
        }

        // The record as a stream of fragments, fed piece by piece as a connection would.
        let stream = fragments.cut(record.count).flatMap { range in
            SeedCalls.words([(range.upperBound == record.count ? 0x8000_0000 : 0) | UInt32(range.count)]) + record[range]
        }
        let arriving = ByteBuffer()
        let framer = RPCRecordFramer(maxRecordSize: 1 << 23)
        var state = IncrementalArgument.notStarted
        var records = 0
        decoders.removeAll(keepingCapacity: true)
        stream.withUnsafeBytes { stream in
            for piece in pieces.cut(stream.count) {
                _ = framer.feed(UnsafeRawBufferPointer(rebasing: stream[piece]), { record in
                    records += 1
                    defer { state.end() }
                    return dispatcher.handle(record, request: request, framed: true, into: arriving, decodedAhead: state)
                }, partial: { received in
                    dispatcher.decodeAhead(received, &state)
                })
            }
        }
        check(records == 1, "\(records) records from one")
        check(Array(arriving.bytes) == Array(whole.bytes),
              "decoded as it arrived: \(arriving.count) reply bytes, whole: \(whole.count), fragments \(fragments.sizes), pieces \(pieces.sizes)")
        // Success is the word after the mark, xid, REPLY, MSG_ACCEPTED and the verifier.
        let succeeded = whole.count >= 28 && Array(whole.bytes[24..<28]) == [0, 0, 0, 0]
        for decoder in decoders where succeeded {
            check(!decoder.gaveUp, "gave up on a batch the whole decode takes")
            check(decoder.finished != false, "could not finish a batch the whole decode takes")
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let batches: [(String, EventBatch)] = [
            ("no-events", SeedCalls.batch(first: 1, count: 0, dropped: 3)),
            ("one-event", SeedCalls.batch(first: 1, count: 1)),
            ("five-events", SeedCalls.batch(first: 10, count: 5)),
            ("long-paths", SeedCalls.batch(first: 1, count: 2, pathBytes: 4096)),
            ("longest-ids", SeedCalls.batch(agent: String(repeating: "a", count: 64), boot: String(repeating: "b", count: 64), first: 1, count: 3)),
        ]
        let cuts: [(String, Pieces, Pieces)] = [
            ("whole", Pieces(sizes: []), Pieces(sizes: [])),
            ("bytewise", Pieces(sizes: []), Pieces(sizes: [1])),
            ("fragments", Pieces(sizes: [40, 256]), Pieces(sizes: [13, 200])),
        ]
        var seeds = batches.flatMap { name, batch in
            cuts.map { cut, fragments, pieces in ("\(name)-\(cut)", fragments.encoded + pieces.encoded + SeedCalls.encode(batch)) }
        }
        var tooMany = SeedCalls.encode(SeedCalls.batch(first: 1, count: 0))
        tooMany.replaceSubrange((tooMany.count - 4)..., with: SeedCalls.words([513]))
        seeds.append(("513-events", Pieces(sizes: [7]).encoded + Pieces(sizes: [3]).encoded + tooMany))
        seeds.append(("cut-short", Pieces(sizes: []).encoded + Pieces(sizes: [5]).encoded
            + SeedCalls.encode(SeedCalls.batch(first: 1, count: 2)).dropLast(6)))
        return seeds
    }
}

/// A `BatchDecoder` that remembers whether it gave up and how `finish` went.
final class WatchedDecoder: RPCIncrementalDecoder {
    private let decoder = BatchDecoder<ar_event_batch>()  // version 2's batch, what this target decodes
    private(set) var gaveUp = false
    private(set) var finished: Bool?

    func decode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let going = decoder.decode(bytes)
        gaveUp = gaveUp || !going
        return going
    }

    func finish(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let done = decoder.finish(bytes)
        finished = done
        return done
    }

    var argument: UnsafeMutableRawPointer { decoder.argument }

    func reset() { decoder.reset() }
}
