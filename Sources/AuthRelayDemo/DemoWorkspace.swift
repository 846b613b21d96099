import Glibc

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
        var template = Array("/tmp/authrelay-demo-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw DemoError("mkdtemp: \(String(cString: strerror(errno)))") }
        root = String(cString: made)
        guard mkdir(watched, 0o755) == 0 else { throw DemoError("mkdir \(watched): \(String(cString: strerror(errno)))") }
        for index in 0..<5 { try Self.write(reportFile(index), "quarterly report \(index)\n") }
        try Self.write(secretFile, "the policy denies this file\n")
        try Self.copy("/bin/true", to: allowedTool)
        try Self.copy("/bin/true", to: deniedTool)
    }

    /// Removes the watched folder, keeps the output.
    func removeAllButOutput() {
        for index in 0..<5 { unlink(reportFile(index)) }
        for path in [secretFile, allowedTool, deniedTool] { unlink(path) }
        rmdir(watched)
    }

    private static func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws(DemoError) {
        let bytes = Array(text.utf8)
        try write(path, bytes, mode: mode)
    }

    private static func write(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(DemoError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw DemoError("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw DemoError("write \(path): \(String(cString: strerror(errno)))") }
    }

    private static func copy(_ source: String, to target: String) throws(DemoError) {
        let descriptor = open(source, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DemoError("open \(source): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        try write(target, bytes, mode: 0o755)
    }
}
