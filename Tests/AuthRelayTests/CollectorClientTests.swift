import AuthRelay
import AuthRelayProtocol
import ONCRPC
import SystemSupport
import Testing
import TestSupport

extension AuthRelayTests {
    /// `CollectorClient` against the plain C legacy collector built from the same `.x`:
    /// version negotiation, ordered delivery, and both versions' replies.
    @Suite struct CollectorClientAgainstLegacyCollector {
        /// A program number of its own, so these tests never meet another collector in rpcbind.
        static let program: UInt32 = 0x3F0A_7E10

        /// These tests kill collectors with calls in flight.
        init() { TestProcess.prepare() }

        /// The fields of one event line, by key.
        static func fields(_ line: String) -> [String: String] {
            Dictionary(line.split(separator: "\t").compactMap { field in
                field.firstIndex(of: "=").map { (String(field[..<$0]), String(field[field.index(after: $0)...])) }
            }, uniquingKeysWith: { first, _ in first })
        }

        static func event(_ sequence: UInt64) -> Event {
            Sample.event(
                sequence: sequence, path: "/usr/bin/tool-\(sequence)", target: "/tmp/日本語/ß-\(sequence)",
                digest: [UInt8(truncatingIfNeeded: sequence), 0xab])
        }

        @Test("a v1-only collector: negotiate() picks v1, and events arrive in order, acked by sequence")
        func versionOne() throws {
            let collector = try LegacyCollector(["-n", "-t", "tcp"])
            defer { collector.remove() }
            let port = try #require(collector.tcpPort, "no listening line in:\n\(collector.stderr)")
            let client = CollectorClient(endpoint: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(2))

            #expect(try client.negotiate() == .v1)
            #expect(client.version == .v1)
            for sequence in UInt64(1)...100 {
                let ack = try client.report(Self.event(sequence))
                #expect(ack == Ack(status: .ok, sequence: sequence))
            }
            // One-way reports are buffered by libtirpc and go out with the flush.
            for sequence in UInt64(101)...150 {
                try client.reportOneWay(Self.event(sequence))
            }
            try client.flushOneWay()

            let lines = collector.lines
            #expect(lines.count == 150)
            for (index, line) in lines.enumerated() {
                let fields = Self.fields(line)
                let sequence = UInt64(index + 1)
                #expect(fields["seq"] == String(sequence), "line \(index + 1): \(line)")
                #expect(fields["exe_path"] == "/usr/bin/tool-\(sequence)")
                #expect(fields["target_path"] == "/tmp/日本語/ß-\(sequence)")
                #expect(fields["kind"] == "OPEN")
                #expect(fields["pid"] == "4321")
            }

            // Version 2 operations get the collector's PROG_MISMATCH, as a retryable RPC error.
            let error = try #require(throws: CollectorError.self) { _ = try client.stats() }
            guard case .rpc(let rpc) = error else {
                Issue.record("expected an RPC error, got \(error)")
                return
            }
            #expect(rpc.status == .programVersionMismatch)
            #expect(rpc.supportedVersions == 1...1)
        }

        @Test("a collector with -2: negotiate() picks v2; batches are acked and counted")
        func versionTwo() throws {
            let collector = try LegacyCollector(["-n", "-t", "tcp", "-2"])
            defer { collector.remove() }
            let port = try #require(collector.tcpPort)
            let client = CollectorClient(endpoint: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(2))

            #expect(try client.negotiate() == .v2)
            try client.ping()
            let first = Sample.batch(count: 3, firstSequence: 1)
            #expect(try client.report(first) == BatchAck(status: .ok, accepted: 3, duplicates: 0, highestSequence: 3))
            let largest = Sample.batch(count: Event.maxBatchEvents, firstSequence: 4) { Sample.maximal(sequence: $0) }
            #expect(try client.report(largest) == BatchAck(status: .ok, accepted: 512, duplicates: 0, highestSequence: 515))

            let stats = try client.stats()
            #expect(stats.batches == 2)
            #expect(stats.events == 515)
            #expect(stats.legacyEvents == 0)

            // Version 1 is still served next to version 2, and still writes lines in order.
            for sequence in UInt64(516)...520 {
                #expect(try client.report(Self.event(sequence)).sequence == sequence)
            }
            #expect(collector.lines.compactMap { Self.fields($0)["seq"] } == (516...520).map(String.init))
            #expect(try client.stats().legacyEvents == 5)
        }

        @Test("a drops-only batch (no events) reaches a -2 collector and is acked")
        func dropsOnlyBatch() throws {
            let collector = try LegacyCollector(["-n", "-t", "tcp", "-2"])
            defer { collector.remove() }
            let port = try #require(collector.tcpPort)
            let client = CollectorClient(endpoint: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(2))
            #expect(try client.negotiate() == .v2)
            let batch = EventBatch(header: BatchHeader(agentID: "agent-1", bootID: "boot-1", firstSequence: 10, dropped: 4), events: [])
            #expect(try client.report(batch) == BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: 9))
        }

        @Test("over an AF_LOCAL socket, directly and found through rpcbind",
              .enabled(if: rpcbindIsRunning, "rpcbind is not running (start it with rpcbind -w)"))
        func localAndRPCBind() throws {
            let path = "/tmp/legacy-collector-test-\(Processes.currentID).sock"
            let collector = try LegacyCollector(["-t", "tcp,unix", "-s", path, "-p", String(Self.program)])
            defer {
                collector.remove()
                try? FileSystem.removeFile(path)  // the collector removes it on SIGTERM; not if it had to be killed
            }

            let direct = CollectorClient(endpoint: .unix(path: path), program: Self.program, timeout: .seconds(2))
            #expect(try direct.negotiate() == .v1)
            #expect(try direct.report(Self.event(1)).sequence == 1)

            for transport in [RPCTransport.tcp, .local] {
                let found = CollectorClient(
                    endpoint: .rpcbind(host: "localhost", transport: transport), program: Self.program, timeout: .seconds(2))
                #expect(try found.negotiate() == .v1, "\(transport)")
                #expect(try found.report(Self.event(transport == .tcp ? 2 : 3)).status == .ok)
            }
            #expect(collector.lines.compactMap { Self.fields($0)["seq"] } == ["1", "2", "3"])
        }

        @Test("a collector restart: the report in between fails as retryable, the next one reconnects")
        func restart() throws {
            var collector = try LegacyCollector(["-n", "-t", "tcp"])
            let port = try #require(collector.tcpPort)
            let client = CollectorClient(endpoint: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(2))
            #expect(try client.negotiate() == .v1)
            #expect(try client.report(Self.event(1)).status == .ok)

            collector.remove()
            let error = try #require(throws: CollectorError.self) { _ = try client.report(Self.event(2)) }
            #expect(error.isRetryable)
            if case .rpc(let rpc) = error {
                #expect(rpc.isConnectionLost, "\(rpc)")
            }

            collector = try LegacyCollector(["-n", "-t", "tcp", "-P", String(port)])
            defer { collector.remove() }
            #expect(try client.report(Self.event(2)) == Ack(status: .ok, sequence: 2))
            #expect(collector.lines.count == 1)
        }
    }
}

/// rpcbind answers here; CI starts it (`rpcbind -w`).
let rpcbindIsRunning = FileSystem.exists("/run/rpcbind.sock") || FileSystem.exists("/var/run/rpcbind.sock")
