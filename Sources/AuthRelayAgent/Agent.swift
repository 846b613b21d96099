import AuthRelay
import Logging

/// Wires an auth source to the pipeline and the sender, and runs them.
///
/// Threads: the answering thread runs the source's loop (decide, answer,
/// submit); the sender's own thread ships events; the thread that calls
/// `run()` supervises: it sleeps on the stop signal, logs each kind of source
/// failure once, and on stop joins the answering thread, closes the source
/// and drains the sender.
public final class Agent: Sendable {
    public struct Configuration: Sendable {
        public var policy: Policy
        public var pipeline = AuthPipeline.Configuration()
        /// How long the sender may take to deliver what is queued at stop.
        public var drainTimeout: Duration = .seconds(5)
        /// How often the supervisor looks for new source failures to log.
        public var problemCheckInterval: Duration = .seconds(1)

        public init(policy: Policy) {
            self.policy = policy
        }
    }

    public let source: any AuthSource
    public let configuration: Configuration
    /// Signal it (or route SIGTERM/SIGINT to it) to stop `run()`.
    public let stop = StopSignal()
    private let sender: EventSender?
    private let pipeline: AuthPipeline
    private let logger: Logger

    /// `sender` nil: decide and answer with no telemetry. The agent closes the sender when it stops.
    public init(source: any AuthSource, sender: EventSender?, configuration: Configuration, logger: Logger) {
        self.source = source
        self.sender = sender
        self.configuration = configuration
        self.logger = logger
        pipeline = AuthPipeline(policy: configuration.policy, sender: sender, configuration: configuration.pipeline)
    }

    /// Asks `run()` to stop; safe from any thread.
    public func requestStop() {
        stop.signal()
    }

    /// Runs until stopped (or until the source runs out), then drains the sender and returns what happened.
    /// Once per agent: the stop signal stays set.
    public func run() -> Summary {
        let stats = DecisionStats()
        let source = self.source
        let pipeline = self.pipeline
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
        logger.info("agent stopping; draining the sender", metadata: ["drain_timeout": "\(configuration.drainTimeout)"])
        let shutdown = sender?.close(drainTimeout: configuration.drainTimeout)
        return Summary(source: source.name, stats: stats, problems: source.problems, sender: shutdown)
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
