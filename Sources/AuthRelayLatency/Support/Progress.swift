import AuthRelay
import AuthRelayProtocol
import Glibc

/// One progress line on stderr at most once a second, and only once a run has
/// taken longer than a second: short runs print nothing.
public final class Progress {
    private let label: String
    private let started = Timestamps.monotonic()
    private var lastPrinted: UInt64 = 0
    public var enabled: Bool

    public init(label: String, enabled: Bool = true) {
        self.label = label
        self.enabled = enabled
    }

    /// Shows `text` if a second has passed since the start and since the last line.
    public func update(_ text: @autoclosure () -> String) {
        guard enabled else { return }
        let now = Timestamps.monotonic()
        guard now - started >= 1_000_000_000, now - lastPrinted >= 1_000_000_000 else { return }
        lastPrinted = now
        let line = "\(label): \(text()) (\(fixed(Double(now - started) / 1e9, 1)) s)\n"
        writeToStandardError(line)
    }

    /// A line that always shows (a skipped condition, a bound that applied).
    public func note(_ text: String) {
        guard enabled else { return }
        writeToStandardError("\(label): \(text)\n")
    }
}

/// Writes to fd 2 directly (the C `stderr` global is not concurrency-safe in Swift 6).
func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}
