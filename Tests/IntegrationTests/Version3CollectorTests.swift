import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// authrelayd's version 3 over real sockets: the batch rule, loss ranges with
/// reasons, boot ends, GET_STATS with agent views, and `authrelay stats`.
@Suite("authrelayd version 3", .timeLimit(.minutes(2)))
struct Version3CollectorTests {
    init() { TestProcess.prepare() }

    func loss(_ first: UInt64, _ last: UInt64, _ reason: LossReason) -> LossRange {
        LossRange(first: first, last: last, reason: reason)
    }

    @Test("batches over tcp, udp and unix: events and loss lines by reason; at or below the highest nothing again, also after a restart")
    func batches() throws {
        let directory = try TemporaryDirectory(prefix: "v3-batches")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        func sends(_ agent: String) -> [(EventBatch, BatchAck)] {
            [
                (Sample.batchV3(agent: agent, first: 1, events: [1, 2, 3]), BatchAck(status: .ok, accepted: 3, duplicates: 0, highestSequence: 3)),
                (Sample.batchV3(agent: agent, first: 4, events: [7, 8], losses: [loss(4, 6, .queueFull)]),
                 BatchAck(status: .ok, accepted: 2, duplicates: 0, highestSequence: 8)),
                (Sample.batchV3(agent: agent, first: 4, events: [7, 8], losses: [loss(4, 6, .queueFull)]),
                 BatchAck(status: .ok, accepted: 0, duplicates: 2, highestSequence: 8)),
                (Sample.batchV3(agent: agent, first: 9, events: [], losses: [loss(9, 12, .spoolEvicted), loss(13, 13, .spoolCorrupt)]),
                 BatchAck(status: .ok, accepted: 0, duplicates: 0, highestSequence: 13)),
                (Sample.batchV3(agent: agent, first: 14, events: [15], losses: [loss(14, 14, .refused)]),
                 BatchAck(status: .ok, accepted: 1, duplicates: 0, highestSequence: 15)),
                (Sample.batchV3(agent: agent, first: 20, events: [20]), BatchAck(status: .ok, accepted: 1, duplicates: 0, highestSequence: 20)),
            ]
        }
        for endpoint in [daemon.tcp, daemon.udp, daemon.unix] {
            let client = Version3Client(endpoint)
            for (batch, ack) in sends("v3-\(endpoint.transport)") {
                #expect(try client.report(batch) == ack, "\(endpoint)")
            }
        }
        let lines = try daemon.outputLines()
        for endpoint in [daemon.tcp, daemon.udp, daemon.unix] {
            let agent = "v3-\(endpoint.transport)"
            #expect(CollectorOutput.sequences(of: lines, agent: agent) == [1, 2, 3, 7, 8, 15, 20])
            let losses = lines.filter { $0["type"] as? String == "loss" && $0["agent_id"] as? String == agent }
            #expect(losses.map { "\($0["reason"]!) \($0["first_seq"]!) \($0["last_seq"]!) \($0["count"]!)" }
                == ["queue_full 4 6 3", "spool_evicted 9 12 4", "spool_corrupt 13 13 1", "refused 14 14 1", "sequence_gap 16 19 4"])
        }
        let stats = try CollectorStatsClient(endpoint: daemon.tcp).stats()
        let extra = try #require(stats.version3)
        #expect(extra.lostQueueFull == 9 && extra.lostSpoolEvicted == 12 && extra.lostSpoolCorrupt == 3 && extra.lostRefused == 3)
        #expect(stats.gapEvents == 12 && stats.written == 21 && stats.duplicates == 6 && stats.rejected == 0)

