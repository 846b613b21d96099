import AuthRelayHarness
import TestSupport
import Testing

/// A second authrelayd must not silently take a live collector's rpcbind registration.
@Suite("authrelayd rpcbind ownership")
struct RegistrationTakeoverTests {
    init() { TestProcess.prepare() }

    @Test("a second daemon on a served program refuses to start and the first keeps its registration",
          .enabled(if: LocalRPCBind.isRunning, "rpcbind is not running"))
    func secondDaemonRefuses() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let program = uniqueProgramNumber()
        let first = try StartedCollector(in: directory, rpcbind: true, program: program)
        defer { first.stop() }

        let second = try ChildProcess(BuiltPrograms.path("authrelayd"), [
            "--program", String(program), "--transports", "tcp", "--data-dir", directory.file("second-data"),
            "--unix-socket", directory.file("second.sock"), "--output", directory.file("second.jsonl"),
        ], outputIn: directory)
        defer { second.stop() }
        let status = try second.waitForExit(timeout: .seconds(15))
        #expect(status == .exited(1))
        #expect(second.stderr.contains("is already served by a running server"), "\(second.stderr)")

        let (_, registrations) = try LocalRPCBind.rpcinfo(["-T", "tcp", "localhost", String(program), "2"])
        #expect(registrations.contains("ready and waiting"), "\(registrations)")
    }
}
