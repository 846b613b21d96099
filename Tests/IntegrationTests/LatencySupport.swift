import AuthRelayHarness
import Foundation
import SystemSupport
import TestSupport
import Testing

/// One scenario object of `authrelay latency ... --json FILE`.
struct LatencyScenario {
    let fields: [String: Any]

    var name: String { fields["name"] as? String ?? "?" }
    func number(_ key: String) -> Double? { (fields[key] as? NSNumber)?.doubleValue }
    func integer(_ key: String) -> Int? { (fields[key] as? NSNumber)?.intValue }
    var percentiles: [Double] { ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"].compactMap { number($0) } }
    func string(_ key: String) -> String? { fields[key] as? String }
}

/// Runs `authrelay latency <arguments> --json FILE` and reads the file.
/// The run is bounded in time; a failed run fails the test with its output.
func runLatency(_ arguments: [String], timeout: Duration = .seconds(120), environment: [String: String]? = nil)
    throws -> (scenarios: [LatencyScenario], errors: [String], output: String) {
    let directory = try TemporaryDirectory(prefix: "authrelay-latency-test")
    defer { directory.remove() }
    let json = directory.file("latency.json")
    let child = try ChildProcess(BuiltPrograms.path("authrelay"), ["latency"] + arguments + ["--json", json, "--no-progress"],
                                 outputIn: directory, environment: environment)
    let status = try child.waitForExit(timeout: timeout)
    let output = child.output
    try #require(status == .exited(0), "authrelay latency \(arguments.joined(separator: " ")) exited with \(status):\n\(output)")
    let data = Data(try FileSystem.readFile(json))
    let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "not a JSON object:\n\(output)")
    let scenarios = (root["scenarios"] as? [[String: Any]] ?? []).map(LatencyScenario.init)
    return (scenarios, root["errors"] as? [String] ?? [], output)
}

/// Every scenario has its five percentiles in order, and a positive rate.
func expectSane(_ scenarios: [LatencyScenario], _ output: String) {
    for scenario in scenarios {
        let values = scenario.percentiles
        #expect(values.count == 5, "\(scenario.name): missing percentiles\n\(output)")
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 }, "\(scenario.name): percentiles out of order \(values)")
        #expect(values.allSatisfy { $0 >= 0 }, "\(scenario.name): negative latency \(values)")
        #expect((scenario.number("rate") ?? 0) > 0, "\(scenario.name): no rate\n\(output)")
    }
}
