import Glibc

/// `--svg FILE`: the latency distribution of every scenario on one chart,
/// hand-written SVG. x: latency on a log scale; y: percentile on a "nines"
/// scale (0%, 90%, 99%, 99.9%, ...), so the tail that matters is as wide as the
/// body. One line per scenario: the colour tells the transport or condition,
/// the dash tells the client or design.
enum SVGChart {
    static let width = 1120.0
    static let height = 620.0
    static let plot = (left: 80.0, top: 56.0, right: 700.0, bottom: 540.0)
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                         "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939"]
    static let dashes = ["", "7 4", "2 3", "9 3 2 3"]

    /// A line: (latency in µs, percentile 0...100) points, lowest first.
    struct Line {
        var name: String
        var points: [(microseconds: Double, percentile: Double)]
    }

    static func render(_ report: LatencyReport) -> String {
        let lines = report.results.map(line)
        let values = lines.flatMap { $0.points.map(\.microseconds) }.filter { $0 > 0 }
        let low = floor(log10(max(values.min() ?? 1, 0.01)))
        let high = max(ceil(log10(max(values.max() ?? 10, report.budgetMicroseconds ?? 0))), low + 1)
        let counts = report.results.map(\.count).max() ?? 1000
        // Percentiles up to the count's resolution (99.9% for 2000 samples), "max" half a band above.
        let topNines = min(5, max(2, floor(log10(Double(max(counts, 10))))))
        let maxNines = topNines + 0.5

        func x(_ microseconds: Double) -> Double {
            let position = (log10(max(microseconds, pow10(low))) - low) / (high - low)
            return plot.left + position * (plot.right - plot.left)
        }
        func y(_ percentile: Double) -> Double {
            let nines = percentile >= 100 ? maxNines : min(topNines, -log10(1 - percentile / 100))
            return plot.bottom - nines / maxNines * (plot.bottom - plot.top)
        }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="16">authrelay latency \(escaped(report.subcommand)): latency distribution\(report.quick ? " (--quick)" : "")</text>

        """
        // Grid and axis labels.
        var decade = low
        while decade <= high {
            let position = fixed(x(pow10(decade)), 1)
            svg += "<line x1=\"\(position)\" y1=\"\(fixed(plot.top, 1))\" x2=\"\(position)\" y2=\"\(fixed(plot.bottom, 1))\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(position)\" y=\"\(fixed(plot.bottom + 18, 1))\" text-anchor=\"middle\">\(durationLabel(pow10(decade)))</text>\n"
            decade += 1
        }
        let candidates: [Double] = [0, 50, 90, 99, 99.9, 99.99, 99.999]
        var gridPercentiles = candidates.filter { (percentile: Double) -> Bool in
            percentile == 0 || -log10(1 - percentile / 100) <= topNines + 1e-9
        }
        gridPercentiles.append(100)
        for percentile in gridPercentiles {
            let position = fixed(y(percentile), 1)
            svg += "<line x1=\"\(fixed(plot.left, 1))\" y1=\"\(position)\" x2=\"\(fixed(plot.right, 1))\" y2=\"\(position)\" stroke=\"#ddd\"/>\n"
            let label = percentile == 100 ? "max" : "\(percentile == 0 ? "0" : percentileText(percentile))%"
            svg += "<text x=\"\(fixed(plot.left - 8, 1))\" y=\"\(fixed(y(percentile) + 4, 1))\" text-anchor=\"end\">\(label)</text>\n"
        }
        svg += "<rect x=\"\(fixed(plot.left, 1))\" y=\"\(fixed(plot.top, 1))\" width=\"\(fixed(plot.right - plot.left, 1))\" height=\"\(fixed(plot.bottom - plot.top, 1))\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += "<text x=\"\(fixed((plot.left + plot.right) / 2, 1))\" y=\"\(fixed(plot.bottom + 44, 1))\" text-anchor=\"middle\">latency (log scale)</text>\n"
        svg += "<text x=\"18\" y=\"\(fixed((plot.top + plot.bottom) / 2, 1))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(fixed((plot.top + plot.bottom) / 2, 1)))\">percentile of calls or decisions</text>\n"
        if let budget = report.budgetMicroseconds {
            let position = fixed(x(budget), 1)
            svg += "<line x1=\"\(position)\" y1=\"\(fixed(plot.top, 1))\" x2=\"\(position)\" y2=\"\(fixed(plot.bottom, 1))\" stroke=\"#444\" stroke-width=\"1.5\" stroke-dasharray=\"1 3\"/>\n"
            svg += "<text x=\"\(fixed(x(budget) - 4, 1))\" y=\"\(fixed(plot.top + 14, 1))\" text-anchor=\"end\" fill=\"#444\">budget \(durationLabel(budget))</text>\n"
        }

        // The lines and the legend.
        let styles = lineStyles(lines.map(\.name))
        for (index, line) in lines.enumerated() where !line.points.isEmpty {
            let path = line.points.map { "\(fixed(x($0.microseconds), 1)),\(fixed(y($0.percentile), 1))" }.joined(separator: " ")
            let dash = styles[index].dash.isEmpty ? "" : " stroke-dasharray=\"\(styles[index].dash)\""
            svg += "<polyline fill=\"none\" stroke=\"\(styles[index].color)\" stroke-width=\"2\"\(dash) points=\"\(path)\"><title>\(escaped(line.name))</title></polyline>\n"
            let legendY = plot.top + 8 + Double(index) * 18
            let dashLegend = styles[index].dash.isEmpty ? "" : " stroke-dasharray=\"\(styles[index].dash)\""
            svg += "<line x1=\"\(fixed(plot.right + 20, 1))\" y1=\"\(fixed(legendY, 1))\" x2=\"\(fixed(plot.right + 56, 1))\" y2=\"\(fixed(legendY, 1))\" stroke=\"\(styles[index].color)\" stroke-width=\"2\"\(dashLegend)/>\n"
            let result = report.results[index]
            svg += "<text x=\"\(fixed(plot.right + 62, 1))\" y=\"\(fixed(legendY + 4, 1))\">\(escaped(line.name)) (p50 \(durationLabel(result.summary.p50)), p99 \(durationLabel(result.summary.p99)))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// The points of a scenario: the histogram's percentile iteration, or the summary's five points.
    static func line(_ result: ScenarioResult) -> Line {
        if let latency = result.latency, latency.count > 0 {
            var points: [(Double, Double)] = []
            for step in latency.histogram.percentiles(ticksPerHalfDistance: 5) {
                points.append((Double(step.value) / 1000, step.percentileLevelIteratedTo))
            }
            points.append((Double(latency.histogram.maxRecorded) / 1000, 100))
            return Line(name: result.name, points: points)
        }
        let summary = result.summary
        return Line(name: result.name, points: [(summary.p50, 50), (summary.p90, 90), (summary.p99, 99), (summary.p999, 99.9), (summary.max, 100)])
    }

    /// Dash by the name's first word (client or design), colour by the rest (transport or condition).
    static func lineStyles(_ names: [String]) -> [(color: String, dash: String)] {
        var families: [String] = []
        var variants: [String] = []
        return names.map { name in
            let family = String(name.split(separator: "-").first ?? "")
            let variant = String(name.dropFirst(family.count))
            if !families.contains(family) { families.append(family) }
            if !variants.contains(variant) { variants.append(variant) }
            let familyIndex = families.firstIndex(of: family)!
            let variantIndex = variants.firstIndex(of: variant)!
            return (colors[variantIndex % colors.count], dashes[familyIndex % dashes.count])
        }
    }

    /// 0.5 -> "500 ns", 20 -> "20 µs", 1500 -> "1.5 ms", 1e6 -> "1 s".
    static func durationLabel(_ microseconds: Double) -> String {
        func trimmed(_ value: Double) -> String {
            let text = value >= 100 ? fixed(value, 0) : value >= 10 ? fixed(value, 1) : fixed(value, 2)
            var result = Substring(text)
            if result.contains(".") {
                while result.last == "0" { result = result.dropLast() }
                if result.last == "." { result = result.dropLast() }
            }
            return String(result)
        }
        if microseconds < 1 { return "\(trimmed(microseconds * 1000)) ns" }
        if microseconds < 1000 { return "\(trimmed(microseconds)) µs" }
        if microseconds < 1_000_000 { return "\(trimmed(microseconds / 1000)) ms" }
        return "\(trimmed(microseconds / 1_000_000)) s"
    }

    static func percentileText(_ percentile: Double) -> String {
        var text = Substring(fixed(percentile, 3))
        while text.last == "0" { text = text.dropLast() }
        if text.last == "." { text = text.dropLast() }
        return String(text)
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    static func pow10(_ exponent: Double) -> Double { pow(10, exponent) }
}
