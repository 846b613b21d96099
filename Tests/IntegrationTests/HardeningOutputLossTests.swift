import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// Issue 11, item 3: acknowledged events that vanish from the output are
/// measured at start and written down: an `output_lost` loss line with the
/// exact range, counted (GET_STATS v3 `output_lost`) and logged with the count.
/// With the output and the state both gone, the collector says so once
/// instead of reporting earlier deliveries as sequence gaps.
@Suite("authrelayd hardening: output lost", .serialized, .timeLimit(.minutes(3)))
struct HardeningOutputLossTests {
    init() { TestProcess.prepare() }

    /// `count` numbered events of `agent` from `first`, in batches of 100, each acknowledged.
    func deliver(_ daemon: StartedCollector, agent: String, first: UInt64 = 1, count: Int) throws {
        let client = CollectorClient(endpoint: daemon.unix)
        var next = first
        while next < first + UInt64(count) {
            let size = min(100, Int(first + UInt64(count) - next))
            #expect(try client.report(Sample.numberedBatch(agent: agent, count: size, firstSequence: next)).accepted == UInt32(size))
            next += UInt64(size)
        }
    }

    func losses(_ lines: [[String: Any]], reason: String) -> [(agent: String, first: Int, last: Int, count: Int)] {
        lines.filter { $0["type"] as? String == "loss" && $0["reason"] as? String == reason }.map {
            ($0["agent_id"] as? String ?? "", $0["first_seq"] as? Int ?? 0, $0["last_seq"] as? Int ?? 0, $0["count"] as? Int ?? 0)
        }
    }

    @Test("the output cut short (mid-line, as a power loss under --fsync never leaves it): output_lost for exactly what is gone")
    func truncated() throws {
        let directory = try TemporaryDirectory(prefix: "hardening-truncated")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { first.stop() }
        try deliver(first, agent: "agent-1", count: 1000)
        try deliver(first, agent: "agent-2", count: 50)
        #expect(first.stop() == .exited(0))

        // Cut in the middle of agent-1's line 601: its 600 first lines stay.
        let bytes = try FileSystem.readFile(first.outputPath)
        let lineEnds = bytes.indices.filter { bytes[$0] == 0x0A }
        let cut = lineEnds[599] + 1 + 40
        let file = try FileDescriptor.open(first.outputPath, O_WRONLY)
        try file.truncate(to: Int64(cut))
        try file.close()

        let second = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { second.stop() }
        let lines = try second.outputLines()
        #expect(CollectorOutput.sequences(of: lines, agent: "agent-1") == Array(1...600))
        let lost = losses(lines, reason: "output_lost")
        #expect(lost.count == 2)
        #expect(lost.contains { $0 == ("agent-1", 601, 1000, 400) })
        #expect(lost.contains { $0 == ("agent-2", 1, 50, 50) })
        let stats = try CollectorStatsClient(endpoint: second.tcp).stats()
        #expect(stats.version3?.outputLost == 450)
        #expect(stats.gapEvents == 0)
        let log = second.process.stderr
        #expect(log.contains("acknowledged events are missing from the output") && log.contains("count=400") && log.contains("count=50"), "\(log)")
        // What was acknowledged is still not written twice; what follows is written.
        let client = CollectorClient(endpoint: second.tcp)
        #expect(try client.report(Sample.numberedBatch(agent: "agent-1", count: 100, firstSequence: 901))
            == BatchAck(status: .ok, accepted: 0, duplicates: 100, highestSequence: 1000))
        #expect(try client.report(Sample.numberedBatch(agent: "agent-1", count: 5, firstSequence: 1001)).accepted == 5)

