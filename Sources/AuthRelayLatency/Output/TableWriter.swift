/// The aligned table on stdout: one row per scenario, notes and errors below.
package enum TableWriter {
    package static func render(_ report: LatencyReport) -> String {
        let isAuthPath = report.results.contains { $0.authPath != nil }
        let hasRatios = report.results.contains { $0.comparedToC != nil }
        let hasEvents = report.subcommand == "batching"

        var header = ["scenario", "transport", "count"]
        if hasEvents { header += ["events", "collector"] }
        header += ["rate", "unit", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us"]
        if hasRatios { header += ["p50 vs C", "rate vs C"] }
        if isAuthPath { header += ["over budget", "delivered", "dropped"] }

        var rows: [[String]] = [header]
        for result in report.results {
            var row = [result.name, result.transport, "\(result.count)"]
            if hasEvents { row += [result.events.map { "\($0)" } ?? "-", result.collectorEvents.map { "\($0)" } ?? "-"] }
            row += [grouped(result.rate), result.rateUnit]
            let summary = result.summary
            row += [summary.p50, summary.p90, summary.p99, summary.p999, summary.max].map(microseconds)
            if hasRatios {
                row += result.comparedToC.map { ["\(fixed($0.p50Ratio, 2))x", "\(fixed($0.rateRatio, 2))x"] } ?? ["-", "-"]
            }
            if isAuthPath, let outcome = result.authPath {
                row += ["\(outcome.overBudget)", "\(outcome.delivered)", "\(outcome.dropped)"]
            }
            rows.append(row)
        }

        var text = "authrelay latency \(report.subcommand)\(report.quick ? " (--quick)" : "")\n"
        text += aligned(rows)
        let rowNotes = report.results.flatMap { result in result.notes.map { "\(result.name): \($0)" } }
        for note in report.notes + rowNotes { text += "  - \(note)\n" }
        for error in report.errors { text += "ERROR: \(error)\n" }
        return text
    }

    /// Left-aligns the name columns, right-aligns the numbers.
    static func aligned(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let left = Set(rows.first?.indices.filter { ["scenario", "transport", "unit"].contains(rows[0][$0]) } ?? [])
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        var text = ""
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                return left.contains(index) ? cell + padding : padding + cell
            }
            text += cells.joined(separator: "  ").trailingSpacesRemoved + "\n"
        }
        return text
    }

    static func microseconds(_ value: Double) -> String {
        value >= 10_000 ? grouped(value) : fixed(value, value >= 100 ? 0 : 1)
    }

    /// 1234567.8 -> "1,234,568".
    static func grouped(_ value: Double) -> String {
        let digits = Array(fixed(value, 0))
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 && digit != "-" && digits[index - 1] != "-" { text += "," }
            text.append(digit)
        }
        return text
    }
}

extension String {
    var trailingSpacesRemoved: String {
        var text = Substring(self)
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
