import AuthRelayHarness
import SystemSupport
import TestSupport
import Testing

/// `authrelay demo` as README's first command runs it, shortened.
@Suite("authrelay demo", .serialized)
struct DemoTests {
    @Test("the demo reports an auth path unaffected by the stopped collector", arguments: [false, true])
    func demo(synthetic: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let arguments = ["demo", "--phase-seconds", "1"] + (synthetic ? ["--synthetic"] : [])
        let run = try ChildProcess(BuiltPrograms.path("authrelay"), arguments, outputIn: directory)
        let status = try run.waitForExit(timeout: .seconds(60))
        #expect(status == .exited(0), "\(run.stdout)\n\(run.stderr)")
        let report = run.stdout
        #expect(report.contains("the auth path did not wait for the collector"), "\(report)\n\(run.stderr)")
        #expect(report.contains("undelivered 0"), "\(report)")
        #expect(report.contains("dropped 0"), "\(report)")
        // Everything it started is gone: no collector left on the demo's program number.
        let outputPath = report.split(separator: "\n").first { $0.hasPrefix("JSON Lines output: ") }
            .map { String($0.dropFirst("JSON Lines output: ".count).prefix { $0 != " " }) }
        #expect(outputPath.map { FileSystem.exists($0) } == true)
        if let outputPath {
            FileSystem.removeTree(FileSystem.directoryName(of: outputPath))
        }
        if LocalRPCBind.isRunning {
            let (_, registrations) = try LocalRPCBind.rpcinfo(["-p"])
            #expect(!registrations.contains("536873599"), "the demo left its rpcbind registration behind")
        }
    }
}
