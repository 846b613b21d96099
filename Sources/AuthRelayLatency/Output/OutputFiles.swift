import SystemSupport

/// Writes what `--json`, `--hgrm` and `--svg` ask for; the table goes to stdout.
package enum OutputFiles {
    /// Writes the requested files; returns lines saying what was written.
    package static func write(_ report: LatencyReport, json: String?, hgrmDirectory: String?, svg: String?) throws(LatencyError) -> [String] {
        var written: [String] = []
        if let json {
            try write(JSONWriter.render(report), to: json)
            written.append("json: \(json)")
        }
        if let hgrmDirectory {
            do {
                try FileSystem.makeDirectory(hgrmDirectory)  // or it is there already
            } catch {
                throw LatencyError("cannot create directory \(hgrmDirectory)", system: error)
            }
            var count = 0
            for result in report.results {
                guard let text = HgrmWriter.render(result) else { continue }
                try write(text, to: "\(hgrmDirectory)/\(HgrmWriter.fileName(report, result))")
                count += 1
            }
            written.append("hgrm: \(count) files in \(hgrmDirectory)\(count < report.results.count ? " (scenarios without samples have none)" : "")")
        }
        if let svg {
            try write(SVGChart.render(report), to: svg)
            written.append("svg: \(svg)")
        }
        return written
    }

    private static func write(_ text: String, to path: String) throws(LatencyError) {
        do {
            try FileSystem.writeFile(path, Array(text.utf8))
        } catch {
            throw LatencyError("cannot write \(path)", system: error)
        }
    }
}
