import AuthRelay
import AuthRelayProtocol
import Glibc  // EMFILE
import Logging
import Testing
import TestSupport

@testable import AuthRelayAgent

@Suite("Agent summary")
struct AgentSummaryTests {
    init() { TestProcess.prepare() }

    static func stats(allowed: Int, denied: Int, ownProcess: Int) -> DecisionStats {
        let pipeline = AuthPipeline(policy: Policy(rules: [.path(prefix: "/secret", verdict: .deny)]), sender: nil)
        let stats = DecisionStats()
        for index in 0..<(allowed + denied) {
            let target = index < denied ? "/secret/\(index)" : "/public/\(index)"
            stats.record(pipeline.handle(AuthRequest(kind: .open, pid: 1, executablePath: "/bin/cat", targetPath: target)) { _ in })
        }
        for _ in 0..<ownProcess { stats.recordOwnProcess() }
        return stats
    }

    @Test("without a collector and without problems")
    func plain() {
        var summary = Agent.Summary(source: "synthetic", stats: Self.stats(allowed: 2, denied: 1, ownProcess: 4),
                                    problems: SourceProblems(), sender: nil)
        summary.latencyP50 = 1500
        summary.latencyP99 = 123_456
        summary.latencyMax = 2_000_000
        #expect(summary.description == """
            decisions 3: allowed 2, denied 1, forced by deadline 0, own process allowed 4
            decision latency: p50 1.5 us, p99 123.5 us, max 2000.0 us
            events: no collector
            problems: none
            """)
        #expect(!summary.sourceFailed)
    }

    @Test("with the sender's report and the source's problems")
    func withSenderAndProblems() {
        var configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent/authrelay.sock"), agentID: "summary")
        configuration.initialBackoff = .milliseconds(10)
        let sender = EventSender(configuration: configuration, logger: quietLogger)
        sender.submit(Sample.event())
        sender.submit(Sample.event())
        let report = sender.close(drainTimeout: .zero)

        let problems = SourceProblems()
        problems.readFailed.note(errno: EMFILE)
        problems.queueOverflow.note()
        problems.queueOverflow.note()
        let summary = Agent.Summary(source: "fanotify", stats: Self.stats(allowed: 1, denied: 0, ownProcess: 0),
                                    problems: problems, sender: report)
        let lines = summary.description.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[2] == "events submitted 2, acknowledged 0, dropped 0, rejected 0, undelivered 2, collector never reached")
        #expect(lines[3] == "problems: events that could not be read: 1 (last: Too many open files); kernel queue overflows: 2; events not delivered: 2")
        #expect(summary.problems.count == 3)
        #expect(!summary.sourceFailed, "only a stopped source is a failure")

        problems.sourceStopped.note()
        #expect(Agent.Summary(source: "fanotify", stats: DecisionStats(), problems: problems, sender: nil).sourceFailed)
    }

    @Test("the problems line is never \"none\" beside drops, losses, refusals, undelivered events or sink errors")
    func senderProblems() {
        let sender = EventSender(configuration: EventSender.Configuration(endpoint: .unix(path: "/nonexistent/authrelay.sock"),
                                                                          agentID: "summary"), logger: quietLogger)
        let clean = sender.close(drainTimeout: .zero)
        #expect(clean.problems.isEmpty)
        let plain = Agent.Summary(source: "synthetic", stats: DecisionStats(), problems: SourceProblems(), sender: clean)
        #expect(plain.description.hasSuffix("problems: none"), "\(plain.description)")

        let cases: [(String, (inout ShutdownReport) -> Void)] = [
            ("events dropped (memory queue full): 24576", { $0.stats.dropped = 24_000; $0.stats.evicted = 576 }),
            ("events evicted from a full spool: 7", { $0.stats.spoolEvicted = 7 }),
            ("events lost to a damaged spool: 3", { $0.stats.spoolCorrupt = 3 }),
            ("events the collector refused: 2", { $0.stats.rejected = 2 }),
            ("events not delivered: 5 (4 left in the spool for the next run)", { $0.undelivered = 5; $0.leftInSpool = 4 }),
            ("collector sink errors (it could not store events; they were sent again): 9 in 2 episodes",
             { $0.stats.sinkErrors = 9; $0.stats.sinkErrorEpisodes = 2 }),
        ]
        for (expected, change) in cases {
            var report = clean
            change(&report)
            let summary = Agent.Summary(source: "synthetic", stats: DecisionStats(), problems: SourceProblems(), sender: report)
            let last = summary.description.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last == "problems: " + expected, "\(summary.description)")
        }
    }
}
