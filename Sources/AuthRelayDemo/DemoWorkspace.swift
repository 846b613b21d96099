import AuthRelayHarness
import SystemSupport

/// The demo's temporary directory: a watched folder with files to read, a
/// secret the policy denies, two copies of /bin/true (one the policy denies),
/// and the collector's JSON Lines output, which outlives the rest.
struct DemoWorkspace {
    let root: String
    var watched: String { root + "/watched" }
    var secretFile: String { watched + "/secret.txt" }
    var allowedTool: String { watched + "/tool-allowed" }
    var deniedTool: String { watched + "/tool-denied" }
    var outputPath: String { root + "/events.jsonl" }
    func reportFile(_ index: Int) -> String { watched + "/report-\(index).txt" }

    init() throws(DemoError) {
        do {
            root = try FileSystem.makeTemporaryDirectory(prefix: "authrelay-demo")
            try FileSystem.makeDirectory(watched)
            for index in 0..<5 { try FileSystem.writeFile(reportFile(index), Array("quarterly report \(index)\n".utf8)) }
            try FileSystem.writeFile(secretFile, Array("the policy denies this file\n".utf8))
            let tool = try FileSystem.readFile("/bin/true")
            try FileSystem.writeFile(allowedTool, tool, mode: 0o755)
            try FileSystem.writeFile(deniedTool, tool, mode: 0o755)
        } catch {
            throw DemoError("cannot set up the demo's directory", system: error)
        }
    }

    /// Removes the watched folder, keeps the output.
    func removeAllButOutput() {
        FileSystem.removeTree(watched)
    }
}
