import AuthRelay
import AuthRelayProtocol
import Glibc  // EMFILE
import Logging
import SystemSupport
import Testing
import TestSupport

@testable import AuthRelayAgent

/// The agent and its sender as services under a ServiceGroup, in this process:
/// no program is started, no signal is routed, every wait is bounded.
@Suite("Agent services")
struct AgentServiceTests {
    init() { TestProcess.prepare() }

    static func synthetic(rate: Double, duration: Duration?) -> SyntheticSource {
        var configuration = SyntheticSource.Configuration()
        configuration.rate = rate
        configuration.duration = duration
        configuration.denyRatio = 0.25
        return SyntheticSource(configuration: configuration)
    }

    static func agent(_ source: SyntheticSource, sender: EventSender?, logger: Logger = quietLogger) -> Agent {
        var configuration = Agent.Configuration(policy: Policy(rules: source.policyRules))
        configuration.problemCheckInterval = .milliseconds(10)
        return Agent(source: source, sender: sender, configuration: configuration, logger: logger)
    }

    /// A sender whose collector does not exist: everything it is given stays undelivered.
    static func absentCollectorSender() -> EventSender {
        var configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent/authrelay.sock"), agentID: "agent-test")
        configuration.initialBackoff = .milliseconds(10)
        return EventSender(configuration: configuration, logger: quietLogger)
    }

    @Test("a synthetic agent without a sender runs until asked to stop, then stops within bounds")
    func stopsWhenAsked() throws {
        let agent = Self.agent(Self.synthetic(rate: 2000, duration: nil), sender: nil)
        let group = ServiceGroup(services: [agent], stopSignals: [], logger: quietLogger)
        let started = SystemClock.monotonicNanoseconds()
        let reason = runBounded(group, stopAfter: .milliseconds(300))
        #expect(reason == .requested)
        #expect(SystemClock.monotonicNanoseconds() - started < 5_000_000_000, "stopping took over 5 s")

        let summary = agent.summary(sender: nil)
        #expect(summary.source == "synthetic")
        #expect(summary.decisions > 100, "\(summary)")
        #expect(summary.allowed + summary.denied == summary.decisions)
        // The deny share is exact (an accumulator): a quarter, up to one request.
        #expect(summary.denied == summary.decisions / 4 || summary.denied == (summary.decisions + 3) / 4, "\(summary)")
        #expect(summary.problems.isEmpty)
        #expect(summary.description.contains("events: no collector"))
    }

    @Test("a source that runs out stops the group, and the sender, stopped last, saw every submit")
    func sourceEndsAndSenderDrainsLast() throws {
        let sender = Self.absentCollectorSender()
        let senderService = SenderService(sender: sender, drainTimeout: .milliseconds(50))
        let agent = Self.agent(Self.synthetic(rate: 1000, duration: .milliseconds(200)), sender: sender)
        let group = ServiceGroup(services: [senderService, agent], stopSignals: [], logger: quietLogger)
        #expect(runBounded(group, stopAfter: nil) == .serviceEnded("agent"))

        let report = try #require(senderService.report, "the sender service kept no report")
        let summary = agent.summary(sender: report)
        #expect(summary.decisions > 0)
        #expect(report.stats.submitted == summary.decisions, "the sender stopped before the agent's last submit")
        #expect(report.undelivered == summary.decisions)
        #expect(report.isBalanced)
        #expect(sender.stats.state == .closed)
    }

    @Test("SenderService: no report while it runs; asked to stop, it closes the sender within its drain")
    func senderService() throws {
        let sender = Self.absentCollectorSender()
        for sequence in UInt64(1)...5 { sender.submit(Sample.event(sequence: sequence)) }
        let service = SenderService(sender: sender, drainTimeout: .milliseconds(50))
        #expect(service.name == "sender")
        let finished = Outcome<Bool>()
        let thread = NamedThread(name: "test-sender") {
            service.run()
            finished.finish(true)
        }
        #expect(!finished.wait(timeout: .milliseconds(100)), "run() returned before it was asked to stop")
        #expect(service.report == nil)
        service.requestStop()
        service.requestStop()  // any number of times
        guard finished.wait(timeout: .seconds(10)) else {
            Issue.record("SenderService.run() did not return within 10 s of requestStop()")
            thread.detach()
            return
        }
        thread.join()
        let report = try #require(service.report)
        #expect(report.stats.submitted == 5)
        #expect(report.undelivered == 5)
        #expect(report.isBalanced)
        #expect(sender.submit(Sample.event()) == .dropped, "a closed sender refuses events")
    }

    /// A source that fails the same way again and again, then waits for its stop.
    final class FailingSource: AuthSource {
        let name = "failing"
        let problems = SourceProblems()

        func run(pipeline: any AuthRequestHandler, stats: DecisionStats, stop: StopSignal) {
            for _ in 0..<3 { problems.readFailed.note(errno: EMFILE) }
            stop.wait(timeout: .milliseconds(100))  // several supervisor checks
            for _ in 0..<3 { problems.readFailed.note(errno: EMFILE) }
            problems.queueOverflow.note()
            stop.wait(timeout: .seconds(30))
        }

        func close() {}
    }

    @Test("each kind of source problem is logged once; the summary has the totals")
    func problemsLoggedOnce() throws {
        let recorder = LogRecorder()
        let source = FailingSource()
        var configuration = Agent.Configuration(policy: Policy())
        configuration.problemCheckInterval = .milliseconds(10)
        let agent = Agent(source: source, sender: nil, configuration: configuration, logger: recorder.logger())
        let group = ServiceGroup(services: [agent], stopSignals: [], logger: recorder.logger())
        #expect(runBounded(group, stopAfter: .milliseconds(400)) == .requested)

        let logged = recorder.lines.filter { $0.contains("auth source problem") }
        #expect(logged.count == 2, "\(recorder.lines)")
        #expect(logged.filter { $0.contains("events that could not be read") }.count == 1)
        #expect(logged.filter { $0.contains("kernel queue overflows") }.count == 1)
        #expect(logged.allSatisfy { $0.hasPrefix("error ") && $0.contains("source=failing") })
        let summary = agent.summary(sender: nil)
        #expect(summary.problems == ["events that could not be read: 6 (last: Too many open files)", "kernel queue overflows: 1"])
    }
}
