import AuthRelay
import Testing

extension AuthRelayTests {
    @Suite struct LeakFreeRepetition {
        @Test("100k encode/decode round trips of a maximal event hold resident memory flat")
        func roundTripsHoldMemoryFlat() throws {
            let event = Sample.maximal()
            let arena = WireArena()
            var buffer = [UInt8](repeating: 0, count: try #require(Wire.encode(event)).count)

            func roundTrip() -> Bool {
                let written = buffer.withUnsafeMutableBytes { bytes in
                    arena.withWire(event) { AuthRelayProtocol.event.encode(&$0.pointee, into: bytes) }
                }
                guard written == buffer.count else { return false }
                return Wire.decodeEvent(buffer) == event
            }

            // Warm up: the arena, malloc's arenas and the string caches reach their steady size.
            for _ in 0..<5_000 {
                guard roundTrip() else { throw Failure.roundTrip }
            }
            let before = residentBytes()
            for _ in 0..<100_000 {
                guard roundTrip() else { throw Failure.roundTrip }
            }
            let growth = residentBytes() - before
            // One leaked path per round trip would be 400 MB; one leaked small block, 3 MB and more.
            #expect(growth < 2 << 20, "resident memory grew by \(growth) bytes over 100k round trips")
        }

        enum Failure: Error { case roundTrip }
    }
}
