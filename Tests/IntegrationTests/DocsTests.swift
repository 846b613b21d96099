import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Glibc
import Logging
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// The docs cannot drift from the code (issue 7, item 5). Every command shown in
/// README.md, Docs/*.md (fenced sh, bash, shell, console and ini blocks) and
/// deploy/systemd/*.service (ExecStart) is checked against this checkout:
/// - `authrelay` and `authrelayd` lines (any path prefix) run the built program
///   with AUTHRELAY_CHECK_ARGUMENTS=1, which parses and validates the command
///   line and exits without doing anything; they must exit 0.
/// - `legacy-collector` and `legacy-reporter` lines run with `-?` appended:
///   getopt stops at the first bad flag or value (usage, status 2), else `-?`
///   prints the usage with status 0.
/// - scripts and repository files the commands name must exist.
/// - `rpcinfo` must be given program numbers it understands (decimal or a name).
/// - README's Swift example is compiled in this file, and compared with the README.
/// - Operations.md's agent walkthrough (the block after `<!-- docs-test: run -->`)
///   runs as written, as root with fanotify, like a new user would run it.
/// A failure names the doc's file and line.
@Suite("Docs", .serialized, .timeLimit(.minutes(3)))
struct DocsTests {
    @Test("authrelay and authrelayd commands in the docs parse and validate")
    func authrelayCommands() throws {
        let commands = try DocCommand.all().filter { ["authrelay", "authrelayd"].contains($0.program) }
        #expect(commands.count > 10, "found only \(commands.count) commands: is the extraction broken?")
        for command in commands {
            let (status, output) = try runProduct(command.program, command.arguments, environment: ["AUTHRELAY_CHECK_ARGUMENTS": "1"])
            if status != 0 {
                command.fail("exited \(status) under AUTHRELAY_CHECK_ARGUMENTS=1:\n\(output)")
            }
            // The commands parse --collector only when they run: check the address here.
            for (flag, value) in zip(command.arguments, command.arguments.dropFirst()) where flag == "--collector" {
                if RPCEndpoint(parsing: value) == nil { command.fail("--collector \(value) is not an address") }
            }
        }
    }

    @Test("legacy-collector and legacy-reporter accept the flags the docs show")
    func legacyCommands() throws {
        let commands = try DocCommand.all().filter { ["legacy-collector", "legacy-reporter"].contains($0.program) }
        #expect(!commands.isEmpty)
        for command in commands {
            let (status, output) = try runProduct(command.program, command.arguments + ["-?"])
            if status != 0 { command.fail("rejected its flags (status \(status)):\n\(output)") }
        }
    }

    @Test("scripts and repository files the docs name exist; rpcinfo gets decimal program numbers")
    func otherCommands() throws {
        for command in try DocCommand.all() {
            // A relative path to a script in this repository: scripts/demo.sh, Benchmarks/collector.sh, ...
            if command.path.contains("/"), !command.path.hasPrefix("/"), !command.path.hasPrefix(".build"),
               !FileManager.default.isExecutableFile(atPath: DocFile.root.appendingPathComponent(command.path).path) {
                command.fail("\(command.path) is not an executable file in the repository")
            }
            for word in command.arguments where DocFile.repositoryFolders.contains(where: { word.hasPrefix($0) }) {
                if globMatches(DocFile.root.appendingPathComponent(word).path) == 0 {
                    command.fail("\(word) does not exist in the repository")
                }
            }
            // rpcinfo reads "0x20000A7E" as a service name and answers "is unknown service".
            if command.program == "rpcinfo", let hex = command.arguments.first(where: { $0.lowercased().hasPrefix("0x") }) {
                command.fail("rpcinfo takes program numbers in decimal or by name, not \(hex)")
            }
        }
    }

    @Test("README's Swift example is the code compiled here")
    func readmeExampleIsCompiled() throws {
        let readme = try DocFile(relativePath: "README.md")
        let block = try #require(readme.blocks.first { $0.language == "swift" && $0.text.contains("EventSender(") })
        let documented = block.lines.filter { !$0.hasPrefix("import ") }
        let source = try String(contentsOfFile: #filePath, encoding: .utf8).components(separatedBy: "\n")
        let begin = try #require(source.firstIndex { $0.hasSuffix("// README: begin") })
        let end = try #require(source.firstIndex { $0.hasSuffix("// README: end") })
        let compiled = source[(begin + 1)..<end].map { $0.hasPrefix("    ") ? String($0.dropFirst(4)) : $0 }
        #expect(documented.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                    == compiled.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines),
                "README.md:\(block.firstLine): edit the example and readmeSendEventsExample() in DocsTests.swift together")
    }

