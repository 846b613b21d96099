import ArgumentParser
import AuthRelayCLI
import AuthRelayDemo
import AuthRelayHarness
import Logging

/// `authrelay demo`: the main job on an embedded default.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a collector and an agent on temporary paths, stop the collector mid-run, and report what the auth path saw.")

    @Option(help: "Seconds in each phase: collector healthy, stopped (SIGSTOP), resumed.")
    var phaseSeconds = Seconds(.seconds(3))

    @Option(help: "Accesses per second (fanotify) or tenths of the synthetic request rate.")
    var rate = 40

    @Flag(help: "Use the synthetic source even where fanotify works.")
    var synthetic = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .error

    func run() throws {
        var logger = Logger(label: "authrelay.demo")
        logger.logLevel = logLevel
        var options = Demo.Options()
        options.healthy = phaseSeconds.duration
        options.stopped = phaseSeconds.duration
        options.resumed = phaseSeconds.duration
        options.rate = rate
        options.synthetic = synthetic
        let demo = Demo(options: options, executables: try Executables.besideRunningProgram(), logger: logger)
        print(try demo.run())
    }
}
