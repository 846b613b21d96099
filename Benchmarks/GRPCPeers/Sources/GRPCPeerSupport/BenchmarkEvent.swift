public import GRPCBenchProto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bounds of rpcgen/authrelay.x, which the protobuf messages keep too.
public enum Bounds {
    public static let pathMax = 4096   // AR_PATH_MAX
    public static let digestMax = 64   // AR_DIGEST_MAX
    public static let idMax = 64       // AR_ID_MAX
    public static let batchMax = 512   // AR_BATCH_MAX

    /// Whether an event keeps the XDR bounds (what xdr_ar_event would refuse).
    public static func accepts(_ event: AuthrelayBench_Event) -> Bool {
        event.exePath.utf8.count <= pathMax && event.targetPath.utf8.count <= pathMax
            && event.digest.count <= digestMax
    }
}

/// The event every gRPC scenario sends: the same field values as legacy-reporter
/// and the ONC RPC benchmark's `BenchmarkEvent` (Sources/AuthRelayLatency/Scenarios):
/// exe /usr/bin/cat, target /tmp/legacy/file-N, a 32-byte digest, so both IPCs
/// carry the same payload.
public struct BenchmarkEvents: Sendable {
    public static let executablePath = "/usr/bin/cat"
    public static let targetPrefix = "/tmp/legacy/file-"
    public static let digestBytes = 32

    public let agentID: String
    public let bootID: String
    /// seq of event index 0 (legacy-reporter's -S, default 1).
    public let startSequence: UInt64
    private let pid: Int32
    private let ppid: Int32
    private let uid: UInt32
    private let gid: UInt32

    public init(agentID: String, startSequence: UInt64 = 1) {
        self.agentID = agentID
        self.startSequence = startSequence
        // Read once: two system calls per event would dominate a batch (as in legacy-reporter).
        pid = getpid()
        ppid = getppid()
        uid = getuid()
        gid = getgid()
        bootID = "boot-\(pid)"
    }

    /// Event number `index` (0-based).
    public func event(index: UInt64) -> AuthrelayBench_Event {
        var event = AuthrelayBench_Event()
        event.seq = startSequence &+ index
        event.timestampNs = Clock.realtimeNanoseconds()
        event.kind = index % 2 == 0 ? .open : .exec
        event.verdict = index % 7 == 6 ? .deny : .allow
        event.decisionNs = 1000 &+ index
        event.pid = pid
        event.ppid = ppid
        event.uid = uid
        event.gid = gid
        event.flags = 0
        event.exePath = Self.executablePath
        event.targetPath = Self.targetPrefix + String(index)
        event.digest = Data(Self.digest(index: index))
        return event
    }

    /// `count` events from `firstIndex`, with the batch header legacy-reporter sends.
    public func batch(firstIndex: UInt64, count: Int) -> AuthrelayBench_EventBatch {
        var batch = AuthrelayBench_EventBatch()
        batch.agentID = agentID
        batch.bootID = bootID
        batch.firstSeq = startSequence &+ firstIndex
        batch.dropped = 0
        batch.events.reserveCapacity(count)
        for k in 0..<UInt64(count) {
            batch.events.append(event(index: firstIndex + k))
        }
        return batch
    }

    /// Byte k of event i's digest is (i + k) & 0xff, as in legacy-reporter.
    static func digest(index: UInt64) -> [UInt8] {
        (0..<UInt64(digestBytes)).map { UInt8(truncatingIfNeeded: index &+ $0) }
    }
}