    @Test("Operations.md's agent walkthrough runs as written",
          .enabled(if: fanotifyUnavailableReason == nil, Comment(rawValue: fanotifyUnavailableReason ?? "")))
    func agentWalkthrough() throws {
        let operations = try DocFile(relativePath: "Docs/Operations.md")
        let block = try #require(operations.blocks.first { $0.marker == "docs-test: run" })
        let directory = try TemporaryDirectory(prefix: "authrelay-docs")
        defer { directory.remove() }
        // The script's mktemp -d lands in this directory (TMPDIR), and `authrelay`
        // and `authrelayd` are the programs under test (PATH).
        let (status, output) = try runShell(block.text, in: directory, timeout: .seconds(60))
        let location = "Docs/Operations.md:\(block.firstLine)"
        #expect(status == 0, "\(location): the walkthrough exited \(status):\n\(output)")
        #expect(output.contains("authrelay agent: ready, watching"), "\(location):\n\(output)")
        #expect(output.contains("watched/secret.txt: Operation not permitted"), "\(location):\n\(output)")
        #expect(output.contains("authrelay agent: stopped (fanotify)"), "\(location):\n\(output)")
        #expect(output.contains("decisions 2: allowed 1, denied 1"), "\(location):\n\(output)")
        #expect(output.contains(#""verdict":"deny""#) && output.contains(#"watched/secret.txt","digest""#), "\(location):\n\(output)")
        #expect(output.range(of: #"written +2\n"#, options: .regularExpression) != nil, "\(location):\n\(output)")
    }
}

/// README.md, "Send events from Swift", without its imports: compiled here so the
/// example cannot drift from the API (readmeExampleIsCompiled compares the text). Never called.
private func readmeSendEventsExample() {
    // README: begin
    // Once, at the start of the program: libtirpc writes with plain write(2), so a
    // collector that goes away mid-call would otherwise kill the process with SIGPIPE.
    signal(SIGPIPE, SIG_IGN)

    // Where the collector listens: .unix(path:), .tcp(host:port:) or .rpcbind(host:transport:).
    let configuration = EventSender.Configuration(
        endpoint: .unix(path: "/run/authrelayd/authrelayd.sock"), agentID: "my-agent")
    let sender = EventSender(configuration: configuration, logger: Logger(label: "my-agent"))

    // On the auth path, after answering the kernel: O(1), never blocks, never throws.
    sender.submit(Event(
        timestampNanoseconds: Timestamps.realtime(), kind: .open, verdict: .deny,
        pid: getpid(), uid: getuid(), executablePath: "/usr/bin/cat", targetPath: "/srv/data/secret/plan.txt"))

    // At shutdown: deliver what is queued (for up to 5 s) and account for the rest.
    let report = sender.close(drainTimeout: .seconds(5))
    print("acknowledged \(report.stats.acknowledged), dropped \(report.stats.dropped), undelivered \(report.undelivered)")
    // README: end
}

// MARK: - Reading the docs

/// A Markdown file of the repository and its fenced code blocks.
struct DocFile {
    /// The package root, found from this file's path: Tests/IntegrationTests/DocsTests.swift.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Words starting with these are paths in the repository that must exist.
    static let repositoryFolders = ["deploy/", "Docs/", "scripts/", "Benchmarks/", "rpcgen/"]

    struct Block {
        var language: String
        /// Line number (from 1) of the block's first line.
        var firstLine: Int
        var lines: [String]
        /// The text of an HTML comment right before the fence, e.g. "docs-test: run".
        var marker: String?
        var text: String { lines.joined(separator: "\n") + "\n" }
    }

    let relativePath: String
    let blocks: [Block]

    init(relativePath: String) throws {
        self.relativePath = relativePath
        let text = try String(contentsOf: DocFile.root.appendingPathComponent(relativePath), encoding: .utf8)
        var blocks: [Block] = []
        var open: (block: Block, indent: Int)?
        var previous = ""
        for (index, line) in text.components(separatedBy: "\n").enumerated() {
            let trimmed = line.drop { $0 == " " }
            if var current = open {
                if trimmed == "```" {
                    blocks.append(current.block)
                    open = nil
                } else {
                    // A fence inside a list item is indented: so are its lines.
                    current.block.lines.append(String(line.dropFirst(min(current.indent, line.prefix { $0 == " " }.count))))
                    open = current
                }
            } else if trimmed.hasPrefix("```") {
                let marker = previous.hasPrefix("<!--") && previous.hasSuffix("-->")
                    ? previous.dropFirst(4).dropLast(3).trimmingCharacters(in: .whitespaces) : nil
                let block = Block(language: String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces),
                                  firstLine: index + 2, lines: [], marker: marker)
                open = (block, line.count - trimmed.count)
            }
            if !line.trimmingCharacters(in: .whitespaces).isEmpty { previous = line.trimmingCharacters(in: .whitespaces) }
        }
        self.blocks = blocks
    }

    static func markdownFiles() throws -> [DocFile] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Docs").path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "Docs/" + $0 }
        return try (["README.md"] + docs).map(DocFile.init(relativePath:))
    }
}

