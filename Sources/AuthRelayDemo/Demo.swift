import AuthRelay
import AuthRelayAgent
import AuthRelayHarness
import AuthRelayProtocol
import Logging
import ONCRPC
import Synchronization
import SystemSupport

/// `authrelay demo`: the whole path on this machine in about ten seconds.
///
/// Starts authrelayd on temporary sockets (registered with rpcbind when it
/// runs), runs the agent on a temporary directory (fanotify as root, else the
/// synthetic source) with a small policy, makes allowed and denied accesses,
/// stops the collector with SIGSTOP for a few seconds and resumes it, then
/// reports per phase. Everything it started is stopped and removed, except the
/// JSON Lines output, which it names.
package final class Demo {
    package struct Options: Sendable {
        package var healthy: Duration = .seconds(3)
        package var stopped: Duration = .seconds(3)
        package var resumed: Duration = .seconds(2)
        /// Accesses (fanotify) or requests (synthetic) per second.
        package var rate = 40
        /// Use the synthetic source even where fanotify works.
        package var synthetic = false

        package init() {}
    }

    static let stoppedPhase = "collector STOPPED"

    /// A program number of its own, so the demo never replaces a real collector's registration.
    static let program = AuthRelayProgram.program + 1

    private let options: Options
    private let executables: Executables
    private let logger: Logger
    /// One line on stderr per phase, so a person sees the run move.
    private let progress = Progress(label: "authrelay demo")

    package init(options: Options, executables: Executables, logger: Logger) {
        self.options = options
        self.executables = executables
        self.logger = logger
    }

    package func run() throws(DemoError) -> DemoReport {
        let workspace = try DemoWorkspace()
        defer { workspace.removeAllButOutput() }
        var notes: [String] = []

        // 1. The collector.
        var settings = CollectorProgram.Settings()
        settings.program = Self.program
        settings.output = workspace.outputPath
        settings.registerWithRPCBind = RPCBind.localSocketPath != nil
        if !settings.registerWithRPCBind { notes.append("rpcbind is not running: the collector was not registered") }
        let collector: CollectorSupervisor
        do {
            collector = try CollectorSupervisor(program: .authrelayd, executables: executables, transports: [.local], settings: settings)
            try collector.start()
        } catch {
            throw DemoError("cannot start authrelayd: \(error)")
        }
        defer { collector.stop() }
        let endpoint: RPCEndpoint = settings.registerWithRPCBind
            ? .rpcbind(host: "localhost", transport: .local) : (try? collector.endpoint(.local)) ?? .unix(path: "")
        let collectorText = "collector authrelayd pid \(collector.pid ?? 0), program \(Self.program) (0x\(String(Self.program, radix: 16)))"
            + (settings.registerWithRPCBind ? ", found through rpcbind (rpcinfo -T local localhost \(Self.program) 2)" : " on \(endpoint)")

        // 2. The agent: its source, policy and sender.
        var configuration = EventSender.Configuration(endpoint: endpoint, agentID: "authrelay-demo")
        configuration.program = Self.program
        configuration.capacity = 8192
        configuration.callTimeout = .milliseconds(300)
        configuration.initialBackoff = .milliseconds(50)
        configuration.maxBackoff = .milliseconds(500)
        let sender = EventSender(configuration: configuration, logger: logger)

        let isRoot = Processes.effectiveUserID == 0
        let useFanotify = !options.synthetic && isRoot && FanotifySource.probe() == nil
        let source: any AuthSource
        var policy = Policy(rules: [
            .path(prefix: workspace.secretFile, verdict: .deny),
            .path(prefix: workspace.deniedTool, verdict: .deny),
        ])
        let sourceText: String
        if useFanotify {
            do {
                source = try FanotifySource(configuration: .init(paths: [workspace.watched]))
            } catch {
                throw DemoError("cannot watch \(workspace.watched): \(error)")
            }
            sourceText = "fanotify permission events on \(workspace.watched)"
        } else {
            var synthetic = SyntheticSource.Configuration()
            synthetic.rate = Double(options.rate) * 10
            synthetic.duration = nil
            let generator = SyntheticSource(configuration: synthetic)
            policy.rules += generator.policyRules
            source = generator
            sourceText = "synthetic requests at \(options.rate * 10)/s"
            notes.append(isRoot ? "fanotify is not available here: synthetic requests instead" : "not root: synthetic requests instead of fanotify")
        }
        let agentConfiguration = Agent.Configuration(policy: policy)
        let agent = Agent(source: source, sender: sender, configuration: agentConfiguration, logger: logger)
        let senderService = SenderService(sender: sender, drainTimeout: .seconds(10))
        let services = ServiceGroup(services: [senderService, agent], stopSignals: [], logger: logger)
        let agentThread = NamedThread(name: "demo-agent") { services.run() }

        // 3. The phases: healthy, collector stopped, collector resumed.
        var phases: [DemoReport.Phase] = []
        var boundaries: [UInt64] = [Timestamps.realtime()]
        for (name, duration) in [("collector healthy", options.healthy), (Self.stoppedPhase, options.stopped),
                                 ("collector resumed", options.resumed)] {
            progress.note("\(name) for \(duration)")
            if name == Self.stoppedPhase { collector.pause() }
            if name == "collector resumed" { collector.resume() }
            phases.append(exercise(name, for: duration, workspace: workspace, realAccesses: useFanotify))
            boundaries.append(Timestamps.realtime())
        }

        progress.note("stopping the agent and draining its sender")
        services.requestStop()
        agentThread.join()
        let agentSummary = agent.summary(sender: senderService.report)

        let stats = try? CollectorClient(endpoint: endpoint, program: Self.program, timeout: .seconds(2)).stats()
        collector.stop()
        let outputEvents = DemoOutput.read(workspace.outputPath, into: &phases, boundaries: boundaries)
        return DemoReport(source: sourceText, collector: collectorText, phases: phases, agent: agentSummary,
                          collectorStats: stats, outputPath: workspace.outputPath, outputEvents: outputEvents,
                          budgetNanoseconds: UInt64(agentConfiguration.pipeline.budget.nanoseconds), notes: notes)
    }

    /// Accesses at `options.rate` for `duration`: mostly allowed reads, some denied
    /// reads, allowed and denied execs. With the synthetic source it only waits.
    private func exercise(_ name: String, for duration: Duration, workspace: DemoWorkspace, realAccesses: Bool) -> DemoReport.Phase {
        var phase = DemoReport.Phase(name: name)
        let end = Timestamps.monotonic() + UInt64(duration.nanoseconds)
        let interval = 1_000_000_000 / UInt64(max(options.rate, 1))
        var next = Timestamps.monotonic()
        var index = 0
        while Timestamps.monotonic() < end {
            if realAccesses {
                let arguments: [String]
                switch index % 10 {
                case 6, 7: arguments = ["/bin/cat", workspace.secretFile]
                case 8: arguments = [workspace.allowedTool]
                case 9: arguments = [workspace.deniedTool]
                default: arguments = ["/bin/cat", workspace.reportFile(index % 5)]
                }
                let start = Timestamps.monotonic()
                let outcome = Accessor.run(arguments)
                phase.slowestAccess = max(phase.slowestAccess, Timestamps.monotonic() - start)
                phase.accesses += 1
                if outcome == .allowed { phase.allowed += 1 } else { phase.denied += 1 }
            }
            index += 1
            next += interval
            let now = Timestamps.monotonic()
            if next > now { SystemClock.sleep(.nanoseconds(Int64(next - now))) }
        }
        return phase
    }
}

/// Why the demo could not run: the harness's error, since most failures are
/// of a collector, a child or a file it set up.
package typealias DemoError = HarnessError
