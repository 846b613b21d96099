import AuthRelay
import TestSupport
import Testing

/// What every bad-input test ends with: a valid client is served on tcp and unix.
func expectServed(_ daemon: StartedCollector, sequence: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
    for endpoint in [daemon.tcp, daemon.unix] {
        let client = CollectorClient(endpoint: endpoint, timeout: .seconds(5))
        do {
            let ack = try client.report(Sample.numberedBatch(agent: "valid-\(endpoint.transport)", count: 3, firstSequence: sequence))
            #expect(ack.status == .ok, sourceLocation: sourceLocation)
        } catch {
            Issue.record("a valid client was not served over \(endpoint): \(error)", sourceLocation: sourceLocation)
        }
    }
}
