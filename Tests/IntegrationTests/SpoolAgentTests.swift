import AuthRelayHarness
import Foundation
import SystemSupport
import TestSupport
import Testing

/// `authrelay agent` killed with SIGKILL during a collector outage, then
/// started again with the same spool: the second run delivers what the first
/// one spooled, exactly once, with the first run's boot id and numbers; what
/// was lost is only what had not reached the spool (the last few milliseconds),
/// and a version 3 collector is told the first run ended uncleanly.
@Suite("Spool: agent killed in an outage", .serialized, .timeLimit(.minutes(3)))
struct SpoolAgentTests {
    init() { TestProcess.prepare() }

    static let agentID = "kill-test"

    /// `authrelay agent --source synthetic` at 2,000/s with the spool at `spool`.
    static func startAgent(collector: String, spool: String, duration: String, extra: [String] = [],
                           in directory: TemporaryDirectory) throws -> ChildProcess {
        let agent = try ChildProcess(BuiltPrograms.path("authrelay"), [
            "agent", "--source", "synthetic", "--rate", "2000", "--duration", duration, "--collector", collector,
            "--spool-dir", spool, "--agent-id", agentID, "--log-level", "info", "--drain-seconds", "20",
        ] + extra, outputIn: directory)
        try agent.waitFor("authrelay agent: ready")
        return agent
    }

    /// The boot id a run logged when its sender started.
    static func bootID(of agent: ChildProcess) -> String? {
        guard let line = agent.stderr.split(separator: "\n").first(where: { $0.contains("sender started") }),
              let range = line.firstRange(of: "boot_id=") else { return nil }
        return String(line[range.upperBound...].prefix { $0.isHexDigit })
    }

    /// Runs a first agent against an absent collector for 1.5 s and kills it; its boot id and when it died (CLOCK_REALTIME).
    static func killFirstRun(collector: String, spool: String, in directory: TemporaryDirectory,
                             program: String? = nil) throws -> (boot: String, killedNanoseconds: UInt64) {
        let first = try startAgent(collector: collector, spool: spool, duration: "0", extra: program.map { ["--program", $0] } ?? [],
                                   in: directory)
        SystemClock.sleep(.milliseconds(1500))
        let killed = SystemClock.realtimeNanoseconds()
        #expect(first.kill() == .signalled(SIGKILL))
        return (try #require(bootID(of: first), "no boot id in \(first.stderr)"), killed)
    }

    @Test("against authrelayd (version 3): every event the killed run spooled is delivered once by the next run, which reports the unclean end")
    func killedThenRestarted() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool-agent")
        defer { directory.remove() }
        let socketPath = directory.file("collector.sock")
        let spool = directory.file("agent-spool")
        let (firstBoot, killed) = try Self.killFirstRun(collector: "unix://\(socketPath)", spool: spool, in: directory)

        let daemon = try StartedCollector(in: directory, extra: ["--unix-socket", socketPath, "--fsync", "never"])
        defer { daemon.stop() }
        let second = try Self.startAgent(collector: "unix://\(socketPath)", spool: spool, duration: "1", in: directory)
        let status = try second.waitForExit(timeout: .seconds(60))
        #expect(status == .exited(0), "\(second.stdout)\n\(second.stderr)")
        let summary = second.stdout
        let earlierDelivered = try #require(number(after: "earlier runs delivered", in: summary), "\(summary)")

        let lines = try daemon.outputLines()
        let first = BootOutput(lines: lines, bootID: firstBoot)
        #expect(earlierDelivered > 1000, "\(summary)")
        #expect(first.exactly(1...earlierDelivered) == nil, "\(first.exactly(1...earlierDelivered) ?? "")")
        #expect(first.gaps.isEmpty && first.losses.isEmpty, "nothing dropped in the outage: \(first.gaps) \(first.losses)")
        // What reached the spool goes up to the last few milliseconds before the kill.
        let lastTimestamp = lines.filter { $0["boot_id"] as? String == firstBoot }
            .compactMap { ($0["timestamp_ns"] as? NSNumber)?.uint64Value }.max() ?? 0
        let lostWindow = Duration.nanoseconds(Int64(killed) - Int64(lastTimestamp))
        print("agent kill -9: \(earlierDelivered) events of the killed run delivered; the last was submitted \(lostWindow) before the kill")
        #expect(lostWindow < .milliseconds(300), "more than the last moments before the kill were lost: \(lostWindow)")

        let secondBoot = try #require(Self.bootID(of: second))
        let acknowledged = try #require(number(after: "acknowledged", in: summary))
        let own = BootOutput(lines: lines, bootID: secondBoot)
        #expect(own.exactly(1...acknowledged) == nil, "\(own.exactly(1...acknowledged) ?? "")")
        #expect(number(after: "undelivered", in: summary) == 0, "\(summary)")
        #expect(first.ends.count == 1 && first.ends.allSatisfy { $0 == ("unclean", earlierDelivered, secondBoot) }, "\(first.ends)")
        #expect(own.ends.count == 1 && own.ends.allSatisfy { $0.ending == "clean" && $0.last == acknowledged }, "\(own.ends)")
        #expect(summary.contains("problems: none"), "\(summary)")
    }