/// One command a doc shows, after the shell's quoting and expansion (variables
/// become absolute placeholder paths).
struct DocCommand {
    var file: String
    var line: Int
    /// The program as written: authrelayd, .build/release/authrelay, scripts/demo.sh, ...
    var path: String
    var arguments: [String]
    var text: String
    /// The program's base name.
    var program: String { (path as NSString).lastPathComponent }

    /// Every command in README.md, Docs/*.md and the systemd units in deploy/.
    static func all() throws -> [DocCommand] {
        var commands: [DocCommand] = []
        for doc in try DocFile.markdownFiles() {
            for block in doc.blocks {
                switch block.language {
                case "sh", "bash", "shell": commands += parse(block.lines, from: block.firstLine, in: doc.relativePath) { $0 }
                case "console": commands += parse(block.lines, from: block.firstLine, in: doc.relativePath) { $0.hasPrefix("$ ") ? String($0.dropFirst(2)) : nil }
                case "ini": commands += parse(block.lines, from: block.firstLine, in: doc.relativePath, select: execStart)
                default: break
                }
            }
        }
        let units = DocFile.root.appendingPathComponent("deploy/systemd")
        for name in try FileManager.default.contentsOfDirectory(atPath: units.path).sorted() where name.hasSuffix(".service") {
            let lines = try String(contentsOf: units.appendingPathComponent(name), encoding: .utf8).components(separatedBy: "\n")
            commands += parse(lines, from: 1, in: "deploy/systemd/" + name, select: execStart)
        }
        return commands
    }

    /// systemd's ExecStart=, without its optional prefixes (-, @, +, !).
    static func execStart(_ line: String) -> String? {
        guard line.hasPrefix("ExecStart=") else { return nil }
        return String(line.dropFirst("ExecStart=".count).drop { "-@+!".contains($0) })
    }

    /// Joins continuation lines (a trailing backslash) of the lines `select`
    /// keeps (it returns the command part of a line, or nil), then splits each
    /// command line into simple commands.
    static func parse(_ lines: [String], from firstLine: Int, in file: String, select: (String) -> String?) -> [DocCommand] {
        var result: [DocCommand] = []
        var index = 0
        while index < lines.count {
            let number = firstLine + index
            guard var text = select(lines[index]) else { index += 1; continue }
            while text.hasSuffix("\\"), index + 1 < lines.count {
                index += 1
                text = String(text.dropLast()) + " " + lines[index].trimmingCharacters(in: .whitespaces)
            }
            index += 1
            for words in ShellWords.simpleCommands(text) {
                guard let first = words.first else { continue }
                result.append(DocCommand(file: file, line: number, path: first, arguments: Array(words.dropFirst()), text: text))
            }
        }
        return result
    }

    /// Records a test failure at the doc's file and line.
    func fail(_ message: String) {
        let path = DocFile.root.appendingPathComponent(file).path
        Issue.record("\(file):\(line): `\(text)`: \(message)",
                     sourceLocation: SourceLocation(fileID: "AuthRelay/\(file)", filePath: path, line: line, column: 1))
    }
}

