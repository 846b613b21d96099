import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import SystemSupport
import Testing
import TestSupport

extension AuthRelayTests {
    @Suite struct LeakFreeRepetition {
        /// Set in the environment of the child process that does the measuring.
        static let childVariable = "AUTHRELAY_LEAK_TEST_CHILD"
        /// The line the child prints, followed by the growth in bytes.
        static let marker = "leak-test: resident growth over 100k round trips: "

        /// Resident memory is a whole-process number, and `swift test` runs every suite of
        /// every target in this one process, most of them in parallel (`.serialized` on
        /// AuthRelayTests orders only the suites nested in it). Measured here, anything
        /// another suite allocates meanwhile (a sender's queue of 65,536 events is tens of
        /// MB) would count as a leak, and memory it frees would hide one. So this test runs
        /// itself again in a child process, the test binary filtered to this one test,
        /// where nothing else runs, and checks the growth the child measured.
        @Test("100k encode/decode round trips of a maximal event hold resident memory flat")
        func roundTripsHoldMemoryFlat() throws {
            if Processes.environmentValue(Self.childVariable) != nil {
                print("\(Self.marker)\(try Self.measureGrowth())")
                return
            }
            let output = try Self.runInChild()
            let line = try #require(output.split(separator: "\n").first { $0.contains(Self.marker) },
                                    "the child process did not measure:\n\(output)")
            let growth = try #require(Int(line[line.firstRange(of: Self.marker)!.upperBound...]), "\(line)")
            // Alone in its process, the loop's own growth is close to nothing once warm.
            // Leaking any allocation per round trip, even the smallest malloc block
            // (32 bytes), grows it by 3.2 MB and more over 100k; leaking the event's
            // path, 400 MB. 2 MiB is below every one of those.
            #expect(growth < 2 << 20, "resident memory grew by \(growth) bytes over 100k round trips")
        }

        /// In the child: 100k round trips to warm up (the arena, malloc's arenas and the
        /// string caches reach their steady size), then the resident growth over 100k more.
        static func measureGrowth() throws -> Int {
            let event = Sample.maximal()
            let arena = WireArena()
            var buffer = [UInt8](repeating: 0, count: try #require(Wire.encode(event)).count)

            func roundTrip() -> Bool {
                let written = buffer.withUnsafeMutableBytes { bytes in
                    arena.withWire(event) { AuthRelayProgram.event.encode(&$0.pointee, into: bytes) }
                }
                guard written == buffer.count else { return false }
                return Wire.decodeEvent(buffer) == event
            }

            for _ in 0..<100_000 {
                guard roundTrip() else { throw Failure.roundTrip }
            }
            let before = residentBytes()
            for _ in 0..<100_000 {
                guard roundTrip() else { throw Failure.roundTrip }
            }
            return residentBytes() - before
        }

        /// Runs this test binary again with only this test, bounded in time (SIGKILL by
        /// pid after 60 s); returns its exit status, stdout and stderr.
        static func runInChild() throws -> String {
            let binary = try #require(Processes.currentExecutable(), "cannot read /proc/self/exe")
            let (status, output) = try ChildProcess.run(
                binary, ["--testing-library", "swift-testing", "--filter", "LeakFreeRepetition/roundTripsHoldMemoryFlat"],
                timeout: .seconds(60), environment: [childVariable: "1"])
            return "exit status \(status)\n\(output)"
        }

        enum Failure: Error { case roundTrip }
    }
}
