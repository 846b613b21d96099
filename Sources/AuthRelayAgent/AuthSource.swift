import AuthRelay

/// Where authorization questions come from: the kernel (fanotify) or a generator.
///
/// `run` is the answering loop. It runs on the agent's answering thread and,
/// for each request, calls `pipeline.handle` (the agent's AuthPipeline decides,
/// answers, then submits to the sender; a benchmark may pass another
/// AuthRequestHandler) and records the outcome in `stats`. It returns when
/// `stop` is signalled; a source that runs out (a synthetic run's duration)
/// signals `stop` itself. It must never log, never block on anything but its
/// own descriptor and `stop`, and count what fails in `problems`.
public protocol AuthSource: AnyObject, Sendable {
    /// "fanotify" or "synthetic", for logs and the summary.
    var name: String { get }
    var problems: SourceProblems { get }
    func run(pipeline: any AuthRequestHandler, stats: DecisionStats, stop: StopSignal)
    /// Releases the source once `run` has returned (fanotify: the kernel then
    /// allows whatever was still pending).
    func close()
}
