import AuthRelayProtocol
import ONCRPC

/// A report copied out of the call's memory, which the server frees when the
/// handler returns: what the poll loop hands the writer thread. The bytes of
/// every string and digest go into one array (one allocation per report, not
/// per event); `withReceived` lays the views back over it.
struct CopiedReport: Sendable {
    enum Kind: Sendable {
        case batchV2, batchV3, legacyEvent, bootEnd
    }

    /// A byte range of `bytes`.
    private struct Span: Sendable {
        var start: Int32
        var count: Int32
    }

    private struct Fixed: Sendable {
        var sequence: UInt64
        var timestampNanoseconds: UInt64
        var kind: UInt32
        var verdict: UInt32
        var decisionNanoseconds: UInt64
        var pid: Int32
        var ppid: Int32
        var uid: UInt32
        var gid: UInt32
        var flags: UInt32
        var executablePath: Span
        var targetPath: Span
        var digest: Span
    }

    let kind: Kind
    let peer: PeerCredentials?
    private var bytes: [UInt8] = []
    private var agentID = Span(start: 0, count: 0)
    private var bootID = Span(start: 0, count: 0)
    private var reportedBy = Span(start: 0, count: 0)
    private var firstSequence: UInt64 = 0
    private var dropped: UInt64 = 0
    private var losses: [LossRange] = []
    private var status: AgentStatus?
    private var events: [Fixed] = []
    private var ending: UInt32 = 0
    private var lastSequence: UInt64 = 0
    private var endedNanoseconds: UInt64 = 0

    /// The bytes a report holds: what the hand-off to the writer counts against its bound.
    var byteCount: Int { bytes.count + events.count * MemoryLayout<Fixed>.stride }

    /// A version 1 event's sequence (0 for other reports).
    var legacySequence: UInt64 { kind == .legacyEvent ? events[0].sequence : 0 }

    /// A version 2 or 3 batch (`kind` says which).
    init(batch: ReceivedBatch, kind: Kind, peer: PeerCredentials?) {
        self.kind = kind
        self.peer = peer
        var total = batch.agentID.count + batch.bootID.count
        for event in batch.events { total += event.executablePath.count + event.targetPath.count + event.digest.count }
        bytes.reserveCapacity(total)
        agentID = append(batch.agentID)
        bootID = append(batch.bootID)
        firstSequence = batch.firstSequence
        dropped = batch.dropped
        losses = Array(batch.losses)
        status = batch.status
        events.reserveCapacity(batch.events.count)
        for event in batch.events { events.append(copy(event)) }
    }

    /// A version 1 event.
    init(legacy event: ReceivedEvent, peer: PeerCredentials?) {
        kind = .legacyEvent
        self.peer = peer
        events = [copy(event)]
    }

    /// A version 3 boot end.
    init(bootEnd report: ReceivedBootEnd, peer: PeerCredentials?) {
        kind = .bootEnd
        self.peer = peer
        agentID = append(report.agentID)
        bootID = append(report.bootID)
        reportedBy = append(report.reportedBy)
        ending = report.ending
        lastSequence = report.lastSequence
        endedNanoseconds = report.endedNanoseconds
    }

    private mutating func append(_ view: UnsafeRawBufferPointer) -> Span {
        let start = bytes.count
        bytes.append(contentsOf: view)
        return Span(start: Int32(start), count: Int32(view.count))  // a record is at most 4.3 MB
    }

    private mutating func copy(_ event: ReceivedEvent) -> Fixed {
        Fixed(sequence: event.sequence, timestampNanoseconds: event.timestampNanoseconds, kind: event.kind, verdict: event.verdict,
              decisionNanoseconds: event.decisionNanoseconds, pid: event.pid, ppid: event.ppid, uid: event.uid, gid: event.gid,
              flags: event.flags, executablePath: append(event.executablePath), targetPath: append(event.targetPath),
              digest: append(event.digest))
    }

    // MARK: Views again, on the writer thread

    /// The batch as the core takes it (views valid during `body`).
    func withBatch<Result>(_ body: (ReceivedBatch) -> Result) -> Result {
        bytes.withUnsafeBytes { raw in
            var batch = ReceivedBatch()
            batch.agentID = Self.view(agentID, raw)
            batch.bootID = Self.view(bootID, raw)
            batch.firstSequence = firstSequence
            batch.dropped = dropped
            batch.losses = ContiguousArray(losses)
            batch.status = status
            batch.events.reserveCapacity(events.count)
            for event in events { batch.events.append(Self.event(event, raw)) }
            return body(batch)
        }
    }

    /// The version 1 event (views valid during `body`).
    func withLegacyEvent<Result>(_ body: (ReceivedEvent) -> Result) -> Result {
        bytes.withUnsafeBytes { raw in body(Self.event(events[0], raw)) }
    }

    /// The boot end (views valid during `body`).
    func withBootEnd<Result>(_ body: (ReceivedBootEnd) -> Result) -> Result {
        bytes.withUnsafeBytes { raw in
            body(ReceivedBootEnd(agentID: Self.view(agentID, raw), bootID: Self.view(bootID, raw), ending: ending,
                                 lastSequence: lastSequence, endedNanoseconds: endedNanoseconds,
                                 reportedBy: Self.view(reportedBy, raw)))
        }
    }

    private static func view(_ span: Span, _ raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard span.count > 0, let base = raw.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + Int(span.start), count: Int(span.count))
    }

    private static func event(_ fixed: Fixed, _ raw: UnsafeRawBufferPointer) -> ReceivedEvent {
        ReceivedEvent(sequence: fixed.sequence, timestampNanoseconds: fixed.timestampNanoseconds, kind: fixed.kind,
                      verdict: fixed.verdict, decisionNanoseconds: fixed.decisionNanoseconds, pid: fixed.pid, ppid: fixed.ppid,
                      uid: fixed.uid, gid: fixed.gid, flags: fixed.flags, executablePath: view(fixed.executablePath, raw),
                      targetPath: view(fixed.targetPath, raw), digest: view(fixed.digest, raw))
    }
}
