import ArgumentParser
import AuthRelay
import AuthRelayAgent
import AuthRelayCLI
import AuthRelayProtocol
import Glibc  // SIGTERM, SIGINT
import Logging
import SystemSupport

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

    @OptionGroup var target: CollectorOptions

    @Flag(help: "With several --collector: go back to the first once it answers again (probed in the background once a second), rather than stay with the one that took over.")
    var preferFirst = false

    @Option(help: ArgumentHelp("The highest protocol version to negotiate: 3, or 2 or 1 for a collector that mishandles the newer ones.", valueName: "version"))
    var highestVersion: ProtocolVersion = .v3

    @Option(help: "Agent id put in batch headers (default: the host name).")
    var agentID: String?

    @Option(help: "Where requests come from: fanotify, or synthetic (no root needed).")
    var source: SourceKind = .fanotify

    @Option(help: "Synthetic requests per second.")
    var rate = 1000.0

    @Option(help: "Seconds a synthetic run lasts (0: until SIGTERM).")
    var duration = Seconds(.seconds(10))

    @Option(help: "Share of synthetic requests for a denied path (0...1).")
    var denyRatio = 0.1

    @Option(help: "Seconds to deliver queued events after a stop.")
    var drainSeconds = Seconds(.seconds(5))

    @Option(help: ArgumentHelp(
        "Where events wait for the collector, across collector outages and agent restarts (made 0700; one directory per run).",
        valueName: "dir"))
    var spoolDir = Self.defaultSpoolDirectory

    @Option(help: ArgumentHelp(
        "Bound on the spool's size; when full its oldest segment is evicted and reported lost. The default holds a 10-minute outage at 2,000 events/s of realistic paths (Docs/Operations.md).",
        valueName: "bytes"))
    var spoolMaxBytes = ByteCount(SpoolSizing.defaultMaxBytes)

    @Option(help: "When the spool fdatasyncs: never (the kernel writes back; survives the agent's death, not always a power loss) or segment (each full segment: a power loss costs at most the open one).")
    var spoolSync: EventSender.SpoolSync = .never

    @Flag(help: "No spool: undelivered events wait in memory only (16,384 events), and are lost when it is full or the agent stops.")
    var noSpool = false

    /// Under the agent's state directory.
    static let defaultSpoolDirectory = "/var/lib/authrelay-agent/spool"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        if let agentID {
            do {
                try EventSender.Configuration(endpoints: target.collectors.endpoints, agentID: agentID).validate()
            } catch {
                throw ValidationError("--agent-id: \(error)")
            }
        }
        if preferFirst && target.collectors.endpoints.count < 2 {
            throw ValidationError("--prefer-first needs several collectors: --collector FIRST,SECOND")
        }
        if source == .fanotify && watchPaths.isEmpty {
            throw ValidationError("give at least one --watch PATH (or use --source synthetic)")
        }
        for prefix in denyPrefixes + allowPrefixes where !prefix.hasPrefix("/") {
            throw ValidationError("'\(prefix)' is not an absolute path: --deny and --allow take absolute prefixes")
        }
        if !(0...1).contains(denyRatio) { throw ValidationError("--deny-ratio must be between 0 and 1") }
        if rate <= 0 { throw ValidationError("--rate must be positive") }
        if !noSpool {
            if !spoolDir.hasPrefix("/") { throw ValidationError("--spool-dir must be an absolute path") }
            if spoolMaxBytes.bytes < SpoolSizing.minimumMaxBytes {
                throw ValidationError("--spool-max-bytes must be at least \(ByteCount(SpoolSizing.minimumMaxBytes).defaultValueDescription)")
            }
        }
    }

    func run() throws {
        var logger = Logger(label: "authrelay.agent")
        logger.logLevel = logLevel

        // The source first: a fanotify error (not root, old kernel, missing path) stops us before anything starts.
        let authSource: any AuthSource
        var rules = try loadPolicy()
        switch source {
        case .fanotify:
            for path in watchPaths where !FileSystem.exists(path) {
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
            configuration.duration = duration.duration > .zero ? duration.duration : nil
            configuration.denyRatio = denyRatio
            let synthetic = SyntheticSource(configuration: configuration)
            rules.rules += synthetic.policyRules
            authSource = synthetic
        }

        var senderConfiguration = EventSender.Configuration(endpoints: target.collectors.endpoints, agentID: agentID ?? Self.hostName())
        senderConfiguration.program = target.program.value
        senderConfiguration.preferFirst = preferFirst
        senderConfiguration.highestVersion = highestVersion
        if !noSpool {
            var spool = EventSender.SpoolOptions(directory: spoolDir, maxBytes: spoolMaxBytes.bytes)
            spool.sync = spoolSync
            senderConfiguration.spool = spool
        }
        let sender = EventSender(configuration: senderConfiguration, logger: logger)

        var agentConfiguration = Agent.Configuration(policy: rules)
        agentConfiguration.pipeline.budget = budget
        agentConfiguration.pipeline.failVerdict = failMode == .failOpen ? .allow : .deny
        let agent = Agent(source: authSource, sender: sender, configuration: agentConfiguration, logger: logger)
        let senderService = SenderService(sender: sender, drainTimeout: drainSeconds.duration)
        // The sender starts first and stops last: it drains what the agent submitted.
        let services = ServiceGroup(services: [senderService, agent], stopSignals: [SIGTERM, SIGINT], logger: logger)

        let what = source == .fanotify
            ? "watching \(watchPaths.joined(separator: ", "))\(mount ? " (whole mounts)" : "")"
            : "synthetic, \(rate) requests/s"
        Processes.writeToStandardError("authrelay agent: ready, \(what), pid \(Processes.currentID), collector \(Self.describe(target.collectors))\n")

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
            guard let bytes = try? FileSystem.readFile(file), let text = String(validating: bytes, as: UTF8.self) else {
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

    /// "unix /run/a.sock", or "tcp 10.0.0.5:7700, then tcp 10.0.0.6:7700" for several.
    static func describe(_ collectors: CollectorList) -> String {
        collectors.endpoints.map(\.description).joined(separator: ", then ")
    }

    /// The host name, cut to the protocol's bound for an agent id.
    private static func hostName() -> String {
        guard let name = Processes.hostName() else { return "authrelay-agent" }
        return String(decoding: name.utf8.prefix(Event.maxIDBytes), as: UTF8.self)
    }
}

/// A failure the user can act on, printed as is.
struct AgentCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension EventSender.SpoolSync: ExpressibleByArgument {}
