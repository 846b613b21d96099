import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// De-duplication, loss records, restarts and the JSON Lines output of authrelayd.
@Suite("authrelayd de-duplication and loss", .timeLimit(.minutes(2)))
struct CollectorDedupTests {
    init() { TestProcess.prepare() }

    @Test("a retried batch is acknowledged as duplicates and written once")
    func duplicatesRemovedOnRetry() throws {
        let directory = try TemporaryDirectory(prefix: "collector-dedup")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let client = CollectorClient(endpoint: daemon.unix)

        let batch = Sample.numberedBatch(count: 50, firstSequence: 1)
        #expect(try client.report(batch) == BatchAck(status: .ok, accepted: 50, duplicates: 0, highestSequence: 50))
        #expect(try client.report(batch) == BatchAck(status: .ok, accepted: 0, duplicates: 50, highestSequence: 50))
        // Overlapping: 41...60 has 10 old and 10 new.
        #expect(try client.report(Sample.numberedBatch(count: 20, firstSequence: 41)) == BatchAck(status: .ok, accepted: 10, duplicates: 10, highestSequence: 60))
        // Another boot of the same agent starts again at 1.
        #expect(try client.report(Sample.numberedBatch(boot: "boot-2", count: 5, firstSequence: 1)).accepted == 5)

        let lines = try daemon.outputLines()
        #expect(CollectorOutput.sequences(of: lines.filter { $0["boot_id"] as? String == "boot-1" }) == Array(1...60))
        #expect(CollectorOutput.sequences(of: lines.filter { $0["boot_id"] as? String == "boot-2" }) == Array(1...5))
        let stats = try client.stats()
        #expect(stats.duplicates == 60 && stats.written == 65 && stats.agents == 2)
    }

    @Test("duplicates are recognised across a restart (SIGTERM) and a crash (SIGKILL) with the same --data-dir")
    func duplicatesRemovedAcrossRestart() throws {
        let directory = try TemporaryDirectory(prefix: "collector-restart")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory)
        defer { first.stop() }  // stop() is idempotent: these defers cover a throw before the explicit stop
        #expect(try CollectorClient(endpoint: first.tcp).report(Sample.numberedBatch(count: 30, firstSequence: 1)).accepted == 30)
        #expect(first.stop() == .exited(0))

        let second = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { second.stop() }
        let client = CollectorClient(endpoint: second.tcp)
        #expect(try client.report(Sample.numberedBatch(count: 30, firstSequence: 1)) == BatchAck(status: .ok, accepted: 0, duplicates: 30, highestSequence: 30))
        #expect(try client.report(Sample.numberedBatch(count: 10, firstSequence: 31)).accepted == 10)
        // Killed before any checkpoint names seq 40: the output's tail says it.
        second.process.signal(SIGKILL)
        try second.process.waitForExit(timeout: .seconds(5))
        // A crash in the middle of a write: a last line without its newline.
        let torn = try FileDescriptor.open(first.outputPath, O_WRONLY | O_APPEND)
        try torn.writeAll(Array("{\"type\":\"event\",\"source\":\"batch\",\"agent_id\":\"agent-1\",\"boot_id\":\"boot-1\",\"seq\":4".utf8))
        try torn.close()

