import Foundation

/// Reads authrelayd's JSON Lines output back as JSON objects, for the tests
/// that check what a collector wrote.
package enum CollectorOutput {
    package struct NotAnObject: Error, CustomStringConvertible {
        package var line: String
        package var description: String { "not a JSON object: \(line)" }
    }

    /// The lines of the file at `path` as JSON objects (every line must parse);
    /// no file reads as no lines.
    package static func lines(atPath path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return try data.split(separator: UInt8(ascii: "\n")).map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw NotAnObject(line: String(decoding: line, as: UTF8.self))
            }
            return object
        }
    }

    /// The event lines, of one agent when `agent` is given.
    package static func events(of lines: [[String: Any]], agent: String? = nil) -> [[String: Any]] {
        lines.filter { $0["type"] as? String == "event" && (agent == nil || $0["agent_id"] as? String == agent) }
    }

    /// The sequence numbers of the event lines, in output order.
    package static func sequences(of lines: [[String: Any]], agent: String? = nil) -> [UInt64] {
        events(of: lines, agent: agent).compactMap { ($0["seq"] as? NSNumber)?.uint64Value }
    }
}
