import SystemSupport

/// Reads the collector's JSON Lines output back: each event's decision time
/// and latency, and when it reached the collector, assigned to the demo phase
/// its decision fell in. Only the three integer fields are needed, so this
/// scans for them instead of parsing whole objects.
enum DemoOutput {
    /// Fills each phase's decision figures; returns the number of events read.
    static func read(_ path: String, into phases: inout [DemoReport.Phase], boundaries: [UInt64]) -> Int {
        guard let content = FileSystem.readText(path) else { return 0 }
        var events = 0
        for line in content.split(separator: "\n") {
            let text = String(line)
            guard text.contains("\"type\":\"event\""),
                  let decided = integer("timestamp_ns", in: text), let decision = integer("decision_ns", in: text),
                  let received = integer("received_ns", in: text)
            else { continue }
            events += 1
            guard let phase = boundaries.indices.dropLast().first(where: { decided >= boundaries[$0] && decided < boundaries[$0 + 1] }),
                  phase < phases.count else { continue }
            phases[phase].decisions += 1
            phases[phase].maxDecision = max(phases[phase].maxDecision, decision)
            let answered = decided + decision
            phases[phase].maxDeliveryDelay = max(phases[phase].maxDeliveryDelay, received > answered ? received - answered : 0)
        }
        return events
    }

    static func integer(_ field: String, in line: String) -> UInt64? {
        guard let start = line.firstRange(of: "\"\(field)\":") else { return nil }
        return UInt64(line[start.upperBound...].prefix { $0.isNumber })
    }
}
