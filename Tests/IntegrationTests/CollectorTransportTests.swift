import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// AuthRelay's CollectorClient against authrelayd over real sockets.
@Suite("authrelayd transports", .timeLimit(.minutes(2)))
struct CollectorTransportTests {
    init() { TestProcess.prepare() }

    @Test("CollectorClient reports batches and events over tcp, udp and unix; fields arrive intact")
    func reportsOverEveryTransport() throws {
        let directory = try TemporaryDirectory(prefix: "collector-transports")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }

        for (index, endpoint) in [daemon.tcp, daemon.udp, daemon.unix].enumerated() {
            let client = CollectorClient(endpoint: endpoint, timeout: .seconds(5))
            #expect(try client.negotiate() == .v2)  // this client's highest: the collector serves 1...3
            let agent = "agent-\(index)"
            let first = try client.report(Sample.numberedBatch(agent: agent, count: 100, firstSequence: 1))
            #expect(first == BatchAck(status: .ok, accepted: 100, duplicates: 0, highestSequence: 100))
            // Large batches go out in several record fragments on unix (9000-byte client buffers).
            let size = endpoint.transport == .udp ? 100 : Event.maxBatchEvents
            let second = try client.report(Sample.numberedBatch(agent: agent, count: size, firstSequence: 101))
            #expect(second.accepted == UInt32(size) && second.highestSequence == UInt64(100 + size))
            #expect(try client.report(Sample.numbered(7)).status == .ok)  // version 1
        }

        let lines = try daemon.outputLines()
        for index in 0..<3 {
            let sequences = CollectorOutput.sequences(of: lines, agent: "agent-\(index)")
            let size = index == 1 ? 100 : Event.maxBatchEvents
            #expect(sequences == Array(1...UInt64(100 + size)))
        }
        let sample = try #require(CollectorOutput.events(of: lines, agent: "agent-2").first { ($0["seq"] as? Int) == 6 })
        #expect(sample["source"] as? String == "batch")
        #expect(sample["boot_id"] as? String == "boot-1")
        #expect(sample["kind"] as? String == "exec")
        #expect(sample["verdict"] as? String == "deny")
        #expect(sample["timestamp_ns"] as? Int == 1_700_000_000_000_000_006)
        #expect(sample["decision_ns"] as? Int == 1500)
        #expect(sample["pid"] as? Int == 4242 && sample["ppid"] as? Int == 1)
        #expect(sample["uid"] as? Int == 1000 && sample["gid"] as? Int == 100)
        #expect(sample["flags"] as? Int == 1)
        #expect(sample["exe_path"] as? String == "/usr/bin/cat")
        #expect(sample["target_path"] as? String == "/etc/passwd")
        #expect(sample["digest"] as? String == "deadbeef")
        #expect(sample["peer_uid"] as? Int == Int(Processes.userID))  // unix socket: the kernel's word
        let overTCP = try #require(CollectorOutput.events(of: lines, agent: "agent-0").first)
        #expect(overTCP["peer_uid"] == nil)
        let legacy = lines.filter { $0["source"] as? String == "legacy" }
        #expect(legacy.count == 3)
        #expect(legacy.allSatisfy { $0["agent_id"] == nil && ($0["seq"] as? Int) == 7 })

