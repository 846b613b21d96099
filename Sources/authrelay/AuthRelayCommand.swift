import ArgumentParser
import SystemSupport

@main
struct AuthRelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authrelay",
        abstract: "Keep ONC RPC telemetry out of the authorization path.",
        subcommands: [
            SendCommand.self,
            StatsCommand.self,
            DemoCommand.self,
            AgentCommand.self,
            LatencyCommand.self,
        ]
    )

    /// With AUTHRELAY_CHECK_ARGUMENTS=1 the command line is only parsed and
    /// validated, then the process exits (0, or the usage error's status)
    /// without running anything: Tests/IntegrationTests/DocsTests.swift checks
    /// every command the docs show this way.
    ///
    /// Process-wide settings are made here, once, before any subcommand runs:
    /// SIGPIPE is ignored (libtirpc writes with write(2), so a collector that
    /// goes away mid-call would otherwise kill the agent, a send or a benchmark).
    static func main() {
        ProcessSettings.ignoreBrokenPipe()
        if Processes.environmentValue("AUTHRELAY_CHECK_ARGUMENTS") == "1" {
            do {
                _ = try parseAsRoot()
                Self.exit()
            } catch {
                Self.exit(withError: error)
            }
        }
        main(nil)
    }
}
