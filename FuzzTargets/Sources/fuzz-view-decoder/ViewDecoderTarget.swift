@testable import AuthRelayCollector
@testable import AuthRelayProtocol
import CAuthRelayRPC
import FuzzSupport
import Glibc

/// Differential: the collector's `ViewBatchDecoder` against rpcgen's
/// `xdr_ar_event_batch` / `xdr_ar3_event_batch` (xdrmem decode) on the same
/// bytes. Both accept or both refuse, and an accepted batch has every field
/// equal (views compared by their bytes, as the sink reads them). The decoder
/// is run twice: on the bytes whole, and fed growing prefixes each copied to a
/// new buffer (the old one scribbled over and freed, as a record buffer that
/// moves), where it must never give up on bytes rpcgen accepts.
///
/// Input: one byte (bit 0: version 3), piece sizes (`FuzzInput.pieces`), then
/// the argument bytes.
@main
enum ViewDecoderTarget {
    static func main() {
        runFuzzer(seeds: seeds, test: test)
    }

    nonisolated(unsafe) static let decoders = [ViewBatchDecoder(.v2), ViewBatchDecoder(.v3)]

    static func test(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let version3 = input.byte() & 1 == 1
        let pieces = input.pieces()
        let argument = input.rest()
        let decoder = decoders[version3 ? 1 : 0]
        RPCGenBatchReference.decode(argument, version3 ? .v3 : .v2) { reference in
            defer { decoder.reset() }
            let accepted = decoder.finish(argument)
            check(accepted == (reference != nil), "whole: decoder \(accepted), rpcgen \(reference != nil)")
            if let reference, let field = decoder.batch.difference(from: reference) { fatalError("whole: \(field) differs") }
            decoder.reset()

            var previous: UnsafeMutableRawBufferPointer?
            defer { previous?.deallocate() }
            var going = true
            for piece in pieces.cut(argument.count) where going {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(piece.upperBound, 1), alignment: 1)
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: argument[..<piece.upperBound]))
                if let previous {
                    previous.initializeMemory(as: UInt8.self, repeating: 0xEE)
                    previous.deallocate()
                }
                previous = buffer
                let prefix = UnsafeRawBufferPointer(rebasing: buffer[..<piece.upperBound])
                if piece.upperBound < argument.count {
                    going = decoder.decode(prefix)
                    check(going || reference == nil, "gave up on bytes rpcgen accepts (after \(piece.upperBound))")
                } else {
                    let done = decoder.finish(prefix)
                    check(done == (reference != nil), "incremental: decoder \(done), rpcgen \(reference != nil)")
                    if let reference, let field = decoder.batch.difference(from: reference) {
                        fatalError("incremental: \(field) differs")
                    }
                }
            }
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let batches: [(String, EventBatch)] = [
            ("no-events", SeedCalls.batch(first: 1, count: 0, dropped: 3)),
            ("one-event", SeedCalls.batch(first: 1, count: 1)),
            ("five-events", SeedCalls.batch(first: 10, count: 5, pathBytes: 5)),
            ("long-paths", SeedCalls.batch(first: 1, count: 2, pathBytes: 4096)),
            ("longest-ids", SeedCalls.batch(agent: String(repeating: "a", count: 64), boot: String(repeating: "b", count: 64), first: 1, count: 3)),
            ("losses", SeedCalls.batch(first: 1, count: 2, losses: [LossRange(first: 3, last: 9, reason: .spoolEvicted)])),
        ]
        let cuts: [(String, Pieces)] = [("whole", Pieces(sizes: [])), ("bytewise", Pieces(sizes: [1])), ("pieces", Pieces(sizes: [13, 200]))]
        var seeds: [(name: String, bytes: [UInt8])] = []
        for (name, batch) in batches {
            for (cut, pieces) in cuts {
                seeds.append(("v2-\(name)-\(cut)", [0] + pieces.encoded + SeedCalls.encode(batch)))
                seeds.append(("v3-\(name)-\(cut)", [1] + pieces.encoded + SeedCalls.encode(version3: batch)))
            }
        }
        var tooMany = SeedCalls.encode(SeedCalls.batch(first: 1, count: 0))
        tooMany.replaceSubrange((tooMany.count - 4)..., with: SeedCalls.words([513]))
        seeds.append(("v2-513-events", [0] + Pieces(sizes: [3]).encoded + tooMany))
        seeds.append(("v2-cut-short", [0] + Pieces(sizes: [5]).encoded + SeedCalls.encode(SeedCalls.batch(first: 1, count: 2)).dropLast(6)))
        return seeds
    }
}
