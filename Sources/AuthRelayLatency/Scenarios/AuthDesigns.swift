import AuthRelay
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// The three ways an agent can handle a request that the auth path compares.
enum AuthDesign: String, Sendable, CaseIterable {
    /// Decide and answer; no telemetry at all: the floor.
    case noTelemetry = "none"
    /// AuthRelay: decide, answer, then hand the event to the EventSender's queue.
    case queued
    /// A synchronous clnt_call to the collector inside the decision, before answering.
    case naive
}

/// One design, ready to take requests; `finish` says what became of the events.
protocol DecisionMaker: AnyObject {
    /// What decides and answers each request: the synthetic loop calls it
    /// directly, `--source fanotify` hands it to a FanotifySource.
    var handler: any AuthRequestHandler { get }
    /// Stops and counts events the collector acknowledged (delivered) and those it never will (dropped).
    func finish(drainTimeout: Duration) -> (delivered: UInt64, dropped: UInt64)
}

extension DecisionMaker {
    /// Handles `request` (nothing to answer) and returns its decision latency in ns (arrival to answer).
    func handle(_ request: AuthRequest) -> UInt64 {
        handler.handle(request) { _ in }.decisionNanoseconds
    }
}

/// `none` and `queued`: AuthRelay's own AuthPipeline, without or with an EventSender.
final class PipelineDecisions: DecisionMaker {
    private let pipeline: AuthPipeline
    private let sender: EventSender?
    private var warmUpEvents: UInt64 = 0

    init(policy: Policy, budget: Duration, sender: EventSender?) {
        var configuration = AuthPipeline.Configuration()
        configuration.budget = budget
        pipeline = AuthPipeline(policy: policy, sender: sender, configuration: configuration)
        self.sender = sender
    }

    var handler: any AuthRequestHandler { pipeline }

    /// Connects the sender before the measured requests (as a running agent is),
    /// by delivering one event.
    func warmUp(endpoint: RPCEndpoint) throws(LatencyError) {
        guard let sender else { return }
        try SenderBenchmark.warmUp(sender, endpoint: endpoint)
        warmUpEvents = 1
    }

    func finish(drainTimeout: Duration) -> (delivered: UInt64, dropped: UInt64) {
        guard let sender else { return (0, 0) }
        let report = sender.close(drainTimeout: drainTimeout)
        let stats = report.stats
        // The warm-up event was acknowledged before the measured requests: not one of theirs.
        let delivered = stats.acknowledged - warmUpEvents
        return (delivered, stats.dropped + stats.evicted + stats.rejected + report.undelivered)
    }
}

/// The naive agent: the event goes to the collector with a synchronous version 1
/// REPORT_EVENT inside the decision, and the kernel gets its answer only after it.
/// No deadline guard and no queue: the policy decides, the call is made, then
/// the answer; the same code for synthetic requests and for real opens.
///
/// `@unchecked Sendable`: used by one thread at a time, the benchmark's, or with
/// `--source fanotify` the answering thread, which is joined before `finish`.
final class NaiveDecisions: DecisionMaker, AuthRequestHandler, @unchecked Sendable {
    private let policy: Policy
    private let client: CollectorClient
    private var sequence: UInt64 = 0
    private var delivered: UInt64 = 0
    private var failed: UInt64 = 0

    init(policy: Policy, endpoint: RPCEndpoint, timeout: Duration) {
        self.policy = policy
        client = CollectorClient(endpoint: endpoint, timeout: timeout, connectTimeout: timeout)
    }

    var handler: any AuthRequestHandler { self }

    /// Connects before the measured requests (as a running agent is) by reporting one event.
    func warmUp() -> Bool {
        sequence += 1
        return (try? client.report(BenchmarkEvent.make(index: 0, sequence: sequence))) != nil
    }

    func handle(_ request: AuthRequest, respond: (Event.Verdict) -> Void) -> AuthOutcome {
        let verdict = policy.decide(executable: request.executablePath, target: request.targetPath)
        report(request, verdict: verdict)
        // Only now does the kernel get its answer.
        respond(verdict)
        let answered = Timestamps.monotonic()
        let decision = answered > request.arrivalNanoseconds ? answered - request.arrivalNanoseconds : 0
        return AuthOutcome(verdict: verdict, forcedByDeadline: false, decisionNanoseconds: decision)
    }

    /// The synchronous REPORT_EVENT for one decided request.
    private func report(_ request: AuthRequest, verdict: Event.Verdict) {
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

    func finish(drainTimeout: Duration) -> (delivered: UInt64, dropped: UInt64) {
        client.disconnect()
        return (delivered, failed)
    }
}
