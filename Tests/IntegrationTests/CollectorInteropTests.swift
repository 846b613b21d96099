import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// authrelayd as a drop-in for the plain C programs users already run, both ways.
@Suite("authrelayd interop with the legacy C programs", .timeLimit(.minutes(2)))
struct CollectorInteropTests {
    init() { TestProcess.prepare() }

    @Test("legacy-reporter (version 1, one clnt_call per event) -> authrelayd on tcp, udp and unix: every event lands, fields intact",
          arguments: ["tcp", "udp", "unix"])
    func legacyReporterVersion1(transport: String) throws {
        let directory = try TemporaryDirectory(prefix: "interop-v1-\(transport)")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let count = 300
        let target = transport == "unix" ? ["-t", "unix", "-s", daemon.socketPath]
            : ["-t", transport, "-P", String(transport == "tcp" ? daemon.tcpPort : daemon.udpPort)]
        let reporter = try ChildProcess(BuiltPrograms.path("legacy-reporter"), target + ["-n", String(count), "-e", "/usr/bin/ta\"b\\le"],
                                        outputIn: directory)
        #expect(try reporter.waitForExit(timeout: .seconds(60)) == .exited(0), "\(reporter.stderr)")
        #expect(reporter.stdout.contains("events=\(count)") && reporter.stdout.contains("errors=0"), "\(reporter.stdout)")

        let lines = try daemon.outputLines()
        #expect(lines.count == count)
        #expect(CollectorOutput.sequences(of: lines) == Array(1...UInt64(count)))
        for (index, line) in lines.enumerated() {
            #expect(line["source"] as? String == "legacy")
            #expect(line["kind"] as? String == (index % 2 == 0 ? "open" : "exec"))
            #expect(line["verdict"] as? String == (index % 7 == 6 ? "deny" : "allow"))
            #expect(line["decision_ns"] as? Int == 1000 + index)
            #expect(line["exe_path"] as? String == "/usr/bin/ta\"b\\le")
            #expect(line["target_path"] as? String == "/tmp/legacy/file-\(index)")
            #expect(line["digest"] as? String == (0..<32).map { String(format: "%02x", (index + $0) & 0xFF) }.joined())
            #expect(line["uid"] as? Int == Int(Processes.userID) && line["gid"] as? Int == Int(Processes.groupID))
        }
        let stats = try CollectorClient(endpoint: daemon.tcp).stats()
        #expect(stats.legacyEvents == UInt64(count) && stats.written == UInt64(count))
    }

    @Test("legacy-reporter -B 64 (version 2 batches) -> authrelayd on unix: every event once; a rerun is all duplicates")
    func legacyReporterBatches() throws {
        let directory = try TemporaryDirectory(prefix: "interop-v2")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let reporter = try ChildProcess(BuiltPrograms.path("legacy-reporter"), ["-t", "unix", "-s", daemon.socketPath, "-n", "1000", "-B", "64"],
                                        outputIn: directory)
        #expect(try reporter.waitForExit(timeout: .seconds(60)) == .exited(0), "\(reporter.stderr)")
        let lines = try daemon.outputLines()
        #expect(CollectorOutput.sequences(of: lines, agent: "legacy-reporter") == Array(1...1000))
        #expect(lines.allSatisfy { $0["source"] as? String == "batch" && ($0["boot_id"] as? String)?.hasPrefix("boot-") == true })
        #expect(try CollectorClient(endpoint: daemon.unix).stats().batches == 16)
    }

    @Test("legacy-reporter finds authrelayd through rpcbind (libtirpc's own lookup) on tcp and unix",
          .enabled(if: LocalRPCBind.isRunning, "rpcbind is not running"))
    func legacyReporterThroughRPCBind() throws {
        let directory = try TemporaryDirectory(prefix: "interop-rpcbind")
        defer { directory.remove() }
        let program = uniqueProgramNumber()
        let daemon = try StartedCollector(in: directory, rpcbind: true, program: program)
        defer { daemon.stop() }
        for transport in ["tcp", "unix"] {
            let reporter = try ChildProcess(BuiltPrograms.path("legacy-reporter"), ["-t", transport, "-p", String(program), "-n", "20"],
                                            outputIn: directory)
            #expect(try reporter.waitForExit(timeout: .seconds(30)) == .exited(0), "\(reporter.stderr)")
        }
        #expect(try daemon.outputLines().count == 40)
    }

    @Test("AuthRelay's CollectorClient -> legacy-collector: version 1 is negotiated, every event arrives in order")
    func clientToLegacyCollector() throws {
        let directory = try TemporaryDirectory(prefix: "interop-legacy-collector")
        defer { directory.remove() }
        let socketPath = directory.file("legacy.sock")
        let outputPath = directory.file("legacy.out")
        let collector = try ChildProcess(BuiltPrograms.path("legacy-collector"), ["-n", "-t", "tcp,unix", "-s", socketPath, "-o", outputPath],
                                         outputIn: directory)
        defer { collector.stop() }
        let log = try collector.waitFor("listening unix")
        let port = StartedCollector.port(in: log, transport: "tcp")

        for endpoint in [RPCEndpoint.unix(path: socketPath), .tcp(host: "127.0.0.1", port: port)] {
            let client = CollectorClient(endpoint: endpoint)
            #expect(try client.negotiate() == .v1)
            for sequence in 1...50 {
                #expect(try client.report(Sample.numbered(UInt64(sequence))) == Ack(status: .ok, sequence: UInt64(sequence)))
            }
        }
        let lines = try #require(FileSystem.readText(outputPath)).split(separator: "\n")
        #expect(lines.count == 100)
        let sequences = lines.compactMap { $0.split(separator: "\t").first.flatMap { UInt64($0.dropFirst(4)) } }
        #expect(sequences == Array(1...50) + Array(1...50))
        #expect(lines.first?.contains("exe_path=/usr/bin/cat\ttarget_path=/etc/passwd\tdigest=deadbeef") == true)
    }
}