    @Test("against a version 3 collector: the killed run's unclean end is recorded with the last spooled sequence",
          .enabled(if: RpcgenCollector.available, "needs rpcbind, rpcgen and cc"))
    func uncleanEndReported() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool-agent")
        defer { directory.remove() }
        let spool = directory.file("agent-spool")
        // Nothing listens at this program number yet: the first run is in an outage from the start.
        let collector = try RpcgenCollector(.generatedMain, in: directory)
        let program = String(collector.program)
        collector.stop()
        let (firstBoot, _) = try Self.killFirstRun(collector: "tcp", spool: spool, in: directory, program: program)

        let restarted = try RpcgenCollector(.generatedMain, in: directory, program: collector.program)
        defer { restarted.stop() }
        let second = try Self.startAgent(collector: "tcp", spool: spool, duration: "1", extra: ["--program", program], in: directory)
        #expect(try second.waitForExit(timeout: .seconds(60)) == .exited(0), "\(second.stdout)\n\(second.stderr)")
        let secondBoot = try #require(Self.bootID(of: second))

        let delivered = restarted.sequences(boot: firstBoot)
        let last = delivered.max() ?? 0
        #expect(Set(delivered) == Set(1...last) && delivered.count == Int(last), "the killed run's events, once each")
        let ends = restarted.bootEnds
        let unclean = ends.filter { $0.boot == firstBoot }
        #expect(unclean.count >= 1 && unclean.allSatisfy { $0.ending == "unclean" && $0.last == last && $0.reportedBy == secondBoot },
                "\(ends)")
        let clean = ends.filter { $0.boot == secondBoot }
        let acknowledged = number(after: "acknowledged", in: second.stdout) ?? 0
        #expect(clean.count == 1 && clean.first?.ending == "clean" && clean.first?.last == acknowledged, "\(ends)")
    }

    @Test("how runs ended waits in the spool while the agent speaks version 2 (--highest-version 2), and reaches the collector once it speaks version 3")
    func bootEndsWaitForVersion3() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool-agent")
        defer { directory.remove() }
        let spool = directory.file("agent-spool")
        let socketPath = directory.file("collector.sock")
        let (killedBoot, _) = try Self.killFirstRun(collector: "unix://\(socketPath)", spool: spool, in: directory)

        // Run two, limited to version 2: it delivers the killed run's events, stops cleanly; nobody hears how either ended.
        let daemon = try StartedCollector(in: directory, extra: ["--unix-socket", socketPath, "--fsync", "never"])
        defer { daemon.stop() }
        let second = try Self.startAgent(collector: "unix://\(socketPath)", spool: spool, duration: "0.5",
                                         extra: ["--highest-version", "2"], in: directory)
        #expect(try second.waitForExit(timeout: .seconds(60)) == .exited(0), "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("collector v2"), "\(second.stdout)")
        let secondBoot = try #require(Self.bootID(of: second))
        let afterSecond = try daemon.outputLines()
        let killedLast = BootOutput(lines: afterSecond, bootID: killedBoot).sequences.max() ?? 0
        let secondLast = try #require(number(after: "acknowledged", in: second.stdout))
        #expect(killedLast > 0)
        #expect(!afterSecond.contains { $0["type"] as? String == "boot_end" }, "version 2 carries no boot ends")
        #expect(FileSystem.readText(spool + "/boot-ends")?.contains(killedBoot) == true, "the killed run's end is written down")

        // Run three, version 3 (the default): it reports both ends, and its own.
        let third = try Self.startAgent(collector: "unix://\(socketPath)", spool: spool, duration: "0.5", in: directory)
        #expect(try third.waitForExit(timeout: .seconds(60)) == .exited(0), "\(third.stdout)\n\(third.stderr)")
        #expect(third.stdout.contains("collector v3"), "\(third.stdout)")
        let thirdBoot = try #require(Self.bootID(of: third))
        let lines = try daemon.outputLines()
        let killed = BootOutput(lines: lines, bootID: killedBoot).ends
        let secondEnds = BootOutput(lines: lines, bootID: secondBoot).ends
        let thirdEnds = BootOutput(lines: lines, bootID: thirdBoot).ends
        #expect(killed.count == 1 && killed.allSatisfy { $0 == ("unclean", killedLast, thirdBoot) }, "\(killed)")
        #expect(secondEnds.count == 1 && secondEnds.allSatisfy { $0 == ("clean", secondLast, thirdBoot) }, "\(secondEnds)")
        #expect(thirdEnds.count == 1 && thirdEnds.first?.ending == "clean", "\(thirdEnds)")
        #expect(FileSystem.readText(spool + "/boot-ends") == nil, "nothing left to report")
    }
}
