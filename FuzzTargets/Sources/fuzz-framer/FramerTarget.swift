import FuzzSupport
@testable import ONCRPC

/// The stream record framer: the same bytes cut into any pieces give the same
/// records and the same end (open, too large, out of step) as fed whole, and
/// as a plain reading of RFC 5531's record marking over the whole array.
///
/// Input: a two-byte record cap (16 + 0...65535), the piece sizes
/// (`FuzzInput.pieces`), then the stream. A record whose first byte is 0xFF is
/// refused, as a consumer refuses one that is not a call.
@main
enum FramerTarget {
    typealias Outcome = RPCRecordFramer.Outcome

    static func main() {
        runFuzzer(seeds: seeds, test: test)
    }

    static func test(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let cap = 16 + Int(input.uint16())
        let pieces = input.pieces()
        let stream = input.rest()

        let whole = frame(stream, pieces: [0..<stream.count], cap: cap)
        let cut = frame(stream, pieces: pieces.cut(stream.count), cap: cap)
        let expected = reference(Array(stream), cap: cap)
        check(whole.records == expected.records && whole.outcome == expected.outcome,
              "fed whole: \(whole.records.count) records, \(whole.outcome); expected \(expected.records.count), \(expected.outcome)")
        check(cut.records == whole.records && cut.outcome == whole.outcome,
              "cut in \(pieces.sizes): \(cut.records.count) records, \(cut.outcome); whole \(whole.records.count), \(whole.outcome)")
    }

    static func frame(_ stream: UnsafeRawBufferPointer, pieces: [Range<Int>], cap: Int) -> (records: [[UInt8]], outcome: Outcome) {
        let framer = RPCRecordFramer(maxRecordSize: cap)
        var records: [[UInt8]] = []
        var outcome = Outcome.open
        for piece in pieces {
            outcome = framer.feed(UnsafeRawBufferPointer(rebasing: stream[piece])) { record in
                check(record.count <= cap, "a record of \(record.count) bytes past the cap \(cap)")
                records.append(Array(record))
                return record.first != 0xFF
            } partial: { received in
                check(received.count <= cap, "a partial record of \(received.count) bytes past the cap \(cap)")
            }
        }
        return (records, outcome)
    }

    /// RFC 5531 §11 read plainly off the whole array: what the framer must agree with.
    static func reference(_ stream: [UInt8], cap: Int) -> (records: [[UInt8]], outcome: Outcome) {
        var records: [[UInt8]] = []
        var record: [UInt8] = []
        var offset = 0
        while stream.count - offset >= 4 {
            let mark = stream[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
            offset += 4
            let length = Int(mark & 0x7FFF_FFFF)
            if record.count + length > cap { return (records, .recordTooLarge(record.count + length)) }
            guard stream.count - offset >= length else { break }
            record += stream[offset..<(offset + length)]
            offset += length
            if mark & 0x8000_0000 != 0 {
                records.append(record)
                if record.first == 0xFF { return (records, .outOfStep) }
                record = []
            }
        }
        return (records, .open)
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let calls = SeedCalls.everyProcedure.map(\.message)
        let stream = calls.flatMap(SeedCalls.recordMarked)
        let fragmented = calls.flatMap { SeedCalls.fragments($0, size: 37) }
        let empty = SeedCalls.words([0, 0x8000_0000])  // an empty fragment, then an empty record
        let cap64KiB: [UInt8] = [0xFF, 0xF0]  // 16 + 0xFFF0
        let seeds: [(String, [UInt8], Pieces)] = [
            ("calls-whole", stream, Pieces(sizes: [])),
            ("calls-in-pieces", stream, Pieces(sizes: [1, 7, 64, 256])),
            ("calls-in-fragments", fragmented, Pieces(sizes: [3, 100])),
            ("empty-fragments", empty + SeedCalls.recordMarked(calls[0]), Pieces(sizes: [2])),
            ("largest-mark", SeedCalls.words([0xFFFF_FFFF]) + calls[0], Pieces(sizes: [])),
            ("refused-record", SeedCalls.recordMarked([0xFF, 1]) + stream, Pieces(sizes: [5])),
        ]
        let smallCap: [UInt8] = [0, 100]  // 116 bytes: the calls with events are over it
        return seeds.map { name, stream, pieces in (name, cap64KiB + pieces.encoded + stream) }
            + [("small-cap", smallCap + Pieces(sizes: [9]).encoded + fragmented)]
    }
}
