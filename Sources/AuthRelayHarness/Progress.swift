import SystemSupport

/// Progress lines on stderr, so a person sees a long run (a benchmark, the
/// demo) move. `update` shows at most one line a second, and only once the
/// run has taken longer than a second: short runs print nothing.
package final class Progress {
    private let label: String
    private let started = SystemClock.monotonicNanoseconds()
    private var lastPrinted: UInt64 = 0
    package var enabled: Bool

    package init(label: String, enabled: Bool = true) {
        self.label = label
        self.enabled = enabled
    }

    /// Shows `text` if a second has passed since the start and since the last line.
    package func update(_ text: @autoclosure () -> String) {
        guard enabled else { return }
        let now = SystemClock.monotonicNanoseconds()
        guard now - started >= 1_000_000_000, now - lastPrinted >= 1_000_000_000 else { return }
        lastPrinted = now
        let tenths = (now - started + 50_000_000) / 100_000_000
        Processes.writeToStandardError("\(label): \(text()) (\(tenths / 10).\(tenths % 10) s)\n")
    }

    /// A line that always shows (a phase that starts, a skipped condition, a bound that applied).
    package func note(_ text: String) {
        guard enabled else { return }
        Processes.writeToStandardError("\(label): \(text)\n")
    }
}