        // After a restart every one of them is a duplicate, loss ranges included: nothing is written again.
        #expect(daemon.stop() == .exited(0))
        let again = try StartedCollector(in: directory, dataDirectory: daemon.dataDirectory, output: daemon.outputPath)
        defer { again.stop() }
        let client = Version3Client(again.unix)
        for (batch, _) in sends("v3-tcp") {
            #expect(try client.report(batch).accepted == 0)
        }
        #expect(try again.outputLines().count == lines.count)
        #expect(try client.report(Sample.batchV3(agent: "v3-tcp", first: 21, events: [21])).accepted == 1)
    }

    @Test("a batch that breaks the batch rule is REJECTED and writes nothing; a boot end with an unknown ending too")
    func rejected() throws {
        let directory = try TemporaryDirectory(prefix: "v3-rejected")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let client = Version3Client(daemon.tcp)
        let broken: [EventBatch] = [
            Sample.batchV3(first: 1, events: [1, 3]),
            Sample.batchV3(first: 1, events: [1, 2], losses: [loss(2, 3, .queueFull)]),
            Sample.batchV3(first: 1, events: [1], losses: [loss(3, 4, .queueFull), loss(2, 2, .queueFull)]),
            Sample.batchV3(first: 1, events: [1], losses: [loss(2, 2, .other(7))]),
            Sample.batchV3(first: 2, events: [1]),
            Sample.batchV3(first: 0, events: []),
        ]
        for batch in broken {
            #expect(try client.report(batch) == BatchAck(status: .rejected, accepted: 0, duplicates: 0, highestSequence: 0))
        }
        let socket = try RawRPC.Connection(daemon.unix)
        let bootEnd = RawRPC.call(version: 3, procedure: 3, arguments: RawRPC.XDR.build { $0.bootEnd(ending: 2, last: 1) })
        #expect(successResult(socket.call(bootEnd, datagram: false)) == [1])  // AR_STATUS_REJECTED
        #expect(try daemon.outputLines().isEmpty)
        #expect(try CollectorStatsClient(endpoint: daemon.tcp).stats().rejected == UInt64(broken.count + 1))
    }

    @Test("REPORT_BOOT_END: one boot_end line per (agent, boot), also after a crash (from the output) and a restart (from the checkpoint)")
    func bootEnds() throws {
        let directory = try TemporaryDirectory(prefix: "v3-boot-end")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory)
        defer { first.stop() }
        let unclean = BootEnd(agentID: "agent-1", bootID: "boot-1", ending: .unclean, lastSequence: 120, endedNanoseconds: 1_700_000_000_000_000_000,
                              reportedBy: "boot-2")
        let clean = BootEnd(agentID: "agent-1", bootID: "boot-2", ending: .clean, lastSequence: 7, endedNanoseconds: 5, reportedBy: "boot-2")
        #expect(try Version3Client(first.unix).reportBootEnd(unclean) == .ok)
        #expect(try Version3Client(first.tcp).reportBootEnd(unclean) == .ok)
        #expect(try Version3Client(first.udp).reportBootEnd(clean) == .ok)
        let stats = try CollectorStatsClient(endpoint: first.tcp).stats()
        #expect(stats.version3?.bootsUnclean == 1 && stats.version3?.bootsClean == 1)
        first.process.signal(SIGKILL)  // before any checkpoint names them: the output's tail says it
        try first.process.waitForExit(timeout: .seconds(5))

        let second = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { second.stop() }
        #expect(try Version3Client(second.unix).reportBootEnd(unclean) == .ok)
        #expect(second.stop() == .exited(0))
        let third = try StartedCollector(in: directory, dataDirectory: first.dataDirectory, output: first.outputPath)
        defer { third.stop() }
        #expect(try Version3Client(third.unix).reportBootEnd(clean) == .ok)
        #expect(try CollectorStatsClient(endpoint: third.tcp).stats().version3?.bootsClean == 0)

        let lines = try third.outputLines().filter { $0["type"] as? String == "boot_end" }
        #expect(lines.count == 2)
        let line = try #require(lines.first)
        #expect(line["agent_id"] as? String == "agent-1" && line["boot_id"] as? String == "boot-1")
        #expect(line["ending"] as? String == "unclean" && line["last_seq"] as? Int == 120)
        #expect(line["ended_ns"] as? Int == 1_700_000_000_000_000_000 && line["reported_by"] as? String == "boot-2")
        #expect(line["peer_uid"] as? Int == Int(Processes.userID))
        #expect(lines.last?["ending"] as? String == "clean")
    }

    @Test("GET_STATS version 3: each agent run's latest status, most recently heard first, at most 256; version 2 runs not among them")
    func agentViews() throws {
        let directory = try TemporaryDirectory(prefix: "v3-views")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let client = Version3Client(daemon.unix)
        for index in 0..<300 {
            var status = AgentStatus()
            status.submitted = UInt64(index * 10)
            status.spoolBytes = UInt64(index)
            status.spoolSegments = 2
            status.spoolUsable = true
            status.oldestSpooledNanoseconds = 1_700_000_000_000_000_000
            #expect(try client.report(Sample.batchV3(agent: "agent-\(index)", first: 1, events: [1, 2], status: status)).accepted == 2)
        }
        #expect(try CollectorClient(endpoint: daemon.unix).report(Sample.numberedBatch(agent: "version-2", count: 1)).accepted == 1)
        let stats = try CollectorStatsClient(endpoint: daemon.tcp).stats()
        let views = try #require(stats.version3?.agents)
        #expect(views.count == Event.maxAgentViews)
        #expect(views.first?.agentID == "agent-299" && views.last?.agentID == "agent-44")
        #expect(views.first?.status.submitted == 2990 && views.first?.status.spoolBytes == 299 && views.first?.status.spoolUsable == true)
        #expect(views.first?.highestSequence == 2 && views.first?.bootID == "boot-1")
        #expect(!views.contains { $0.agentID == "version-2" })
        #expect(stats.agents == 301)
        // Over udp the answer fits one 8,800-byte datagram (libtirpc's default): the most recent views that fit.
        let overUDP = try CollectorStatsClient(endpoint: daemon.udp).stats()
        let udpViews = try #require(overUDP.version3?.agents)
        // (8,800 - 188 bytes of header and counters) / 124 bytes a view ("agent-NNN", "boot-1", 96 of numbers) = 69.
        #expect(udpViews.count == 69 && udpViews.first?.agentID == "agent-299", "\(udpViews.count)")
        #expect(overUDP.written == stats.written)
    }

    @Test("the largest valid version 3 batch (64 loss ranges, 512 events at every bound) is answered on tcp and unix")
    func largest() throws {
        let directory = try TemporaryDirectory(prefix: "v3-largest")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--sink", "null"])
        defer { daemon.stop() }
        for endpoint in [daemon.tcp, daemon.unix] {
            var batch = EventBatch(header: BatchHeader(agentID: String(repeating: "a", count: Event.maxIDBytes),
                                                       bootID: String(repeating: "\(endpoint.transport)-", count: 20).prefix(Event.maxIDBytes).description,
                                                       firstSequence: 1,
                                                       losses: (1...UInt64(Event.maxLossRanges)).map { loss($0 * 2 - 1, $0 * 2 - 1, .spoolEvicted) }),
                                   events: [])
            // Losses at the odd sequences 1...127, events at the even ones, then the rest.
            let sequences = (1...UInt64(Event.maxLossRanges)).map { $0 * 2 } + (129...UInt64(128 + Event.maxBatchEvents - Event.maxLossRanges))
            batch.events = sequences.map { Sample.maximal(sequence: $0) }
            #expect(try Version3Client(endpoint, timeout: .seconds(10)).report(batch)
                == BatchAck(status: .ok, accepted: UInt32(Event.maxBatchEvents), duplicates: 0, highestSequence: sequences.last!))
        }
    }

    @Test("a version 3 batch sent slowly in small fragments decodes as it arrives, as sent")
    func fragmented() throws {
        let directory = try TemporaryDirectory(prefix: "v3-fragments")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let valid = RawRPC.XDR.build { xdr in
            xdr.eventBatchV3(first: 1, losses: [(41, 45, 2)], events: 0, sequences: Array(1...40) + Array(46...50))
        }
        for endpoint in [daemon.unix, daemon.tcp] {
            let socket = try RawRPC.Connection(endpoint)
            for piece in RawRPC.fragments(RawRPC.call(version: 3, procedure: 1, arguments: valid), size: 97) {
                socket.send(piece)
                SystemClock.sleep(.microseconds(300))
            }
            let reply = try #require(socket.receiveReply())
            #expect(successResult(Array(reply.dropFirst())).map { Array($0.prefix(3)) } == (endpoint.transport == .local ? [0, 45, 0] : [0, 0, 45]))
        }
        let lines = try daemon.outputLines()
        #expect(CollectorOutput.sequences(of: lines) == Array(1...40) + Array(46...50))
        #expect(lines.filter { $0["reason"] as? String == "spool_evicted" }.count == 1)
    }

    @Test("authrelay stats: version 3 counters and agent runs in the table, JSON and Prometheus (agent_id labels); version 2 against a v2 collector")
    func statsCommand() throws {
        let directory = try TemporaryDirectory(prefix: "v3-stats-command")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        var status = AgentStatus()
        status.spooled = 12
        status.spoolBytes = 4096
        status.spoolUsable = true
        #expect(try Version3Client(daemon.unix).report(Sample.batchV3(agent: "host-\"a\"", first: 1, events: [2], losses: [loss(1, 1, .queueFull)],
                                                                   status: status)).accepted == 1)
        let collector = "unix://\(daemon.socketPath)"
        func stats(_ arguments: [String]) throws -> String {
            let (status, output) = try ChildProcess.run(BuiltPrograms.path("authrelay"), ["stats", "--collector", collector] + arguments,
                                                        timeout: .seconds(10))
            #expect(status == 0, "\(output)")
            return output
        }
        let table = try stats([])
        #expect(table.contains("lost_queue_full      1") && table.contains("evicted_connections  0"), "\(table)")
        #expect(table.contains("agent runs, most recently heard first:") && table.contains(#""host-\"a\"""#), "\(table)")
        let json = try stats(["--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["lost_queue_full"] as? Int == 1 && object["output_lost"] as? Int == 0)
        let runs = try #require(object["agent_runs"] as? [[String: Any]])
        #expect(runs.first?["agent_id"] as? String == "host-\"a\"" && runs.first?["spool_bytes"] as? Int == 4096)
        #expect(runs.first?["spool_usable"] as? Bool == true && runs.first?["spooled"] as? Int == 12)
        let prometheus = try stats(["--format", "prometheus"])
        #expect(prometheus.contains("authrelay_collector_lost_queue_full_total{collector=\"unix \(daemon.socketPath)\"} 1"), "\(prometheus)")
        #expect(prometheus.contains("authrelay_agent_spool_bytes{collector=\"unix \(daemon.socketPath)\",agent_id=\"host-\\\"a\\\"\",boot_id=\"boot-1\"} 4096"),
                "\(prometheus)")

        // A collector with version 2 only: the version 2 counters, as before.
        let socketPath = directory.file("legacy.sock")
        let legacy = try ChildProcess(BuiltPrograms.path("legacy-collector"), ["-2", "-n", "-t", "unix", "-s", socketPath, "-o", directory.file("legacy.out")],
                                      outputIn: directory)
        defer { legacy.stop() }
        _ = try legacy.waitFor("listening unix")
        let (code, output) = try ChildProcess.run(BuiltPrograms.path("authrelay"), ["stats", "--collector", "unix://\(socketPath)", "--format", "json"],
                                                  timeout: .seconds(10))
        #expect(code == 0, "\(output)")
        #expect(output.contains("\"connections\":") && !output.contains("unserved_calls") && !output.contains("agent_runs"), "\(output)")
    }
}
