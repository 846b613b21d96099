/// Writes what `--json`, `--hgrm` and `--svg` ask for; the table goes to stdout.
public enum OutputFiles {
    /// Writes the requested files; returns lines saying what was written.
    public static func write(_ report: LatencyReport, json: String?, hgrmDirectory: String?, svg: String?) throws(LatencyError) -> [String] {
        var written: [String] = []
        if let json {
            try Files.write(JSONWriter.render(report), to: json)
            written.append("json: \(json)")
        }
        if let hgrmDirectory {
            try Files.makeDirectory(hgrmDirectory)
            var count = 0
            for result in report.results {
                guard let text = HgrmWriter.render(result) else { continue }
                try Files.write(text, to: "\(hgrmDirectory)/\(HgrmWriter.fileName(report, result))")
                count += 1
            }
            written.append("hgrm: \(count) files in \(hgrmDirectory)\(count < report.results.count ? " (scenarios without samples have none)" : "")")
        }
        if let svg {
            try Files.write(SVGChart.render(report), to: svg)
            written.append("svg: \(svg)")
        }
        return written
    }
}
