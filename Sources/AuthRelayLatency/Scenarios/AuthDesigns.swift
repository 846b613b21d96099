import AuthRelay
import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// The three ways an agent can handle a request that the auth path compares.
public enum AuthDesign: String, Sendable, CaseIterable {
    /// Decide and answer; no telemetry at all: the floor.
    case noTelemetry = "none"
    /// AuthRelay: decide, answer, then hand the event to the EventSender's queue.
    case queued
    /// A synchronous clnt_call to the collector inside the decision, before answering.
    case naive
}

/// One design, ready to take requests; `finish` says what became of the events.
protocol DecisionMaker: AnyObject {
    /// Handles `request` and returns its decision latency in ns (arrival to answer).
    func handle(_ request: AuthRequest) -> UInt64
    /// Stops and counts events the collector acknowledged (delivered) and those it never will (dropped).
    func finish(drainTimeout: Duration) -> (delivered: UInt64, dropped: UInt64)
    /// The AuthPipeline a FanotifySource answers real opens through with this design (`--source fanotify`).
    func answeringPipeline(budget: Duration) -> AuthPipeline
}

/// `none` and `queued`: AuthRelay's own AuthPipeline, without or with an EventSender.
final class PipelineDecisions: DecisionMaker {
    /// Also what `--source fanotify` hands to the FanotifySource.
    let pipeline: AuthPipeline
    private let sender: EventSender?
    private var warmUpEvents: UInt64 = 0

    init(policy: Policy, budget: Duration, sender: EventSender?) {
        var configuration = AuthPipeline.Configuration()
        configuration.budget = budget
        pipeline = AuthPipeline(policy: policy, sender: sender, configuration: configuration)
        self.sender = sender
    }

    /// Connects the sender before the measured requests (as a running agent is),
    /// by delivering one event; false when the collector did not acknowledge it in time.
    func warmUp(timeout: Duration) -> Bool {
        guard let sender else { return true }
        sender.submit(BenchmarkEvent.make(index: 0, sequence: 0))
        let deadline = Timestamps.monotonic() + UInt64(timeout.nanoseconds)
        while sender.stats.acknowledged < 1 {
            if Timestamps.monotonic() >= deadline { return false }
            Time.sleep(nanoseconds: 1_000_000)
        }
        warmUpEvents = 1
        return true
    }

    func handle(_ request: AuthRequest) -> UInt64 {
        pipeline.handle(request) { _ in }.decisionNanoseconds
    }

    func answeringPipeline(budget: Duration) -> AuthPipeline { pipeline }

    func finish(drainTimeout: Duration) -> (delivered: UInt64, dropped: UInt64) {
        guard let sender else { return (0, 0) }
        let report = sender.close(drainTimeout: drainTimeout)
        let stats = report.stats
        // The warm-up event was acknowledged before the measured requests: not one of theirs.
        let delivered = stats.acknowledged - warmUpEvents
        return (delivered, stats.dropped + stats.evicted + stats.rejected + report.undelivered)
    }

    static func sender(endpoint: RPCEndpoint) -> EventSender {
        var logger = Logger(label: "authrelay.latency.sender")
        logger.logLevel = .critical  // failures are the point of some conditions: count them, do not print them
        return EventSender(configuration: EventSender.Configuration(endpoint: endpoint, agentID: "authrelay-latency"), logger: logger)
    }
}

/// The naive agent: the event goes to the collector with a synchronous version 1
/// REPORT_EVENT inside the decision, and the kernel gets its answer only after it.
///
/// `@unchecked Sendable`: used by one thread at a time, the benchmark's, or with
/// `--source fanotify` the answering thread, which is joined before `finish`.
final class NaiveDecisions: DecisionMaker, @unchecked Sendable {
    private let policy: Policy
    private let client: CollectorClient
    private var sequence: UInt64 = 0
    private var delivered: UInt64 = 0
    private var failed: UInt64 = 0

    init(policy: Policy, endpoint: RPCEndpoint, timeout: Duration) {
        self.policy = policy
        client = CollectorClient(endpoint: endpoint, timeout: timeout, connectTimeout: timeout)
    }

    /// Connects before the measured requests (as a running agent is) by reporting one event.
    func warmUp() -> Bool {
        sequence += 1
        return (try? client.report(BenchmarkEvent.make(index: 0, sequence: sequence))) != nil
    }

    func handle(_ request: AuthRequest) -> UInt64 {
        let verdict = policy.decide(executable: request.executablePath, target: request.targetPath)
        report(request, verdict: verdict)
        // Only now does the kernel get its answer.
        let answered = Timestamps.monotonic()
        return answered > request.arrivalNanoseconds ? answered - request.arrivalNanoseconds : 0
    }

    /// The synchronous REPORT_EVENT for one decided request.
    func report(_ request: AuthRequest, verdict: Event.Verdict) {
        sequence += 1
        let event = Event(
            sequence: sequence, timestampNanoseconds: Timestamps.realtime(), kind: request.kind, verdict: verdict,
            pid: request.pid, ppid: request.ppid, uid: request.uid, gid: request.gid,
            executablePath: request.executablePath, targetPath: request.targetPath)
        if let ack = try? client.report(event), ack.status == .ok {
            delivered += 1
        } else {
            failed += 1
        }
    }

    /// An AuthPipeline (no sender) that makes the REPORT_EVENT before it answers: the naive agent on real opens.
    func answeringPipeline(budget: Duration) -> AuthPipeline {
        var configuration = AuthPipeline.Configuration()
        configuration.budget = budget
        configuration.beforeAnswer = { request, verdict in self.report(request, verdict: verdict) }
        return AuthPipeline(policy: policy, sender: nil, configuration: configuration)
    }

    func finish(drainTimeout: Duration) -> (delivered: UInt64, dropped: UInt64) {
        client.disconnect()
        return (delivered, failed)
    }
}