        let third = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { third.stop() }
        let retry = CollectorClient(endpoint: third.unix)
        #expect(try retry.report(Sample.numberedBatch(count: 10, firstSequence: 31)).duplicates == 10)
        #expect(try retry.report(Sample.numberedBatch(count: 10, firstSequence: 35)) == BatchAck(status: .ok, accepted: 4, duplicates: 6, highestSequence: 44))
        let lines = try third.outputLines()  // every line parses: the torn one was cut off
        #expect(CollectorOutput.sequences(of: lines) == Array(1...44))
        #expect(third.process.stderr.contains("removed an incomplete last line"))
    }

    @Test("a header's dropped count and a sequence gap become loss records and counters")
    func lossRecords() throws {
        let directory = try TemporaryDirectory(prefix: "collector-loss")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let client = CollectorClient(endpoint: daemon.unix)

        #expect(try client.report(Sample.numberedBatch(count: 10, firstSequence: 1)).accepted == 10)
        #expect(try client.report(Sample.numberedBatch(count: 10, firstSequence: 11, dropped: 7)).accepted == 10)
        #expect(try client.report(Sample.numberedBatch(count: 5, firstSequence: 26)).accepted == 5)  // 21...25 never came
        // Retrying the batch that reported drops does not count them twice.
        #expect(try client.report(Sample.numberedBatch(count: 10, firstSequence: 11, dropped: 7)).duplicates == 10)

        let losses = try daemon.outputLines().filter { $0["type"] as? String == "loss" }
        #expect(losses.count == 2)
        #expect(losses.first?["reason"] as? String == "agent_dropped")
        #expect(losses.first?["count"] as? Int == 7 && losses.first?["before_seq"] as? Int == 11)
        #expect(losses.last?["reason"] as? String == "sequence_gap")
        #expect(losses.last?["count"] as? Int == 5)
        #expect(losses.last?["first_seq"] as? Int == 21 && losses.last?["last_seq"] as? Int == 25)
        #expect(losses.allSatisfy { $0["agent_id"] as? String == "agent-1" && $0["boot_id"] as? String == "boot-1" })
        let stats = try client.stats()
        #expect(stats.reportedDropped == 7 && stats.gapEvents == 5 && stats.written == 25)
    }

    @Test("a batch with no events reports drops once, also when retried and after a restart")
    func dropOnlyBatch() throws {
        let directory = try TemporaryDirectory(prefix: "collector-drop-only")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        func reportRaw(_ endpoint: RPCEndpoint, first: UInt64, dropped: UInt64, events: Int) throws -> [UInt32] {
            let socket = try RawRPC.Connection(endpoint)
            let arguments = RawRPC.XDR.build { $0.eventBatch(first: first, dropped: dropped, events: events) }
            socket.send(RawRPC.recordMarked(RawRPC.call(version: 2, procedure: 1, arguments: arguments)))
            return try #require(socket.receiveReply())
        }
        // REPLY ACCEPTED SUCCESS, then status, accepted, duplicates, highest_seq (two words).
        #expect(Array(try reportRaw(daemon.unix, first: 1, dropped: 0, events: 4).dropFirst(6)) == [0, 4, 0, 0, 4])
        #expect(Array(try reportRaw(daemon.unix, first: 5, dropped: 9, events: 0).dropFirst(6)) == [0, 0, 0, 0, 4])
        #expect(Array(try reportRaw(daemon.unix, first: 5, dropped: 9, events: 0).dropFirst(6)) == [0, 0, 0, 0, 4])  // a retry
        #expect(daemon.stop() == .exited(0))
        let again = try StartedCollector(in: directory, dataDirectory: daemon.dataDirectory, output: daemon.outputPath)
        defer { again.stop() }
        #expect(Array(try reportRaw(again.tcp, first: 5, dropped: 9, events: 0).dropFirst(6)) == [0, 0, 0, 0, 4])  // a retry after restart
        #expect(Array(try reportRaw(again.tcp, first: 5, dropped: 2, events: 3).dropFirst(6)) == [0, 3, 0, 0, 7])  // new drops, with events
        let losses = try again.outputLines().filter { $0["type"] as? String == "loss" }
        #expect(losses.compactMap { $0["count"] as? Int } == [9, 2])
        #expect(try CollectorClient(endpoint: again.tcp).stats().reportedDropped == 2)  // counters restart with the daemon
    }

    @Test("the output rotates by size; every file holds whole lines; state survives rotation and restart")
    func rotation() throws {
        let directory = try TemporaryDirectory(prefix: "collector-rotation")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--rotate-size", "8K", "--rotate-keep", "50", "--fsync", "always"])
        defer { daemon.stop() }
        let client = CollectorClient(endpoint: daemon.unix)
        for batch in 0..<20 {
            #expect(try client.report(Sample.numberedBatch(count: 10, firstSequence: UInt64(batch * 10 + 1))).accepted == 10)
        }
        #expect(daemon.stop() == .exited(0))
        let rotated = try FileSystem.listDirectory(directory.path).filter { $0.hasPrefix("events.jsonl.") }
        #expect(rotated.count >= 3)
        let files = rotated.sorted { Int($0.split(separator: ".").last!)! < Int($1.split(separator: ".").last!)! }.map(directory.file) + [daemon.outputPath]
        let sequences = try files.flatMap { CollectorOutput.sequences(of: try CollectorOutput.lines(atPath: $0)) }
        #expect(sequences == Array(1...200))

        let again = try StartedCollector(in: directory, dataDirectory: daemon.dataDirectory, output: daemon.outputPath,
                                        extra: ["--rotate-size", "8K", "--rotate-keep", "50"])
        defer { again.stop() }
        #expect(try CollectorClient(endpoint: again.tcp).report(Sample.numberedBatch(count: 20, firstSequence: 191)) ==
                BatchAck(status: .ok, accepted: 10, duplicates: 10, highestSequence: 210))
    }

    @Test("--sink null acknowledges and counts, and writes nothing")
    func nullSink() throws {
        let directory = try TemporaryDirectory(prefix: "collector-null")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--sink", "null"])
        defer { daemon.stop() }
        let client = CollectorClient(endpoint: daemon.tcp)
        #expect(try client.report(Sample.numberedBatch(count: 100, firstSequence: 1)).accepted == 100)
        #expect(try client.report(Sample.numberedBatch(count: 100, firstSequence: 1)).duplicates == 100)
        #expect(try client.stats().written == 100)
        #expect(!FileSystem.exists(daemon.outputPath))
    }

    @Test("--output - writes JSON Lines to stdout")
    func standardOutput() throws {
        let directory = try TemporaryDirectory(prefix: "collector-stdout")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, output: "-")
        defer { daemon.stop() }
        #expect(try CollectorClient(endpoint: daemon.unix).report(Sample.numberedBatch(count: 3, firstSequence: 1)).accepted == 3)
        #expect(daemon.stop() == .exited(0))
        let lines = try daemon.process.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(lines.compactMap { $0?["seq"] as? Int } == [1, 2, 3])
    }
}
