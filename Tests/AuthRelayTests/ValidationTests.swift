import AuthRelay
import AuthRelayProtocol
import ONCRPC
import SystemSupport
import Testing
import TestSupport

extension AuthRelayTests {
    /// Values over a bound of the `.x` are refused in Swift, with text that says
    /// which field and by how much, before any connection is made.
    @Suite struct OverBoundRejection {
        /// A collector address nobody listens on: reaching it would fail with cantConnect,
        /// so an `.invalid` error proves nothing was sent.
        static let nowhere = RPCEndpoint.unix(path: "/tmp/authrelay-no-such-collector-\(Processes.currentID).sock")

        /// `event` is refused by `CollectorClient.report` before any connection; the C
        /// encoder refuses it too, unless `encoderRefuses` is false (a NUL: C sees the
        /// string end there and would silently send it cut short).
        static func rejected(_ event: Event, encoderRefuses: Bool = true) throws -> EventError {
            let client = CollectorClient(endpoint: nowhere)
            let error = try #require(throws: CollectorError.self) { _ = try client.report(event) }
            guard case .invalid(let reason) = error else {
                Issue.record("expected .invalid before sending, got \(error)")
                throw error
            }
            #expect(!error.isRetryable)
            #expect(throws: reason) { try event.validate() }
            if encoderRefuses {
                #expect(Wire.encode(event) == nil, "the C encoder refuses it too")
            }
            return reason
        }

        static func rejected(_ batch: EventBatch) throws -> EventError {
            let client = CollectorClient(endpoint: nowhere)
            let error = try #require(throws: CollectorError.self) { _ = try client.report(batch) }
            guard case .invalid(let reason) = error else {
                Issue.record("expected .invalid before sending, got \(error)")
                throw error
            }
            #expect(throws: reason) { try batch.validate() }
            return reason
        }

        @Test("a 4097-byte executable or target path")
        func pathOverBound() throws {
            let long = "/" + String(repeating: "x", count: 4096)
            let exe = try Self.rejected(Sample.event(path: long))
            #expect(exe == .overBound(field: "exe_path", bytes: 4097, limit: 4096))
            #expect(exe.description == "exe_path is 4097 bytes, over the protocol bound of 4096")
            let target = try Self.rejected(Sample.event(target: long))
            #expect(target == .overBound(field: "target_path", bytes: 4097, limit: 4096))
        }

        @Test("a path of 4096 characters but more than 4096 UTF-8 bytes")
        func multibytePathOverBound() throws {
            let path = "/" + String(repeating: "ß", count: 2048)  // 1 + 4096 bytes
            let reason = try Self.rejected(Sample.event(path: path))
            #expect(reason == .overBound(field: "exe_path", bytes: 4097, limit: 4096))
        }

        @Test("a 65-byte digest")
        func digestOverBound() throws {
            let reason = try Self.rejected(Sample.event(digest: [UInt8](repeating: 7, count: 65)))
            #expect(reason == .overBound(field: "digest", bytes: 65, limit: 64))
            #expect(reason.description == "digest is 65 bytes, over the protocol bound of 64")
        }

        @Test("a NUL inside a path")
        func nulInPath() throws {
            let event = Sample.event(path: "/tmp/a\u{0}b")
            let reason = try Self.rejected(event, encoderRefuses: false)
            #expect(reason == .embeddedNUL(field: "exe_path"))
            // Why the Swift check matters: C would send "/tmp/a", a different path.
            #expect(Wire.roundTrip(event)?.executablePath == "/tmp/a")
            #expect(reason.description.contains("exe_path contains a NUL byte"))
        }

        @Test("513 events")
        func tooManyEvents() throws {
            let reason = try Self.rejected(Sample.batch(count: 513))
            #expect(reason == .tooManyEvents(count: 513, limit: 512))
            #expect(reason.description == "a batch of 513 events is over the protocol bound of 512")
        }

        @Test("a batch with no events is valid: it only reports drops (Docs/Protocol.md, events 0 to 512)")
        func dropsOnlyBatch() throws {
            var batch = Sample.batch(count: 0, firstSequence: 7)
            batch.header.dropped = 3
            #expect(throws: Never.self) { try batch.validate() }
            #expect(Wire.roundTrip(batch) == batch)
        }

        @Test("sequences out of order, with a gap, or not starting at first_seq")
        func sequenceOrder() throws {
            var swapped = Sample.batch(count: 3, firstSequence: 10)
            swapped.events.swapAt(1, 2)
            #expect(try Self.rejected(swapped) == .sequenceMismatch(expected: 11, found: 12))

            var gap = Sample.batch(count: 3, firstSequence: 10)
            gap.events[2].sequence = 13
            let reason = try Self.rejected(gap)
            #expect(reason == .sequenceMismatch(expected: 12, found: 13))
            #expect(reason.description == "batch events must follow first_seq by one: expected 12, found 13")

            var shifted = Sample.batch(count: 2, firstSequence: 10)
            shifted.header.firstSequence = 9
            #expect(try Self.rejected(shifted) == .sequenceMismatch(expected: 9, found: 10))
        }

        @Test("a 65-byte agent id or boot id, and a bad event inside a good batch")
        func headerAndInnerEvent() throws {
            var agent = Sample.batch(count: 1)
            agent.header.agentID = String(repeating: "a", count: 65)
            #expect(try Self.rejected(agent) == .overBound(field: "agent_id", bytes: 65, limit: 64))

            var boot = Sample.batch(count: 1)
            boot.header.bootID = "boot\u{0}id"
            #expect(try Self.rejected(boot) == .embeddedNUL(field: "boot_id"))

            var inner = Sample.batch(count: 3)
            inner.events[1].digest = [UInt8](repeating: 0, count: 100)
            #expect(try Self.rejected(inner) == .overBound(field: "digest", bytes: 100, limit: 64))
        }

        @Test("the one-way report checks bounds too")
        func oneWay() throws {
            let client = CollectorClient(endpoint: Self.nowhere)
            let error = try #require(throws: CollectorError.self) {
                try client.reportOneWay(Sample.event(digest: [UInt8](repeating: 0, count: 65)))
            }
            #expect(error == .invalid(.overBound(field: "digest", bytes: 65, limit: 64)))
            #expect(error.description == "invalid report: digest is 65 bytes, over the protocol bound of 64")
        }
    }
}
