import ArgumentParser
import AuthRelay
import AuthRelayAgent
import AuthRelayCLI
import AuthRelayProtocol
import Glibc
import SystemSupport
import Logging
import ONCRPC

/// `authrelay agent`: answers fanotify permission events (or synthetic
/// requests) with a policy, and reports each decision to a collector.
/// Flags only: everything else is in AuthRelayAgent.
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Answer file open and exec permission requests with a policy and report them to a collector.",
        discussion: """
            With --source fanotify (the default) it needs root. --watch DIR covers the directory \
            and its direct children; --mount covers the whole mount holding each --watch path. \
            On SIGTERM or SIGINT it stops answering (the kernel allows what is pending), \
            delivers what is queued and prints a summary.
            """)

    enum SourceKind: String, ExpressibleByArgument, CaseIterable {
        case fanotify, synthetic
    }

    enum FailMode: EnumerableFlag {
        case failOpen, failClosed

        static func help(for value: FailMode) -> ArgumentHelp? {
            value == .failOpen
                ? "A request that used up 80% of its budget before the decision is allowed."
                : "A request that used up 80% of its budget before the decision is denied."
        }
    }

    @Option(name: .customLong("watch"), help: ArgumentHelp("A directory or file to watch (repeatable).", valueName: "path"))
    var watchPaths: [String] = []

    @Flag(help: "Watch the whole mount holding each --watch path (FAN_MARK_MOUNT).")
    var mount = false

    @Option(help: ArgumentHelp("A policy file (default allow|deny, allow|deny path PREFIX, allow|deny exe PATH).", valueName: "file"))
    var policy: String?

    @Option(name: .customLong("deny"), help: ArgumentHelp("Deny paths under this prefix (repeatable; added to --policy's rules).", valueName: "prefix"))
    var denyPrefixes: [String] = []

    @Option(name: .customLong("allow"), help: ArgumentHelp("Allow paths under this prefix (repeatable; a longer prefix wins).", valueName: "prefix"))
    var allowPrefixes: [String] = []

    @Flag var failMode: FailMode = .failOpen

    @Option(help: "Decision budget: 100ms, 2s, 500us.")
    var budget: Duration = .milliseconds(100)

    @Option(help: "Collector: tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH, rpcbind://HOST/NETID, or tcp|udp|local (rpcbind on localhost).")
    var collector: RPCEndpoint = .rpcbind(host: "localhost", transport: .local)

    @Option(help: "Program number to target (decimal or 0x hex).")
    var program: ProgramNumber = .authRelay

    @Option(help: "Agent id put in batch headers (default: the host name).")
    var agentID: String?

    @Option(help: "Where requests come from: fanotify, or synthetic (no root needed).")
    var source: SourceKind = .fanotify

    @Option(help: "Synthetic requests per second.")
    var rate = 1000.0

    @Option(help: "Seconds a synthetic run lasts (0: until SIGTERM).")
    var duration = 10.0

    @Option(help: "Share of synthetic requests for a denied path (0...1).")
    var denyRatio = 0.1

    @Option(help: "Seconds to deliver queued events after a stop.")
    var drainSeconds = 5.0

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        if let agentID {
            do {
                try EventSender.Configuration(endpoint: collector, agentID: agentID).validate()
            } catch {
                throw ValidationError("--agent-id: \(error)")
            }
        }
        if source == .fanotify && watchPaths.isEmpty {
            throw ValidationError("give at least one --watch PATH (or use --source synthetic)")
        }
        for prefix in denyPrefixes + allowPrefixes where !prefix.hasPrefix("/") {
            throw ValidationError("'\(prefix)' is not an absolute path: --deny and --allow take absolute prefixes")
        }
        if !(0...1).contains(denyRatio) { throw ValidationError("--deny-ratio must be between 0 and 1") }
        if rate <= 0 { throw ValidationError("--rate must be positive") }
    }

    func run() throws {
        var logger = Logger(label: "authrelay.agent")
        logger.logLevel = logLevel

        // The source first: a fanotify error (not root, old kernel, missing path) stops us before anything starts.
        let authSource: any AuthSource
        var rules = try loadPolicy()
        switch source {
        case .fanotify:
            for path in watchPaths where access(path, F_OK) != 0 {
                throw AgentCommandError("watch path \(path) does not exist")
            }
            do {
                authSource = try FanotifySource(configuration: .init(paths: watchPaths, mount: mount))
            } catch {
                throw AgentCommandError(error.description)
            }
        case .synthetic:
            var configuration = SyntheticSource.Configuration()
            configuration.rate = rate
            configuration.duration = duration > 0 ? .milliseconds(Int64(duration * 1000)) : nil
            configuration.denyRatio = denyRatio
            let synthetic = SyntheticSource(configuration: configuration)
            rules.rules += synthetic.policyRules
            authSource = synthetic
        }

        // SIGPIPE would kill the agent when a collector goes away mid-call.
        ProcessSettings.ignoreBrokenPipe()
        var senderConfiguration = EventSender.Configuration(endpoint: collector, agentID: agentID ?? Self.hostName())
        senderConfiguration.program = program.value
        let sender = EventSender(configuration: senderConfiguration, logger: logger)

        var agentConfiguration = Agent.Configuration(policy: rules)
        agentConfiguration.pipeline.budget = budget
        agentConfiguration.pipeline.failVerdict = failMode == .failOpen ? .allow : .deny
        let agent = Agent(source: authSource, sender: sender, configuration: agentConfiguration, logger: logger)
        let senderService = SenderService(sender: sender, drainTimeout: .milliseconds(Int64(drainSeconds * 1000)))
        // The sender starts first and stops last: it drains what the agent submitted.
        let services = ServiceGroup(services: [senderService, agent], stopSignals: [SIGTERM, SIGINT], logger: logger)

        let what = source == .fanotify
            ? "watching \(watchPaths.joined(separator: ", "))\(mount ? " (whole mounts)" : "")"
            : "synthetic, \(rate) requests/s"
        printToStandardError("authrelay agent: ready, \(what), pid \(getpid()), collector \(collector)")

        services.run()
        let summary = agent.summary(sender: senderService.report)
        print("authrelay agent: stopped (\(summary.source))")
        print(summary.description)
        if summary.sourceFailed { throw ExitCode(1) }
    }

    /// The policy file's rules (or an empty allow-by-default policy), then --deny and --allow.
    private func loadPolicy() throws -> Policy {
        var policy = Policy()
        if let file = self.policy {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw AgentCommandError("cannot read policy file \(file)")
            }
            do {
                policy = try Policy(parsing: text, source: file)
            } catch {
                throw AgentCommandError(error.description)
            }
        }
        policy.rules += denyPrefixes.map { .path(prefix: $0, verdict: .deny) }
        policy.rules += allowPrefixes.map { .path(prefix: $0, verdict: .allow) }
        return policy
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "authrelay-agent" }
        let bytes = buffer.prefix { $0 != 0 }.prefix(Event.maxIDBytes).map { UInt8(bitPattern: $0) }
        return bytes.isEmpty ? "authrelay-agent" : String(decoding: bytes, as: UTF8.self)
    }

    /// One line on stderr, unbuffered, so a supervisor (or a test) sees it at once.
    private func printToStandardError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

/// A failure the user can act on, printed as is.
struct AgentCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
