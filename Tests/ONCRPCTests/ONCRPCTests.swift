import Glibc
import Testing

/// Every ONCRPC test runs in this one serialized suite: several of them time
/// calls against deadlines, which a 2-core machine running them side by side
/// would blur. The whole suite takes a few seconds.
@Suite(.serialized) struct ONCRPCTests {}

/// A program number from the user-defined range that nothing registers.
let unregisteredProgram: UInt32 = 0x3F0A_7E01

/// rpcbind answers here; CI starts it (`rpcbind -w`).
let rpcbindIsRunning = access("/run/rpcbind.sock", F_OK) == 0 || access("/var/run/rpcbind.sock", F_OK) == 0
