import ArgumentParser

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
}
