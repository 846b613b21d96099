@testable import ONCRPC
import TestSupport
import Testing

extension ONCRPCTests {
    /// The stream record layer on its own: bytes in, records out, no socket.
    @Suite struct RecordFramer {
        typealias Outcome = RPCRecordFramer.Outcome

        /// The records `stream` gives when fed in pieces of `chunks` bytes (the last
        /// size repeated), consumed until one starts with 0xFF ("not a call").
        static func frame(_ stream: [UInt8], chunks: [Int] = [Int.max], maxRecordSize: Int = 1 << 20)
            -> (records: [[UInt8]], outcome: Outcome) {
            let framer = RPCRecordFramer(maxRecordSize: maxRecordSize)
            var records: [[UInt8]] = []
            var outcome = Outcome.open
            var offset = 0
            var piece = 0
            stream.withUnsafeBytes { bytes in
                repeat {
                    let size = min(chunks[min(piece, chunks.count - 1)], stream.count - offset)
                    piece += 1
                    outcome = framer.feed(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + size)])) { record in
                        records.append(Array(record))
                        return record.first != 0xFF
                    }
                    offset += size
                } while offset < stream.count && outcome == .open
            }
            return (records, outcome)
        }

        static func mark(_ length: UInt32, last: Bool = true) -> [UInt8] {
            RawRPC.XDR.build { $0.word((last ? 0x8000_0000 : 0) | length) }
        }

        /// Three records: one fragment; three fragments with an empty one between; one fragment again.
        static let stream: [UInt8] = RawRPC.recordMarked([1, 2, 3, 4, 5])
            + mark(3, last: false) + [6, 7, 8] + mark(0, last: false) + mark(2) + [9, 10]
            + RawRPC.recordMarked(Array(repeating: 0x42, count: 37))

        @Test("a record that lies whole in the bytes fed is handed over where it lies, not copied")
        func copyFree() {
            let bytes = RawRPC.recordMarked([1, 2, 3, 4]) + RawRPC.recordMarked([5, 6, 7, 8])
            let framer = RPCRecordFramer(maxRecordSize: 64)
            bytes.withUnsafeBytes { fed in
                var starts: [UnsafeRawPointer?] = []
                #expect(framer.feed(fed) { record in
                    starts.append(record.baseAddress)
                    return true
                } == .open)
                #expect(starts == [fed.baseAddress! + 4, fed.baseAddress! + 12])
            }
            #expect(framer.assembled.isEmpty)
        }

        @Test("every way of cutting the same bytes gives the same records")
        func chunking() {
            let expected: [[UInt8]] = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], Array(repeating: 0x42, count: 37)]
            #expect(Self.frame(Self.stream).records == expected)
            for size in 1...Self.stream.count {
                let (records, outcome) = Self.frame(Self.stream, chunks: [size])
                #expect(records == expected, "pieces of \(size)")
                #expect(outcome == .open)
            }
            // A mark cut after 1, 2 and 3 bytes, then the rest.
            for cut in 1...3 {
                #expect(Self.frame(Self.stream, chunks: [9 + cut, 1, Int.max]).records == expected, "mark cut after \(cut)")
            }
        }

        @Test("what has arrived of an unfinished record is shown to partial, all of it each time")
        func partial() {
            let framer = RPCRecordFramer(maxRecordSize: 64)
            var seen: [[UInt8]] = []
            let pieces: [[UInt8]] = [Self.mark(3, last: false) + [1, 2], [3] + Self.mark(4) + [4], [5, 6, 7]]
            var records: [[UInt8]] = []
            for piece in pieces {
                _ = piece.withUnsafeBytes { bytes in
                    framer.feed(bytes, { records.append(Array($0)); return true }, partial: { seen.append(Array($0)) })
                }
            }
            #expect(seen == [[1, 2], [1, 2, 3, 4]])
            #expect(records == [[1, 2, 3, 4, 5, 6, 7]])
        }

        @Test("the cap: a mark's length is compared with the room left, before anything is stored")
        func cap() {
            // Exactly the cap, in one fragment and in two.
            #expect(Self.frame(RawRPC.recordMarked(Array(repeating: 1, count: 64)), maxRecordSize: 64).outcome == .open)
            let twoFragments = Self.mark(40, last: false) + Array(repeating: 1, count: 40) + Self.mark(24) + Array(repeating: 2, count: 24)
            #expect(Self.frame(twoFragments, maxRecordSize: 64).records.map(\.count) == [64])
            // One byte over, as a whole mark and as record so far + the next fragment.
            #expect(Self.frame(Self.mark(65), maxRecordSize: 64).outcome == .recordTooLarge(65))
            let over = Self.mark(40, last: false) + Array(repeating: 1, count: 40) + Self.mark(25)
            #expect(Self.frame(over, chunks: [7], maxRecordSize: 64).outcome == .recordTooLarge(65))
            // The largest mark: refused at once, whatever the cap below it.
            #expect(Self.frame(Self.mark(0x7FFF_FFFF), maxRecordSize: 1 << 20).outcome == .recordTooLarge(0x7FFF_FFFF))
            #expect(Self.frame(Self.mark(0x7FFF_FFFF, last: false), maxRecordSize: 0).outcome == .recordTooLarge(0x7FFF_FFFF))
        }

        @Test("with no cap (Int.max) the largest marks neither overflow nor reserve: memory follows the bytes received")
        func noCap() {
            let framer = RPCRecordFramer(maxRecordSize: Int.max)
            let bytes = Self.mark(0x7FFF_FFFF, last: false) + Array(repeating: 7, count: 0x7FFF_FFFF % 4096)
            _ = bytes.withUnsafeBytes { framer.feed($0) { _ in true } }
            #expect(framer.outcome == .open)
            #expect(framer.assembled.count == 0x7FFF_FFFF % 4096)
        }

        @Test("a record the consumer refuses puts the stream out of step, for good")
        func outOfStep() {
            let stream = RawRPC.recordMarked([1]) + RawRPC.recordMarked([0xFF, 1]) + RawRPC.recordMarked([2])
            for size in [1, 3, stream.count] {
                let (records, outcome) = Self.frame(stream, chunks: [size])
                #expect(records == [[1], [0xFF, 1]], "pieces of \(size)")
                #expect(outcome == .outOfStep)
            }
            let framer = RPCRecordFramer(maxRecordSize: 64)
            let refused = RawRPC.recordMarked([0xFF])
            _ = refused.withUnsafeBytes { framer.feed($0) { _ in false } }
            var calledAgain = false
            let again = RawRPC.recordMarked([1])
            #expect(again.withUnsafeBytes { framer.feed($0) { _ in calledAgain = true; return true } } == .outOfStep)
            #expect(!calledAgain)
        }

        @Test("an empty record is handed over (and refused by the call parser: not a call)")
        func emptyRecord() {
            #expect(Self.frame(Self.mark(0)).records == [[]])
            #expect(RPCServerMessage.parseCall(UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        }
    }
}
