import AuthRelayHarness
import SystemSupport

/// The plain C `legacy-collector` (Sources/legacy-collector), started from the built
/// products for one test, its stderr and event lines in a temporary folder, stopped
/// by its pid. Every wait is bounded.
///
/// Started through the harness's `ChildProcess` (posix_spawn with an empty signal
/// mask and SIGPIPE at its default), not Foundation.Process: tests run on
/// libdispatch worker threads, which block SIGTERM, and a child spawned by Process
/// inherits that mask, so SIGTERM would never reach it.
final class LegacyCollector {
    /// The built program, next to the test bundle.
    static let path = Executables.holding("legacy-collector").path("legacy-collector")

    let directory: TemporaryDirectory
    let outputPath: String
    private let child: ChildProcess

    var stderr: String { child.stderr }
    /// The event lines written so far (-o).
    var lines: [String] {
        (FileSystem.readText(outputPath) ?? "").split(separator: "\n").map(String.init)
    }

    /// Starts `legacy-collector ARGUMENTS -o OUTPUT` and waits for "ready".
    init(_ arguments: [String]) throws {
        directory = try TemporaryDirectory(prefix: "legacy-collector")
        outputPath = directory.file("events.txt")
        child = try ChildProcess(Self.path, arguments + ["-o", outputPath], outputIn: directory, tag: "legacy-collector")
        do {
            try child.waitFor("legacy-collector: ready")
        } catch {
            child.stop(grace: .seconds(2))
            throw error
        }
    }

    /// The TCP port from "legacy-collector: listening tcp 127.0.0.1:PORT".
    var tcpPort: UInt16? {
        stderr.split(separator: "\n").lazy
            .filter { $0.hasPrefix("legacy-collector: listening tcp ") }
            .compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } }
            .first
    }

    /// SIGTERM, then SIGKILL after two seconds; how it ended.
    @discardableResult
    func stop() -> Processes.Termination {
        child.stop(grace: .seconds(2))
    }

    /// Stops the collector and removes its folder.
    func remove() {
        stop()
        directory.remove()
    }
}
