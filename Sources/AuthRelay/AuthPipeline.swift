import AuthRelayProtocol
import SystemSupport

/// One authorization question, as an auth source (fanotify, synthetic) asks it.
public struct AuthRequest: Sendable, Equatable {
    public var kind: Event.Kind
    public var pid: Int32
    public var ppid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var executablePath: String
    public var targetPath: String
    /// CLOCK_MONOTONIC ns when the request reached the agent: the budget runs from here.
    public var arrivalNanoseconds: UInt64

    public init(
        kind: Event.Kind, pid: Int32, ppid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0,
        executablePath: String, targetPath: String, arrivalNanoseconds: UInt64 = Timestamps.monotonic()
    ) {
        self.kind = kind
        self.pid = pid
        self.ppid = ppid
        self.uid = uid
        self.gid = gid
        self.executablePath = executablePath
        self.targetPath = targetPath
        self.arrivalNanoseconds = arrivalNanoseconds
    }
}

/// What one answered request came to.
public struct AuthOutcome: Sendable, Equatable {
    public var verdict: Event.Verdict
    /// The deadline guard answered instead of the policy.
    public var forcedByDeadline: Bool
    /// From arrival to the responder's return, in nanoseconds.
    public var decisionNanoseconds: UInt64
    /// nil without a sender.
    public var submitted: EventSender.SubmitResult?

    public init(verdict: Event.Verdict, forcedByDeadline: Bool, decisionNanoseconds: UInt64,
                submitted: EventSender.SubmitResult? = nil) {
        self.verdict = verdict
        self.forcedByDeadline = forcedByDeadline
        self.decisionNanoseconds = decisionNanoseconds
        self.submitted = submitted
    }
}

/// What an auth source hands each request to: it decides, calls `respond`
/// exactly once with the verdict (the kernel's answer), and returns what it
/// did. `AuthPipeline` is the agent's; a benchmark brings its own designs
/// (`authrelay latency authpath`'s naive one reports before it answers).
public protocol AuthRequestHandler: Sendable {
    @discardableResult
    func handle(_ request: AuthRequest, respond: (Event.Verdict) -> Void) -> AuthOutcome
}

/// Decides, answers, then reports: the order that keeps telemetry out of the decision.
///
/// `handle` evaluates the in-memory policy (no I/O), calls the responder (the
/// kernel's answer) first, and only then builds the event and submits it to the
/// sender, which never blocks. A deadline guard answers with the configured
/// fail verdict when a request has already used most of its budget before the
/// decision starts (it waited in the kernel's or the agent's queue), as Santa
/// answers at 80% of the Endpoint Security deadline.
public final class AuthPipeline: AuthRequestHandler {
    public struct Configuration: Sendable {
        /// The answer must be given within this; Endpoint Security's guidance is well under 100 ms.
        public var budget: Duration = .milliseconds(100)
        /// The guard answers once this share of the budget is gone.
        public var guardFraction: Double = 0.8
        /// What the guard answers: allow (fail open) or deny (fail closed).
        public var failVerdict: Event.Verdict = .allow

        public init() {}
    }

    public let policy: Policy
    public let configuration: Configuration
    private let sender: EventSender?
    private let guardNanoseconds: UInt64

    /// `sender` nil: decide and answer with no telemetry.
    public init(policy: Policy, sender: EventSender?, configuration: Configuration = Configuration()) {
        self.policy = policy
        self.sender = sender
        self.configuration = configuration
        guardNanoseconds = UInt64(Double(max(configuration.budget.nanoseconds, 0)) * configuration.guardFraction)
    }

    /// What one `handle` did.
    public typealias Outcome = AuthOutcome

    /// Decides `request`, calls `respond` exactly once with the verdict, then submits the event.
    @discardableResult
    public func handle(_ request: AuthRequest, respond: (Event.Verdict) -> Void) -> Outcome {
        let start = Timestamps.monotonic()
        let waited = start > request.arrivalNanoseconds ? start - request.arrivalNanoseconds : 0
        let forced = waited >= guardNanoseconds
        let verdict = forced
            ? configuration.failVerdict
            : policy.decide(executable: request.executablePath, target: request.targetPath)
        respond(verdict)
        let answered = Timestamps.monotonic()
        let decision = answered > request.arrivalNanoseconds ? answered - request.arrivalNanoseconds : 0

        var submitted: EventSender.SubmitResult?
        if let sender {
            let event = Event(
                timestampNanoseconds: Timestamps.realtime() - (answered - min(answered, request.arrivalNanoseconds)),
                kind: request.kind, verdict: verdict, decisionNanoseconds: decision,
                pid: request.pid, ppid: request.ppid, uid: request.uid, gid: request.gid,
                flags: forced ? .deadline : [],
                executablePath: request.executablePath, targetPath: request.targetPath)
            submitted = sender.submit(event)
        }
        return Outcome(verdict: verdict, forcedByDeadline: forced, decisionNanoseconds: decision, submitted: submitted)
    }
}