        let stats = try CollectorClient(endpoint: daemon.tcp).stats()
        #expect(stats.legacyEvents == 3)
        #expect(stats.written == UInt64(3 + 3 * 100 + 2 * Event.maxBatchEvents + 100))
        #expect(stats.agents == 3)
        #expect(stats.batches == 6)
    }

    @Test("rpcbind lists every (version, transport); rpcinfo answers; all of it is gone after SIGTERM",
          .enabled(if: LocalRPCBind.isRunning, "rpcbind is not running"))
    func registrationVisibleAndRemoved() throws {
        let directory = try TemporaryDirectory(prefix: "collector-rpcbind")
        defer { directory.remove() }
        let program = uniqueProgramNumber()
        let daemon = try StartedCollector(in: directory, rpcbind: true, program: program)
        defer { daemon.stop() }

        let listing = try LocalRPCBind.entries()
        for version in 1...3 {
            for (netid, port) in [("tcp", daemon.tcpPort), ("udp", daemon.udpPort)] {
                #expect(listing.contains(["\(program)", "\(version)", netid, "\(port)"]), "rpcinfo -p: \(listing)")
            }
        }
        for (version, netid, port) in [(1, "tcp", daemon.tcpPort), (2, "tcp", daemon.tcpPort), (1, "udp", daemon.udpPort), (2, "udp", daemon.udpPort)] {
            #expect(listing.contains(["\(program)", "\(version)", netid, "\(port)"]), "rpcinfo -p: \(listing)")
        }
        for flag in ["tcp", "udp", "local"] {
            for version in 1...3 {
                let answer = try LocalRPCBind.rpcinfo(["-T", flag, "localhost", String(program), String(version)])
                #expect(answer.output.contains("ready and waiting"), "rpcinfo -T \(flag): \(answer.output)")
            }
        }
        // Through rpcbind, as an agent configured with "local" finds it.
        let client = CollectorClient(endpoint: .rpcbind(host: "localhost", transport: .local), program: program)
        #expect(try client.negotiate() == .v2)
        #expect(try client.report(Sample.numberedBatch(count: 10, firstSequence: 1)).accepted == 10)

        #expect(daemon.stop() == .exited(0))
        #expect(try LocalRPCBind.entries().allSatisfy { $0.first != "\(program)" })
        let local = try LocalRPCBind.rpcinfo(["-T", "local", "localhost", String(program), "2"])
        #expect(!local.output.contains("ready and waiting"))
        #expect(!FileSystem.exists(daemon.socketPath))
    }

    @Test("a registration left by a killed daemon is replaced at start", .enabled(if: LocalRPCBind.isRunning, "rpcbind is not running"))
    func staleRegistrationReplaced() throws {
        let directory = try TemporaryDirectory(prefix: "collector-stale")
        defer { directory.remove() }
        let program = uniqueProgramNumber()
        let first = try StartedCollector(in: directory, rpcbind: true, program: program)
        defer { first.stop() }  // already killed unless a throw came first
        first.process.signal(SIGKILL)
        try first.process.waitForExit(timeout: .seconds(5))
        #expect(try LocalRPCBind.entries().contains { $0.first == "\(program)" })  // left behind

        let second = try StartedCollector(in: directory, rpcbind: true, program: program, dataDirectory: first.dataDirectory)
        defer { second.stop() }
        let answer = try LocalRPCBind.rpcinfo(["-T", "local", "localhost", String(program), "2"])
        #expect(answer.output.contains("ready and waiting"), "\(answer.output)")
        let client = CollectorClient(endpoint: .rpcbind(host: "localhost", transport: .local), program: program)
        #expect(try client.report(Sample.numberedBatch(count: 3, firstSequence: 1)).accepted == 3)
        #expect(second.stop() == .exited(0))
    }

    @Test("clear one-line errors: port in use, output not writable, data directory in use")
    func startupErrors() throws {
        let directory = try TemporaryDirectory(prefix: "collector-errors")
        defer { directory.remove() }
        let running = try StartedCollector(in: directory, extra: ["--transports", "tcp"])
        defer { running.stop() }

        let authrelayd = BuiltPrograms.path("authrelayd")
        let taken = try ChildProcess(authrelayd, ["--no-rpcbind", "--transports", "tcp", "--port", String(running.tcpPort),
                                                  "--data-dir", directory.file("other"), "--output", directory.file("other.jsonl")],
                                     outputIn: directory)
        #expect(try taken.waitForExit(timeout: .seconds(10)) == .exited(1))
        #expect(taken.stderr.contains("authrelayd: tcp 127.0.0.1:\(running.tcpPort) is already in use"), "\(taken.stderr)")

        let unwritable = try ChildProcess(authrelayd, ["--no-rpcbind", "--transports", "tcp", "--data-dir", directory.file("third"),
                                                       "--output", directory.file("missing/dir/events.jsonl")], outputIn: directory)
        #expect(try unwritable.waitForExit(timeout: .seconds(10)) == .exited(1))
        #expect(unwritable.stderr.contains("authrelayd: cannot write the output: open"), "\(unwritable.stderr)")

        let sameData = try ChildProcess(authrelayd, ["--no-rpcbind", "--transports", "tcp", "--data-dir", running.dataDirectory,
                                                     "--output", directory.file("fourth.jsonl")], outputIn: directory)
        #expect(try sameData.waitForExit(timeout: .seconds(10)) == .exited(1))
        #expect(sameData.stderr.contains("is in use by another collector"), "\(sameData.stderr)")
    }

    @Test("--allow-uid: only listed uids on the unix socket; tcp and udp are refused")
    func allowUID() throws {
        let directory = try TemporaryDirectory(prefix: "collector-uid")
        defer { directory.remove() }
        let me = Processes.userID
        let others = try StartedCollector(in: directory, extra: ["--allow-uid", String(me + 4242)])
        defer { others.stop() }
        #expect(try CollectorClient(endpoint: others.unix).report(Sample.numberedBatch(count: 2, firstSequence: 1)).status == .unauthorized)
        others.stop()

        let mine = try StartedCollector(in: directory, dataDirectory: directory.file("data2"), output: directory.file("two.jsonl"),
                                       extra: ["--allow-uid", String(me)])
        defer { mine.stop() }
        #expect(try CollectorClient(endpoint: mine.unix).report(Sample.numberedBatch(count: 2, firstSequence: 1)).status == .ok)
        #expect(try CollectorClient(endpoint: mine.tcp).report(Sample.numberedBatch(count: 2, firstSequence: 3)).status == .unauthorized)
        #expect(try CollectorClient(endpoint: mine.udp).report(Sample.numbered(1)).status == .unauthorized)
        let stats = try CollectorClient(endpoint: mine.tcp).stats()  // reading counters is not reporting
        #expect(stats.rejected == 2 && stats.written == 2)
        // Version 3's views name agent runs (boot ids): only for those who may report.
        #expect(try Version3Client(mine.unix).report(Sample.batchV3(agent: "v3", first: 1, events: [1])).accepted == 1)
        #expect(try CollectorStatsClient(endpoint: mine.tcp).stats().version3?.agents.isEmpty == true)
        #expect(try CollectorStatsClient(endpoint: mine.unix).stats().version3?.agents.map(\.agentID) == ["v3"])
        let mode = try FileSystem.status(mine.socketPath)?.mode
        #expect(mode == 0o660)
    }
}
