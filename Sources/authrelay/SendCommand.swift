import ArgumentParser
import AuthRelay
import AuthRelayCLI
import AuthRelayProtocol
import Glibc
import Logging
import ONCRPC

/// `authrelay send`: a client smoke run: sends synthetic events to a collector through the EventSender.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send synthetic events to a collector through the queued sender and report what was delivered.")

    @Option(help: "Collector: tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH, rpcbind://HOST/NETID, or tcp|udp|local (rpcbind on localhost).")
    var collector: RPCEndpoint = .rpcbind(host: "localhost", transport: .local)

    @Option(help: "Program number to target (decimal or 0x hex).")
    var program: ProgramNumber = .authRelay

    @Option(help: "How many events to send.")
    var count = 1000

    @Option(help: "Agent id put in batch headers.")
    var agentID = "authrelay-send"

    @Option(help: "Seconds to wait for delivery before giving up.")
    var drainSeconds = 10.0

    @Flag(help: "Speak protocol version 1 (one call per event), as to a legacy collector.")
    var v1 = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        do {
            try EventSender.Configuration(endpoint: collector, agentID: agentID).validate()
        } catch {
            throw ValidationError("--agent-id: \(error)")
        }
    }

    func run() throws {
        var logger = Logger(label: "authrelay.send")
        logger.logLevel = logLevel
        var configuration = EventSender.Configuration(endpoint: collector, agentID: agentID)
        configuration.program = program.value
        configuration.forceVersion1 = v1
        let sender = EventSender(configuration: configuration, logger: logger)
        let me = getpid()
        for index in 0..<count {
            sender.submit(Event(
                timestampNanoseconds: Timestamps.realtime(), kind: index % 2 == 0 ? .open : .exec,
                verdict: index % 7 == 6 ? .deny : .allow, decisionNanoseconds: 1000, pid: me, ppid: getppid(),
                uid: getuid(), gid: getgid(), executablePath: "/usr/bin/authrelay-send",
                targetPath: "/tmp/authrelay-send/file-\(index)"))
        }
        let report = sender.close(drainTimeout: .milliseconds(Int64(drainSeconds * 1000)))
        let stats = report.stats
        print("submitted \(stats.submitted), acknowledged \(stats.acknowledged), dropped \(stats.dropped + stats.evicted), rejected \(stats.rejected), undelivered \(report.undelivered), collector \(stats.collectorVersion.map { "\($0)" } ?? "never reached")")
        if let error = stats.lastError, report.undelivered > 0 {
            print("last error: \(error)")
        }
        if report.undelivered > 0 || stats.acknowledged < stats.submitted {
            throw ExitCode(1)
        }
    }
}
