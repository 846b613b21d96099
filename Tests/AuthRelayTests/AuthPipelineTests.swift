import AuthRelayProtocol
import Logging
import ONCRPC
import Testing
import TestSupport

@testable import AuthRelay

@Suite("AuthPipeline")
struct AuthPipelineTests {
    /// The senders here try to reach a collector.
    init() { TestProcess.prepare() }

    /// A sender whose collector does not exist: submit must still return at once.
    func absentCollectorSender() -> EventSender {
        var configuration = EventSender.Configuration(endpoint: .unix(path: "/nonexistent/authrelay.sock"), agentID: "test")
        configuration.capacity = 64
        configuration.initialBackoff = .milliseconds(10)
        return EventSender(configuration: configuration, logger: Logger(label: "test"))
    }

    @Test("answers before the event is submitted")
    func answersFirst() {
        let sender = absentCollectorSender()
        let pipeline = AuthPipeline(policy: Policy(rules: [.path(prefix: "/secret", verdict: .deny)]), sender: sender)
        var submittedWhenAnswered: UInt64?
        let outcome = pipeline.handle(AuthRequest(kind: .open, pid: 42, executablePath: "/bin/cat", targetPath: "/secret/x")) { verdict in
            #expect(verdict == .deny)
            submittedWhenAnswered = sender.stats.submitted
        }
        #expect(submittedWhenAnswered == 0)
        #expect(outcome.verdict == .deny)
        #expect(outcome.submitted == .queued)
        #expect(sender.stats.submitted == 1)
        let report = sender.close(drainTimeout: .zero)
        #expect(report.undelivered == 1)
        #expect(report.isBalanced)
    }

    @Test("the deadline guard answers with the fail verdict and marks the event", arguments: [Event.Verdict.allow, .deny])
    func deadlineGuard(failVerdict: Event.Verdict) {
        var configuration = AuthPipeline.Configuration()
        configuration.budget = .milliseconds(100)
        configuration.failVerdict = failVerdict
        let pipeline = AuthPipeline(policy: Policy(defaultVerdict: failVerdict == .allow ? .deny : .allow), sender: nil,
                                    configuration: configuration)
        // Arrived 90 ms ago: past 80% of the budget before the decision starts.
        let late = AuthRequest(kind: .exec, pid: 1, executablePath: "/bin/sh", targetPath: "/bin/ls",
                               arrivalNanoseconds: Timestamps.monotonic() - 90_000_000)
        var answered: Event.Verdict?
        let outcome = pipeline.handle(late) { answered = $0 }
        #expect(answered == failVerdict)
        #expect(outcome.forcedByDeadline)
        #expect(outcome.decisionNanoseconds >= 90_000_000)

        let onTime = AuthRequest(kind: .exec, pid: 1, executablePath: "/bin/sh", targetPath: "/bin/ls")
        let normal = pipeline.handle(onTime) { answered = $0 }
        #expect(!normal.forcedByDeadline)
        #expect(answered == (failVerdict == .allow ? .deny : .allow))
    }
}
