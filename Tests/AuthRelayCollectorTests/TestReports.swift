@testable import AuthRelayCollector
import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// Reports built the way the handler edge lays them out: the bytes owned
/// here (freed with this object), viewed by `ReceivedEvent` and `ReceivedBatch`.
final class TestReports {
    private var storage: [UnsafeMutableRawBufferPointer] = []

    deinit { storage.forEach { $0.deallocate() } }

    /// A view of a copy of `bytes`, valid while this object lives.
    func view(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        copy.copyBytes(from: bytes)
        storage.append(copy)
        return UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count])
    }

    func view(_ text: String) -> UnsafeRawBufferPointer { view(Array(text.utf8)) }

    func event(_ sequence: UInt64, exe: [UInt8] = Array("/usr/bin/cat".utf8), target: [UInt8] = Array("/etc/hosts".utf8),
               digest: [UInt8] = [0xAB, 0x01], kind: UInt32 = 1, verdict: UInt32 = 0) -> ReceivedEvent {
        ReceivedEvent(sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000 &+ sequence, kind: kind, verdict: verdict,
                      decisionNanoseconds: 1500, pid: 4242, ppid: 1, uid: 1000, gid: 1000, flags: 0,
                      executablePath: view(exe), targetPath: view(target), digest: view(digest))
    }

    /// A batch of `count` contiguous events from `first` (or `sequences` as given).
    func batch(agent: String = "agent-1", boot: String = "boot-1", first: UInt64, count: Int, dropped: UInt64 = 0,
               sequences: [UInt64]? = nil) -> ReceivedBatch {
        let numbers = sequences ?? (0..<count).map { first &+ UInt64($0) }
        return ReceivedBatch(agentID: view(agent), bootID: view(boot), firstSequence: first, dropped: dropped,
                             events: ContiguousArray(numbers.map { event($0) }))
    }

    /// A version 3 batch: events `sequences` and `losses` as given, with a status.
    func batchV3(agent: String = "agent-1", boot: String = "boot-1", first: UInt64, sequences: [UInt64],
                 losses: [LossRange] = [], status: AgentStatus = AgentStatus()) -> ReceivedBatch {
        ReceivedBatch(agentID: view(agent), bootID: view(boot), firstSequence: first, dropped: 0,
                      events: ContiguousArray(sequences.map { event($0) }), losses: ContiguousArray(losses), status: status)
    }

    func bootEnd(agent: String = "agent-1", boot: String = "boot-1", ending: UInt32 = 1, last: UInt64 = 9,
                 reportedBy: [UInt8] = Array("boot-2".utf8)) -> ReceivedBootEnd {
        ReceivedBootEnd(agentID: view(agent), bootID: view(boot), ending: ending, lastSequence: last, endedNanoseconds: 77,
                        reportedBy: view(reportedBy))
    }
}

/// Keeps what it is given (copied: the views end with the call), or fails on demand.
final class MemorySink: EventSink {
    struct Write: Equatable {
        /// nil for a version 1 event.
        var agentID: String?
        var bootID: String?
        var sequences: [UInt64]
        var losses: [LossRecord]
        var peer: PeerCredentials?
    }

    private(set) var writes: [Write] = []
    /// Boot ends and state_lost lines, as (agent id, boot id, note).
    private(set) var notes: [(agentID: String, bootID: String, note: String)] = []
    /// Thrown by the next writes while set.
    var failure: SinkError?

    var writtenSequences: [UInt64] { writes.flatMap(\.sequences) }
    var losses: [LossRecord] { writes.flatMap(\.losses) }

    func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError) {
        if let failure { throw failure }
        writes.append(Write(agentID: context.agentID.map { String(decoding: $0, as: UTF8.self) },
                            bootID: context.bootID.map { String(decoding: $0, as: UTF8.self) },
                            sequences: events.map(\.sequence), losses: losses, peer: context.peer))
    }

    func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError) {
        if let failure { throw failure }
        writes.append(Write(agentID: nil, bootID: nil, sequences: [event.sequence], losses: [], peer: context.peer))
    }

    func write(note: CollectorNote, context: ReportContext) throws(SinkError) {
        if let failure { throw failure }
        let text = switch note {
        case .bootEnd(let ending, let last, _, let by): "boot_end \(ending) \(last) \(String(decoding: by, as: UTF8.self))"
        case .stateLost(_, let first): "state_lost \(first)"
        }
        notes.append((String(decoding: context.agentID!, as: UTF8.self), String(decoding: context.bootID!, as: UTF8.self), text))
    }

    var position: SinkPosition? { nil }
    func sync() throws(SinkError) {}
    func tick() {}
    func close() {}
}

extension Logger {
    /// Says nothing: the tests check values, not logs.
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
}
