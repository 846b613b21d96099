import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Logging
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// The EventSender against real collectors that misbehave: stopped, killed and
/// restarted, absent at start, or speaking only version 1. In every case the
/// invariant holds: submitted = acknowledged + dropped + evicted + rejected + undelivered.
@Suite("EventSender faults", .serialized)
struct SenderFaultTests {
    init() { TestProcess.prepare() }

    static func sender(_ endpoint: RPCEndpoint, capacity: Int = 4096, agent: String = "fault-test") -> EventSender {
        var configuration = EventSender.Configuration(endpoint: endpoint, agentID: agent)
        configuration.capacity = capacity
        configuration.callTimeout = .milliseconds(500)
        configuration.connectTimeout = .milliseconds(500)
        configuration.initialBackoff = .milliseconds(20)
        configuration.maxBackoff = .milliseconds(200)
        var logger = Logger(label: "sender-test")
        logger.logLevel = .error
        return EventSender(configuration: configuration, logger: logger)
    }

    static func event(_ index: Int) -> Event {
        Event(timestampNanoseconds: Timestamps.realtime(), kind: .open, verdict: index % 5 == 0 ? .deny : .allow,
              decisionNanoseconds: 800, pid: 1000 + Int32(index % 100), ppid: 1, uid: 1000, gid: 1000,
              executablePath: "/usr/bin/cat", targetPath: "/srv/data/file-\(index)")
    }

    /// Output sequences of one agent's events, and whether any repeats.
    static func delivered(_ daemon: StartedCollector, bootID: String) throws -> (sequences: Set<UInt64>, repeated: Int) {
        let events = try daemon.outputLines().filter {
            $0["type"] as? String == "event" && $0["boot_id"] as? String == bootID
        }
        let sequences = events.compactMap { ($0["seq"] as? NSNumber)?.uint64Value }
        return (Set(sequences), sequences.count - Set(sequences).count)
    }

    @Test("a SIGSTOPped collector never slows submit; drops are exact; delivery resumes after SIGCONT")
    func stoppedCollector() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let sender = Self.sender(daemon.unix)

        for index in 0..<1000 { sender.submit(Self.event(index)) }
        #expect(eventually(timeout: .seconds(20)) { sender.stats.acknowledged == 1000 })

        daemon.process.signal(SIGSTOP)
        var queued = 0
        var dropped = 0
        var slowest: UInt64 = 0
        for index in 0..<100_000 {
            let event = Self.event(1000 + index)
            let start = Timestamps.monotonic()
            let result = sender.submit(event)
            slowest = max(slowest, Timestamps.monotonic() - start)
            if result == .queued { queued += 1 } else { dropped += 1 }
        }
        let whileStopped = sender.stats
        print("stopped collector: 100000 submits, \(queued) queued, \(dropped) dropped, slowest submit \(slowest) ns")
        #expect(queued + dropped == 100_000)
        #expect(whileStopped.dropped == UInt64(dropped))
        #expect(dropped > 0, "a 4096-event queue must overflow while the collector is stopped")
        // A submit that waited for the collector would take at least the 500 ms call timeout.
        #expect(slowest < 100_000_000)

        daemon.process.signal(SIGCONT)
        let report = sender.close(drainTimeout: .seconds(30))
        #expect(report.isBalanced)
        #expect(report.undelivered == 0)
        #expect(report.stats.acknowledged == UInt64(1000 + queued))

