import ArgumentParser
import AuthRelay
import AuthRelayCLI
import AuthRelayProtocol
import Logging
import SystemSupport

/// `authrelay send`: a client smoke run: sends synthetic events to a collector through the EventSender.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send synthetic events to a collector through the queued sender and report what was delivered.")

    @OptionGroup var target: CollectorOptions

    @Option(help: "How many events to send.")
    var count = 1000

    @Option(help: "Agent id put in batch headers.")
    var agentID = "authrelay-send"

    @Option(help: "Seconds to wait for delivery before giving up.")
    var drainSeconds = Seconds(.seconds(10))

    @Flag(help: "Speak protocol version 1 (one call per event), as to a legacy collector (--highest-version 1).")
    var v1 = false

    @Option(help: ArgumentHelp("The highest protocol version to negotiate: 3 (2 without --spool-dir), 2 or 1.", valueName: "version"))
    var highestVersion: ProtocolVersion = .v3

    @Flag(help: "With several --collector: go back to the first once it answers again.")
    var preferFirst = false

    @Option(help: ArgumentHelp("Spool events in this directory first, as the agent does (default: memory only).", valueName: "dir"))
    var spoolDir: String?

    @Option(help: ArgumentHelp("Bound on the spool's size.", valueName: "bytes"))
    var spoolMaxBytes = ByteCount(SpoolSizing.defaultMaxBytes)

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        do {
            try EventSender.Configuration(endpoints: target.collectors.endpoints, agentID: agentID).validate()
        } catch {
            throw ValidationError("--agent-id: \(error)")
        }
        if let spoolDir, !spoolDir.hasPrefix("/") { throw ValidationError("--spool-dir must be an absolute path") }
        if spoolMaxBytes.bytes < SpoolSizing.minimumMaxBytes {
            throw ValidationError("--spool-max-bytes must be at least \(ByteCount(SpoolSizing.minimumMaxBytes).defaultValueDescription)")
        }
    }

    func run() throws {
        var logger = Logger(label: "authrelay.send")
        logger.logLevel = logLevel
        var configuration = EventSender.Configuration(endpoints: target.collectors.endpoints, agentID: agentID)
        configuration.program = target.program.value
        configuration.highestVersion = v1 ? .v1 : highestVersion
        configuration.preferFirst = preferFirst
        configuration.spool = spoolDir.map { EventSender.SpoolOptions(directory: $0, maxBytes: spoolMaxBytes.bytes) }
        let sender = EventSender(configuration: configuration, logger: logger)
        let me = Processes.currentID
        let parent = Processes.parentID
        for index in 0..<count {
            sender.submit(Event(
                timestampNanoseconds: Timestamps.realtime(), kind: index % 2 == 0 ? .open : .exec,
                verdict: index % 7 == 6 ? .deny : .allow, decisionNanoseconds: 1000, pid: me, ppid: parent,
                uid: Processes.userID, gid: Processes.groupID, executablePath: "/usr/bin/authrelay-send",
                targetPath: "/tmp/authrelay-send/file-\(index)"))
        }
        let report = sender.close(drainTimeout: drainSeconds.duration)
        let stats = report.stats
        print("submitted \(stats.submitted), acknowledged \(stats.acknowledged), dropped \(stats.dropped + stats.evicted), rejected \(stats.rejected), undelivered \(report.undelivered), collector \(stats.collectorVersion.map { "\($0)" } ?? "never reached")")
        if let line = report.spoolSummary { print(line) }
        if let error = stats.lastError, report.undelivered > 0 {
            print("last error: \(error)")
        }
        if report.undelivered > 0 || stats.acknowledged < stats.submitted {
            throw ExitCode(1)
        }
    }
}