/// Just enough of sh to read the docs' command lines: quotes, backslashes,
/// comments, $VAR and $(...), the operators ; & && | ||, redirections, and
/// `sh -c '...'`. Not a shell: no globbing, no here-documents.
enum ShellWords {
    /// Words of each simple command, without leading VAR=value assignments,
    /// wrappers (sudo, env, exec, nohup, time) and loop keywords.
    static func simpleCommands(_ line: String) -> [[String]] {
        var commands: [[String]] = []
        var words: [String] = []
        var word: String?
        var dropNextWord = false
        let characters = Array(line)
        var index = 0

        func endWord() {
            if let finished = word {
                if dropNextWord { dropNextWord = false } else { words.append(finished) }
            }
            word = nil
        }
        func endCommand() {
            endWord()
            commands += cleaned(words)
            words = []
        }
        /// `$NAME`, `${NAME}` or `$(...)` at `index` (the `$`): an absolute placeholder path,
        /// so `unix://$D/x.sock` and `--deny $D/secret` stay valid values.
        func expansion() -> String {
            let next = index + 1 < characters.count ? characters[index + 1] : " "
            if next == "(" {
                index += 1
                var depth = 0
                repeat {
                    if characters[index] == "(" { depth += 1 }
                    if characters[index] == ")" { depth -= 1 }
                    index += 1
                } while index < characters.count && depth > 0
                return "/tmp/docs-command-output"
            }
            let braced = next == "{"
            var end = index + (braced ? 2 : 1)
            let start = end
            while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_" { end += 1 }
            guard end > start else { index += 1; return "$" }
            let name = String(characters[start..<end])
            index = braced ? end + 1 : end
            return "/tmp/docs-\(name)"
        }

        while index < characters.count {
            let character = characters[index]
            switch character {
            case " ", "\t":
                endWord()
                index += 1
            case "#" where word == nil:
                index = characters.count  // a comment
            case "'":
                var text = word ?? ""
                index += 1
                while index < characters.count && characters[index] != "'" { text.append(characters[index]); index += 1 }
                word = text
                index += 1
            case "\"":
                var text = word ?? ""
                index += 1
                while index < characters.count && characters[index] != "\"" {
                    if characters[index] == "\\", index + 1 < characters.count, "\"\\$`".contains(characters[index + 1]) {
                        text.append(characters[index + 1])
                        index += 2
                    } else if characters[index] == "$" {
                        text += expansion()
                    } else {
                        text.append(characters[index])
                        index += 1
                    }
                }
                word = text
                index += 1
            case "\\":
                if index + 1 < characters.count { word = (word ?? "") + String(characters[index + 1]) }
                index += 2
            case "$":
                word = (word ?? "") + expansion()
            case "<", ">":
                // A redirection: drop an fd number before it and its target after it.
                if let current = word, current.allSatisfy(\.isNumber) { word = nil }
                endWord()
                while index < characters.count && "<>&".contains(characters[index]) { index += 1 }
                if index < characters.count && characters[index].isNumber {
                    while index < characters.count && characters[index].isNumber { index += 1 }  // 2>&1
                } else {
                    dropNextWord = true
                }
            case "&" where index + 1 < characters.count && characters[index + 1] == ">":
                endWord()
                index += 2
                dropNextWord = true
            case ";", "&", "|":
                endCommand()
                while index < characters.count && ";&|".contains(characters[index]) { index += 1 }
            default:
                word = (word ?? "") + String(character)
                index += 1
            }
        }
        endCommand()
        return commands
    }

    private static func cleaned(_ words: [String]) -> [[String]] {
        var words = words[...]
        let wrappers: Set<String> = ["sudo", "env", "exec", "nohup", "time", "do", "then", "else", "if", "while", "until", "!"]
        while let first = words.first,
              wrappers.contains(first) || first.range(of: #"^[A-Za-z_][A-Za-z0-9_]*="#, options: .regularExpression) != nil {
            words = words.dropFirst()
        }
        guard let first = words.first else { return [] }
        if ["sh", "bash"].contains((first as NSString).lastPathComponent), words.dropFirst().first == "-c", words.count > 2 {
            return simpleCommands(words[words.startIndex + 2])
        }
        return [Array(words)]
    }
}

// MARK: - Running

/// Runs a built program (bounded); returns its exit status and its stdout and stderr.
private func runProduct(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
    try ChildProcess.run(BuiltPrograms.path(name), arguments, timeout: .seconds(20), environment: environment)
}

/// Runs `script` with bash in `directory` (its working directory and TMPDIR),
/// the built programs first on PATH. Whatever happens, processes still running
/// with `directory` in their command line (what the script started) are killed
/// at the end.
private func runShell(_ script: String, in directory: TemporaryDirectory, timeout: Duration) throws -> (Int32, String) {
    let scriptPath = directory.file("script.sh")
    try FileSystem.writeFile(scriptPath, Array(script.utf8))
    let path = BuiltPrograms.executables.directory + ":" + (Processes.environmentValue("PATH") ?? "/usr/bin:/bin")
    // The harness starts a program where the test runs: the shell changes directory itself.
    let shell = try ChildProcess("/bin/bash", ["-c", #"cd "$0" && exec /bin/bash "$1""#, directory.path, scriptPath],
                                 outputIn: directory, tag: "script", environment: ["PATH": path, "TMPDIR": directory.path])
    let ended = shell.wait(timeout: timeout)
    if ended == nil { shell.kill() }
    killProcesses(mentioning: directory.path)
    guard let ended else { return (-1, shell.output + "\n[timed out after \(timeout)]") }
    return (ended.code, shell.output)
}

/// SIGKILL to every process whose command line contains `text` (a unique temporary path).
private func killProcesses(mentioning text: String) {
    let me = Processes.currentID
    for entry in (try? FileSystem.listDirectory("/proc")) ?? [] {
        guard let pid = Int32(entry), pid != me,
              let arguments = try? FileSystem.readFile("/proc/\(pid)/cmdline") else { continue }
        if String(decoding: arguments.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text) { Processes.signal(pid, SIGKILL) }
    }
}

/// How many paths `pattern` matches (a plain path matches itself when it exists).
private func globMatches(_ pattern: String) -> Int {
    var result = glob_t()
    defer { globfree(&result) }
    return glob(pattern, 0, nil, &result) == 0 ? Int(result.gl_pathc) : 0
}