        // Measured once: the next start finds the output as the checkpoint says.
        #expect(second.stop() == .exited(0))
        let third = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { third.stop() }
        #expect(losses(try third.outputLines(), reason: "output_lost").count == 2)
        #expect(try CollectorStatsClient(endpoint: third.tcp).stats().version3?.outputLost == 0)
    }

    @Test("the output deleted, the data directory kept: every acknowledged event of the current file is output_lost")
    func deleted() throws {
        let directory = try TemporaryDirectory(prefix: "hardening-deleted")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory)
        defer { first.stop() }
        try deliver(first, agent: "agent-1", count: 300)
        #expect(first.stop() == .exited(0))
        try FileSystem.removeFile(first.outputPath)

        let second = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { second.stop() }
        #expect(losses(try second.outputLines(), reason: "output_lost").map { $0 == ("agent-1", 1, 300, 300) } == [true])
        #expect(try CollectorStatsClient(endpoint: second.unix).stats().version3?.outputLost == 300)
    }

    @Test("rotated files removed by --rotate-keep are no loss: only runs whose last lines were in the current file are checked")
    func rotationIsNoLoss() throws {
        let directory = try TemporaryDirectory(prefix: "hardening-rotation-loss")
        defer { directory.remove() }
        let rotation = ["--rotate-size", "8K", "--rotate-keep", "1"]
        let first = try StartedCollector(in: directory, extra: rotation)
        defer { first.stop() }
        try deliver(first, agent: "old", count: 20)
        for batch in 0..<40 {
            #expect(try CollectorClient(endpoint: first.unix).report(Sample.numberedBatch(agent: "new", count: 10, firstSequence: UInt64(batch * 10 + 1))).accepted == 10)
        }
        #expect(first.stop() == .exited(0))
        let inCurrent = CollectorOutput.sequences(of: try first.outputLines(), agent: "new")
        #expect(!inCurrent.isEmpty && inCurrent.last == 400)
        try FileSystem.removeFile(first.outputPath)

        let second = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath, extra: rotation)
        defer { second.stop() }
        let lost = losses(try second.outputLines(), reason: "output_lost")
        #expect(lost.count == 1)
        #expect(lost.first.map { $0 == ("new", Int(inCurrent.first!), 400, inCurrent.count) } == true, "\(lost) vs \(inCurrent)")
    }

    @Test("output and state both gone: one state_lost line and one log line, no sequence_gap for runs first seen since, also after a restart")
    func everythingGone() throws {
        let directory = try TemporaryDirectory(prefix: "hardening-state-lost")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory)
        defer { first.stop() }
        try deliver(first, agent: "agent-1", count: 1000)
        try deliver(first, agent: "agent-2", count: 50)
        #expect(first.stop() == .exited(0))
        FileSystem.removeTree(first.dataDirectory)
        try FileSystem.removeFile(first.outputPath)

        let second = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { second.stop() }
        try deliver(second, agent: "agent-1", first: 1001, count: 10)
        try deliver(second, agent: "agent-2", first: 51, count: 10)
        try deliver(second, agent: "agent-3", first: 1, count: 10)
        try deliver(second, agent: "agent-1", first: 1021, count: 10)  // a true gap, 1011...1020, in a run seen since
        var lines = try second.outputLines()
        let noted = lines.filter { $0["type"] as? String == "state_lost" }
        #expect(noted.count == 1)
        #expect(noted.first?["agent_id"] as? String == "agent-1" && noted.first?["first_seq"] as? Int == 1001)
        #expect(losses(lines, reason: "sequence_gap").map { $0 == ("agent-1", 1011, 1020, 10) } == [true])
        #expect(second.process.stderr.components(separatedBy: "started with neither its state nor its output").count == 2)
        #expect(try CollectorStatsClient(endpoint: second.tcp).stats().gapEvents == 10)

        // After a restart with the state there, a run first seen now is still no gap, and nothing is said again.
        #expect(second.stop() == .exited(0))
        let third = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { third.stop() }
        try deliver(third, agent: "agent-4", first: 500, count: 10)
        lines = try third.outputLines()
        #expect(lines.filter { $0["type"] as? String == "state_lost" }.count == 1)
        #expect(losses(lines, reason: "sequence_gap").count == 1)
    }
}