        let output = try Self.delivered(daemon, bootID: sender.configuration.bootID)
        #expect(output.repeated == 0)
        #expect(output.sequences == Set(1...report.stats.acknowledged))
        let stats = try CollectorClient(endpoint: daemon.unix).stats()
        #expect(stats.reportedDropped == UInt64(dropped))
    }

    @Test("a collector killed and restarted mid-stream writes nothing twice and loses nothing unaccounted")
    func killedAndRestarted() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var daemon = try StartedCollector(in: directory, extra: ["--fsync", "batch"])
        defer { daemon.stop() }  // the one running at the end, also when a try below throws
        let socketPath = daemon.socketPath
        let sender = Self.sender(daemon.unix, capacity: 65_536)

        for index in 0..<30_000 {
            sender.submit(Self.event(index))
            if index % 1000 == 999 { SystemClock.sleep(.milliseconds(20)) }  // a steady stream, about 1.5 s long
            if index == 10_000 {
                daemon.process.signal(SIGKILL)
                try daemon.process.waitForExit(timeout: .seconds(5))
            }
            if index == 15_000 {
                daemon = try StartedCollector(in: directory, dataDirectory: daemon.dataDirectory, output: daemon.outputPath,
                                             extra: ["--fsync", "batch", "--unix-socket", socketPath])
            }
        }
        let report = sender.close(drainTimeout: .seconds(30))
        #expect(report.isBalanced)
        #expect(report.undelivered == 0)
        #expect(report.stats.reconnects >= 1)

        let output = try Self.delivered(daemon, bootID: sender.configuration.bootID)
        #expect(output.repeated == 0, "a resent batch was written twice")
        // Sequence numbers are given to events as they leave the queue: every
        // numbered event must be in the output, and the rest were counted as drops.
        #expect(output.sequences == Set(1...report.stats.acknowledged))
        #expect(report.stats.acknowledged + report.stats.dropped == 30_000)
    }

    @Test("a collector absent at start is waited for; submit is unaffected")
    func absentAtStart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socketPath = directory.file("later.sock")
        let sender = Self.sender(.unix(path: socketPath))
        var slowest: UInt64 = 0
        for index in 0..<500 {
            let start = Timestamps.monotonic()
            #expect(sender.submit(Self.event(index)) == .queued)
            slowest = max(slowest, Timestamps.monotonic() - start)
        }
        #expect(slowest < 100_000_000)
        // The sender has tried the absent socket and failed (and is backing off now).
        #expect(eventually(timeout: .seconds(5)) { sender.stats.lastError != nil },
                "no connection attempt failed: \(sender.stats)")
        #expect(sender.stats.acknowledged == 0)

        let daemon = try StartedCollector(in: directory, extra: ["--unix-socket", socketPath])
        defer { daemon.stop() }
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced)
        #expect(report.stats.acknowledged == 500)
        #expect(try Self.delivered(daemon, bootID: sender.configuration.bootID).sequences == Set(1...500))
    }

    @Test("against a version 1 legacy collector, one call per event, every event in order")
    func legacyCollector() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socketPath = directory.file("legacy.sock")
        let outputPath = directory.file("legacy.out")
        let collector = try ChildProcess(BuiltPrograms.path("legacy-collector"), ["-n", "-t", "unix", "-s", socketPath, "-o", outputPath],
                                         outputIn: directory)
        defer { collector.stop() }
        try collector.waitFor("ready")

        let sender = Self.sender(.unix(path: socketPath))
        for index in 0..<300 { sender.submit(Self.event(index)) }
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced)
        #expect(report.stats.acknowledged == 300)
        #expect(report.stats.collectorVersion == .v1)

        let lines = try #require(FileSystem.readText(outputPath)).split(separator: "\n")
        let sequences = lines.compactMap { line in
            line.split(separator: "\t").first { $0.hasPrefix("seq=") }.flatMap { UInt64($0.dropFirst(4)) }
        }
        #expect(sequences == Array(1...300))
        #expect(lines.first?.contains("target_path=/srv/data/file-0") == true)
    }

    @Test("forced version 1 speaks one call per event even to a version 2 collector")
    func forcedVersion1() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socketPath = directory.file("legacy2.sock")
        let outputPath = directory.file("legacy2.out")
        let collector = try ChildProcess(BuiltPrograms.path("legacy-collector"), ["-n", "-2", "-t", "unix", "-s", socketPath, "-o", outputPath],
                                         outputIn: directory)
        defer { collector.stop() }
        try collector.waitFor("ready")

        var configuration = EventSender.Configuration(endpoint: .unix(path: socketPath), agentID: "forced-v1")
        configuration.highestVersion = .v1
        let sender = EventSender(configuration: configuration, logger: Logger(label: "test"))
        for index in 0..<100 { sender.submit(Self.event(index)) }
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced)
        #expect(report.stats.acknowledged == 100)
        #expect(report.stats.collectorVersion == .v1)
        // legacy-collector writes a line per version 1 event only.
        let lines = try #require(FileSystem.readText(outputPath)).split(separator: "\n")
        #expect(lines.count == 100)
    }

    @Test("over UDP, batches are cut to fit a datagram")
    func udpBatchesFit() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let sender = Self.sender(daemon.udp)
        let longPath = "/srv/data/" + String(repeating: "p", count: 180)
        for index in 0..<600 {
            var event = Self.event(index)
            event.targetPath = longPath + "/\(index)"
            sender.submit(event)
        }
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced)
        #expect(report.stats.acknowledged == 600, "\(report.stats.lastError ?? "")")
    }

    @Test("drop-oldest evicts the oldest queued events, counts them, and keeps the numbering contiguous")
    func dropOldest() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        var configuration = EventSender.Configuration(endpoint: daemon.unix, agentID: "drop-oldest")
        configuration.capacity = 64
        configuration.overflow = .dropOldest
        configuration.callTimeout = .milliseconds(300)
        configuration.initialBackoff = .milliseconds(20)
        configuration.maxBackoff = .milliseconds(100)
        let sender = EventSender(configuration: configuration, logger: Logger(label: "test"))
        daemon.process.signal(SIGSTOP)
        var results: [EventSender.SubmitResult] = []
        for index in 0..<1000 { results.append(sender.submit(Self.event(index))) }
        #expect(results.allSatisfy { $0 == .queued }, "a single producer always makes room under drop-oldest")
        daemon.process.signal(SIGCONT)
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced)
        #expect(report.stats.evicted > 0)
        #expect(report.stats.acknowledged + report.stats.evicted == 1000)
        let output = try Self.delivered(daemon, bootID: sender.configuration.bootID)
        #expect(output.sequences == Set(1...report.stats.acknowledged))
        // The events that survived are the newest: the last one submitted is among them.
        let targets = try daemon.outputLines().compactMap { $0["target_path"] as? String }
        #expect(targets.contains("/srv/data/file-999"))
    }

    @Test("close racing two producers keeps the accounting exact")
    func closeRacingSubmits() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let sender = Self.sender(daemon.unix, capacity: 1024)
        let producers = ThreadGroup()
        for producer in 0..<2 {
            producers.start(name: "producer-\(producer)") {
                for index in 0..<200_000 {
                    if sender.submit(Self.event(index)) == .dropped && sender.stats.refusedAfterClose > 0 { return }
                }
            }
        }
        SystemClock.sleep(.milliseconds(20))
        let report = sender.close(drainTimeout: .seconds(10))
        producers.joinAll()
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0)
    }

    @Test("an agent id over the protocol's bound is refused before anything is sent")
    func invalidAgentID() {
        let configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent"), agentID: String(repeating: "a", count: 65))
        #expect(throws: EventError.self) { try configuration.validate() }
    }
}
