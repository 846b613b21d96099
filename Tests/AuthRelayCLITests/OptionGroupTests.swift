import ArgumentParser
import AuthRelayCLI
import ONCRPC
import Testing

/// The collector options every client command shares, parsed alone and inside a command.
@Suite("CollectorOptions")
struct OptionGroupTests {
    /// A command shaped like `authrelay send`: the shared group beside flags of its own.
    struct ClientCommand: ParsableCommand {
        @OptionGroup var target: CollectorOptions

        @Option var drainSeconds = Seconds(.seconds(5))

        @Option var budget: Duration = .milliseconds(100)
    }

    @Test("defaults: the local rpcbind, AuthRelay's program")
    func defaults() throws {
        let options = try CollectorOptions.parse([])
        #expect(options.collector == .rpcbind(host: "localhost", transport: .local))
        #expect(options.program == .authRelay)
        #expect(options.program.defaultValueDescription == "0x20000A7E")
    }

    @Test("--collector and --program are read once, typed")
    func values() throws {
        let options = try CollectorOptions.parse(["--collector", "tcp://127.0.0.1:4000", "--program", "0x3F0A7E10"])
        #expect(options.collector == .tcp(host: "127.0.0.1", port: 4000))
        #expect(options.program.value == 0x3F0A_7E10)
    }

    @Test("--collector takes a list; `collector` is its first")
    func list() throws {
        let options = try CollectorOptions.parse(["--collector", "unix:///run/a.sock,rpcbind://c1,c2/tcp"])
        #expect(options.collectors.endpoints == [.unix(path: "/run/a.sock"), .rpcbind(host: "c1", transport: .tcp),
                                                 .rpcbind(host: "c2", transport: .tcp)])
        #expect(options.collector == .unix(path: "/run/a.sock"))
        #expect(try CollectorOptions.parse([]).collectors.endpoints.count == 1)
    }

    @Test("a bad value fails at parse time, naming the flag")
    func refusals() {
        for arguments in [["--collector", "ftp://x:1"], ["--program", "0xZZ"], ["--collector"]] {
            do {
                _ = try CollectorOptions.parse(arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                let message = CollectorOptions.message(for: error)
                #expect(message.contains(arguments[0]), "\(arguments): \(message)")
            }
        }
    }

    @Test("inside a command: the group's flags mix with the command's own, in any order")
    func inCommand() throws {
        let command = try ClientCommand.parse(["--drain-seconds", "2.5", "--collector", "unix:///tmp/c.sock", "--budget", "2s"])
        #expect(command.target.collector == .unix(path: "/tmp/c.sock"))
        #expect(command.target.program == .authRelay)
        #expect(command.drainSeconds.duration == .milliseconds(2500))
        #expect(command.budget == .seconds(2))

        let defaults = try ClientCommand.parse([])
        #expect(defaults.drainSeconds.duration == .seconds(5))
        #expect(ClientCommand.helpMessage().contains("--collector"))
        #expect(ClientCommand.helpMessage().contains("--program"))
        #expect(throws: (any Error).self) { try ClientCommand.parse(["--drain-seconds", "-1"]) }
    }
}
