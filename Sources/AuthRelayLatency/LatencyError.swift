import AuthRelayHarness

/// Why a latency run could not be done, in words a user can act on: the
/// harness's error, since most failures are of a collector or child it runs.
package typealias LatencyError = HarnessError
