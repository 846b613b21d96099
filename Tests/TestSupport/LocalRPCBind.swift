import AuthRelayHarness
import ONCRPC
import Synchronization
import SystemSupport

/// This machine's rpcbind, for the tests that register with it.
package enum LocalRPCBind {
    /// Whether rpcbind runs here (CI starts it; tests that need it check).
    package static var isRunning: Bool { RPCBind.localSocketPath != nil }

    /// `rpcinfo ARGUMENTS` run to its end (bounded); its status and output.
    package static func rpcinfo(_ arguments: [String]) throws(HarnessError) -> (status: Int32, output: String) {
        try ChildProcess.run("/usr/sbin/rpcinfo", arguments, timeout: .seconds(20))
    }

    /// `rpcinfo -p` as rows of fields: program, version, protocol, port[, name].
    package static func entries() throws(HarnessError) -> [[String]] {
        try rpcinfo(["-p"]).output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    }
}

/// Program numbers handed out by this process so far.
private let programNumbersIssued = Atomic<UInt32>(0)

/// A program number of the transient range (0x40000000-0x5fffffff) per call, so
/// tests that use the machine's rpcbind never share a registration (a second
/// registration of a number replaces the first). 29 bits: the low 20 bits of
/// the pid keep test processes apart (pids are unique among running processes,
/// and up to 2^20 they map one to one), and a process-wide counter in the other
/// 9 keeps the calls of one process apart: 512 before it wraps, far more than
/// the tests ask for, and a wrapped number's daemon stopped long before.
package func uniqueProgramNumber() -> UInt32 {
    let call = programNumbersIssued.wrappingAdd(1, ordering: .relaxed).oldValue
    return 0x4000_0000 | (UInt32(truncatingIfNeeded: Processes.currentID) & 0xF_FFFF) << 9 | (call & 0x1FF)
}
