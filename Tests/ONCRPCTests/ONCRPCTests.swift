import SystemSupport
import TestSupport
import Testing

/// Every ONCRPC test runs in this one suite, one at a time: several of them time
/// calls against deadlines, and running them side by side on a 2-core machine would
/// blur those. This orders only the ONCRPC tests: `swift test` runs the suites of the
/// other targets (AuthRelayTests, IntegrationTests) in parallel in the same process,
/// so the time bounds keep slack for a loaded machine, and a test that binds a port
/// again must expect another suite's socket to be given it meanwhile (TrapTests holds
/// it). The whole suite takes a few seconds.
@Suite(.serialized) struct ONCRPCTests {
    init() { TestProcess.prepare() }
}

/// A program number from the user-defined range that nothing registers.
let unregisteredProgram: UInt32 = 0x3F0A_7E01

/// rpcbind answers here; CI starts it (`rpcbind -w`).
let rpcbindIsRunning = FileSystem.exists("/run/rpcbind.sock") || FileSystem.exists("/var/run/rpcbind.sock")
