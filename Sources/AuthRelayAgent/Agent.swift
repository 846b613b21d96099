import AuthRelay
import Logging
import Synchronization
import SystemSupport

/// Wires an auth source to the pipeline and runs it: the agent's service.
///
/// Threads: the answering thread runs the source's loop (decide, answer,
/// submit); the thread that runs the service (`run()`) supervises: it sleeps
/// on the stop signal, logs each kind of source failure once, and on stop
/// joins the answering thread and closes the source. The sender is a service
/// of its own (`SenderService`), started before the agent and stopped after
/// it, so it drains what the agent submitted last.
public final class Agent: Service {
    public struct Configuration: Sendable {
        public var policy: Policy
        public var pipeline = AuthPipeline.Configuration()
        /// How often the supervisor looks for new source failures to log.
        public var problemCheckInterval: Duration = .seconds(1)

        public init(policy: Policy) {
            self.policy = policy
        }
    }

    public let name = "agent"
    public let source: any AuthSource
    public let configuration: Configuration
    /// Signalled to stop `run()`; the source signals it too when it ends.
    public let stop = StopSignal()
    private let pipeline: AuthPipeline
    private let stats = DecisionStats()
    private let logger: Logger

    /// `sender` nil: decide and answer with no telemetry.
    public init(source: any AuthSource, sender: EventSender?, configuration: Configuration, logger: Logger) {
        self.source = source
        self.configuration = configuration
        self.logger = logger
        pipeline = AuthPipeline(policy: configuration.policy, sender: sender, configuration: configuration.pipeline)
    }

    /// Asks `run()` to stop; safe from any thread.
    public func requestStop() {
        stop.signal()
    }

    /// Runs until stopped (or until the source runs out). Once per agent: the stop signal stays set.
    public func run() {
        let source = self.source
        let pipeline = self.pipeline
        let stats = self.stats
        let stop = self.stop
        let answering = NamedThread(name: "authrelay-auth") {
            source.run(pipeline: pipeline, stats: stats, stop: stop)
        }
        logger.info("agent started", metadata: ["source": "\(source.name)"])
        while !stop.wait(timeout: configuration.problemCheckInterval) {
            logNewProblems()
        }
        answering.join()
        source.close()  // fanotify: the kernel allows whatever was still pending
        logNewProblems()
        logger.info("agent stopped answering", metadata: ["decisions": "\(stats.decisions)"])
    }

    /// What the run did, with the sender's report; read it after `run()` returned.
    public func summary(sender: ShutdownReport?) -> Summary {
        Summary(source: source.name, stats: stats, problems: source.problems, sender: sender)
    }

    /// Each kind of failure is logged the first time it is seen; the summary has the totals.
    private func logNewProblems() {
        for problem in source.problems.takeNewReports() {
            logger.error("auth source problem (logged once; the summary has the total)", metadata: [
                "source": "\(source.name)", "problem": "\(problem.description)",
            ])
        }
    }
}

/// An `EventSender` as a service: it runs from the start (the sender has its
/// own thread since its creation) and, asked to stop, delivers what is queued
/// within `drainTimeout` and keeps the shutdown report.
public final class SenderService: Service {
    public let name = "sender"
    public let sender: EventSender
    public let drainTimeout: Duration
    private let stopped = StopSignal()
    private let shutdown = Locked<ShutdownReport?>(nil)

    public init(sender: EventSender, drainTimeout: Duration) {
        self.sender = sender
        self.drainTimeout = drainTimeout
    }

    public func run() {
        while !stopped.wait(timeout: .seconds(3600)) {}
        let report = sender.close(drainTimeout: drainTimeout)
        shutdown.withLock { $0 = report }
    }

    public func requestStop() {
        stopped.signal()
    }

    /// The sender's shutdown report, once `run()` has returned.
    public var report: ShutdownReport? { shutdown.withLock { $0 } }
}
