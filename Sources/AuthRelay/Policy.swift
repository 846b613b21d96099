import AuthRelayProtocol

/// An in-memory allow/deny policy: no I/O at decision time.
///
/// Precedence, most specific first:
/// 1. `deny exe` rules for the requesting executable,
/// 2. `allow exe` rules for it (a trusted tool may open anything),
/// 3. the longest `allow path` / `deny path` prefix of the target (a deny wins a tie),
/// 4. the default verdict.
/// Prefixes match whole path components: `/srv/secret` matches `/srv/secret`
/// and `/srv/secret/a`, not `/srv/secretive`.
public struct Policy: Sendable, Equatable {
    public enum Rule: Sendable, Equatable {
        case path(prefix: String, verdict: Event.Verdict)
        case executable(prefix: String, verdict: Event.Verdict)
    }

    public var rules: [Rule]
    public var defaultVerdict: Event.Verdict

    public init(rules: [Rule] = [], defaultVerdict: Event.Verdict = .allow) {
        self.rules = rules
        self.defaultVerdict = defaultVerdict
    }

    public func decide(executable: String, target: String) -> Event.Verdict {
        var executableAllowed = false
        var bestLength = -1
        var bestVerdict = defaultVerdict
        for rule in rules {
            switch rule {
            case .executable(let prefix, let verdict):
                if Self.matches(executable, prefix) {
                    if verdict == .deny { return .deny }
                    executableAllowed = true
                }
            case .path(let prefix, let verdict):
                if Self.matches(target, prefix) {
                    let length = prefix.utf8.count
                    if length > bestLength || (length == bestLength && verdict == .deny) {
                        bestLength = length
                        bestVerdict = verdict
                    }
                }
            }
        }
        return executableAllowed ? .allow : bestVerdict
    }

    static func matches(_ path: String, _ prefix: String) -> Bool {
        guard path.hasPrefix(prefix) else { return false }
        if prefix.hasSuffix("/") || path.utf8.count == prefix.utf8.count { return true }
        return path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: prefix.utf8.count)] == UInt8(ascii: "/")
    }

    /// Reads the policy file format, one rule a line, `#` starts a comment:
    ///
    ///     default allow|deny
    ///     allow path /srv/data
    ///     deny path /srv/data/secret
    ///     deny exe /usr/bin/nc
    ///     allow exe /usr/sbin/backup
    public init(parsing text: String, source: String = "policy") throws(PolicyError) {
        self.init()
        var sawDefault = false
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if words.isEmpty { continue }
            let lineNumber = index + 1
            func fail(_ reason: String) -> PolicyError {
                PolicyError(source: source, line: lineNumber, reason: reason)
            }
            guard let verdict = Self.verdict(words[0]) ?? (words[0] == "default" ? .allow : nil) else {
                throw fail("expected 'allow', 'deny' or 'default', found '\(words[0])'")
            }
            if words[0] == "default" {
                guard words.count == 2, let value = Self.verdict(words[1]) else {
                    throw fail("expected 'default allow' or 'default deny'")
                }
                guard !sawDefault else { throw fail("a second 'default' line") }
                sawDefault = true
                defaultVerdict = value
                continue
            }
            guard words.count == 3 else {
                throw fail("expected '\(words[0]) path PREFIX' or '\(words[0]) exe PATH' (paths with spaces are not supported)")
            }
            guard words[2].hasPrefix("/") else { throw fail("'\(words[2])' is not an absolute path") }
            switch words[1] {
            case "path": rules.append(.path(prefix: words[2], verdict: verdict))
            case "exe": rules.append(.executable(prefix: words[2], verdict: verdict))
            default: throw fail("expected 'path' or 'exe' after '\(words[0])', found '\(words[1])'")
            }
        }
    }

    private static func verdict(_ word: String) -> Event.Verdict? {
        switch word {
        case "allow": .allow
        case "deny": .deny
        default: nil
        }
    }
}

/// A policy file that cannot be read, with the line at fault.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var line: Int
    public var reason: String

    public init(source: String, line: Int, reason: String) {
        self.source = source
        self.line = line
        self.reason = reason
    }

    public var description: String {
        line > 0 ? "\(source):\(line): \(reason)" : "\(source): \(reason)"
    }
}
