import AuthRelayProtocol

/// Writes the lines of the JSON Lines output (Docs/Protocol.md, "JSON Lines
/// output") into a `JSONLineBuffer`, straight from the received values.
///
/// Every field name and fixed value comes from `OutputLine`, the schema the
/// reader decodes with. The text between the values is laid out once
/// (`LineText`), and the fields all lines of a report share are formatted once
/// per report; per event only numbers and strings are formatted: no String
/// per field, no allocation per event.
final class OutputLineWriter {
    private let text = LineText.shared
    /// The fields all lines of a report share, formatted once per report (not
    /// in the output buffer: copying from a buffer that grows would move its bytes).
    private let shared = JSONLineBuffer(capacity: 512)

    /// Appends one "event" line per event, all sharing `context`.
    func appendEvents(_ events: some Collection<ReceivedEvent>, context: ReportContext, to buffer: JSONLineBuffer) {
        guard !events.isEmpty else { return }
        shared.removeAll()
        if let agentID = context.agentID {
            shared.append(bytes: text.batchEventStart)
            shared.appendQuoted(agentID)
            shared.append(text.bootID)
            shared.appendQuoted(context.bootID ?? UnsafeRawBufferPointer(start: nil, count: 0))
            shared.append(text.sequence)
        } else {
            shared.append(bytes: text.legacyEventStart)
        }
        let prefixLength = shared.count
        appendTrailer(context, to: shared)
        let prefix = UnsafeRawBufferPointer(rebasing: shared.bytes[0..<prefixLength])
        let trailer = UnsafeRawBufferPointer(rebasing: shared.bytes[prefixLength...])
        for event in events {
            buffer.append(bytes: prefix)
            appendEventFields(event, to: buffer)
            buffer.append(bytes: trailer)
        }
    }

    /// Appends one "loss" line (a batch's, or one found at start: `context` has its ids).
    func appendLoss(_ loss: LossRecord, context: ReportContext, to buffer: JSONLineBuffer) {
        let reason: OutputLine.LossReason = switch loss {
        case .agentDropped: .agentDropped
        case .sequenceGap: .sequenceGap
        case .range(_, _, let reason): reason.lineReason
        }
        buffer.append(bytes: text.lossStart[reason]!)
        appendIDs(context, to: buffer)
        buffer.append(text.count)
        buffer.append(loss.count)
        switch loss {
        case .agentDropped(_, let before):
            buffer.append(text.beforeSequence)
            buffer.append(before)
        case .sequenceGap(let first, let last), .range(let first, let last, _):
            buffer.append(text.firstSequence)
            buffer.append(first)
            buffer.append(text.lastSequence)
            buffer.append(last)
        }
        appendTrailer(context, to: buffer)
    }

    /// Appends one "boot_end" or "state_lost" line (`context` has its ids).
    func appendNote(_ note: CollectorNote, context: ReportContext, to buffer: JSONLineBuffer) {
        switch note {
        case .bootEnd(let ending, let lastSequence, let endedNanoseconds, let reportedBy):
            buffer.append(bytes: text.bootEndStart)
            appendIDs(context, to: buffer)
            buffer.append(ending == .clean ? text.endingClean : text.endingUnclean)
            buffer.append(text.lastSequence)
            buffer.append(lastSequence)
            buffer.append(text.endedNanoseconds)
            buffer.append(endedNanoseconds)
            buffer.append(text.reportedBy)
            buffer.appendQuoted(reportedBy)
        case .stateLost(let startedNanoseconds, let firstSequence):
            buffer.append(bytes: text.stateLostStart)
            appendIDs(context, to: buffer)
            buffer.append(text.firstSequence)
            buffer.append(firstSequence)
            buffer.append(text.startedNanoseconds)
            buffer.append(startedNanoseconds)
        }
        appendTrailer(context, to: buffer)
    }

    /// The agent id (the start of the line ends with its key), then `,"boot_id":` and the boot id.
    private func appendIDs(_ context: ReportContext, to buffer: JSONLineBuffer) {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        buffer.appendQuoted(context.agentID ?? empty)
        buffer.append(text.bootID)
        buffer.appendQuoted(context.bootID ?? empty)
    }

    /// `,"received_ns":N[,"peer_uid":U,"peer_gid":G,"peer_pid":P]}` and the newline.
    private func appendTrailer(_ context: ReportContext, to buffer: JSONLineBuffer) {
        buffer.append(text.receivedNanoseconds)
        buffer.append(context.receivedNanoseconds)
        if let peer = context.peer {
            buffer.append(text.peerUID)
            buffer.append(UInt64(peer.uid))
            buffer.append(text.peerGID)
            buffer.append(UInt64(peer.gid))
            buffer.append(text.peerPID)
            buffer.append(Int64(peer.pid))
        }
        buffer.append(text.end)
    }

    /// Everything from the seq value to the digest.
    private func appendEventFields(_ event: ReceivedEvent, to buffer: JSONLineBuffer) {
        buffer.append(event.sequence)
        buffer.append(text.timestampNanoseconds)
        buffer.append(event.timestampNanoseconds)
        switch event.kind {
        case text.openKind: buffer.append(text.kindOpen)
        case text.execKind: buffer.append(text.kindExec)
        default:
            buffer.append(text.kind)
            appendName(Event.Kind.name(of: event.kind), to: buffer)  // rare: a String for it is fine
        }
        switch event.verdict {
        case text.allowVerdict: buffer.append(text.verdictAllow)
        case text.denyVerdict: buffer.append(text.verdictDeny)
        default:
            buffer.append(text.verdict)
            appendName(Event.Verdict.name(of: event.verdict), to: buffer)
        }
        buffer.append(text.decisionNanoseconds)
        buffer.append(event.decisionNanoseconds)
        buffer.append(text.pid)
        buffer.append(Int64(event.pid))
        buffer.append(text.ppid)
        buffer.append(Int64(event.ppid))
        buffer.append(text.uid)
        buffer.append(UInt64(event.uid))
        buffer.append(text.gid)
        buffer.append(UInt64(event.gid))
        buffer.append(text.flags)
        buffer.append(UInt64(event.flags))
        buffer.append(text.executablePath)
        buffer.appendQuoted(event.executablePath)
        buffer.append(text.targetPath)
        buffer.appendQuoted(event.targetPath)
        buffer.append(text.digest)
        buffer.appendQuotedHex(event.digest)
    }

    /// A name from AuthRelayProtocol's table ("kind--1", "verdict-7"), quoted.
    private func appendName(_ name: String, to buffer: JSONLineBuffer) {
        var name = name
        name.withUTF8 { buffer.appendQuoted(UnsafeRawBufferPointer($0)) }
    }
}

/// The JSON text between the values of the output's lines, built from
/// `OutputLine`'s names: `{"type":"event","source":"batch","agent_id":`,
/// `,"timestamp_ns":`, `,"kind":"open"`, ... Laid out once per process and
/// never freed (a table, like a literal); what is appended per event is a
/// `LineFragment`, copied as fast as a literal.
private struct LineText: @unchecked Sendable {
    // @unchecked: the bytes are written once, in init, and only read after.
    static let shared = LineText()

    typealias Key = OutputLine.Key

    let batchEventStart: UnsafeRawBufferPointer
    let legacyEventStart: UnsafeRawBufferPointer
    /// `{"type":"loss","reason":"R","agent_id":` for every reason.
    let lossStart: [OutputLine.LossReason: UnsafeRawBufferPointer]
    let bootEndStart: UnsafeRawBufferPointer
    let stateLostStart: UnsafeRawBufferPointer
    let bootID: LineFragment
    let sequence: LineFragment
    let timestampNanoseconds: LineFragment
    let kindOpen: LineFragment
    let kindExec: LineFragment
    /// `,"kind":` before the name of a kind this collector does not know (`"kind--1"`: Event.Kind's table, N signed).
    let kind: LineFragment
    let verdictAllow: LineFragment
    let verdictDeny: LineFragment
    let verdict: LineFragment
    let endingClean: LineFragment
    let endingUnclean: LineFragment
    let endedNanoseconds: LineFragment
    let reportedBy: LineFragment
    let startedNanoseconds: LineFragment
    let decisionNanoseconds: LineFragment
    let pid: LineFragment
    let ppid: LineFragment
    let uid: LineFragment
    let gid: LineFragment
    let flags: LineFragment
    let executablePath: LineFragment
    let targetPath: LineFragment
    let digest: LineFragment
    let count: LineFragment
    let beforeSequence: LineFragment
    let firstSequence: LineFragment
    let lastSequence: LineFragment
    let receivedNanoseconds: LineFragment
    let peerUID: LineFragment
    let peerGID: LineFragment
    let peerPID: LineFragment
    let end: LineFragment
    /// The wire values that have names (Event.Kind and Event.Verdict's table), held here to compare with per event.
    let openKind = Event.Kind.open.rawValue
    let execKind = Event.Kind.exec.rawValue
    let allowVerdict = Event.Verdict.allow.rawValue
    let denyVerdict = Event.Verdict.deny.rawValue

    private init() {
        /// `,"name":` (`{"name":` for the first field of a line).
        func key(_ key: Key, first: Bool = false) -> String { (first ? "{" : ",") + "\"\(key.stringValue)\":" }
        func string(_ value: String) -> String { "\"\(value)\"" }  // the fixed values need no escaping
        func lineStart(_ type: OutputLine.LineType, _ key2: Key, _ value: String) -> String {
            key(.type, first: true) + string(type.rawValue) + key(key2) + string(value)
        }
        batchEventStart = Self.laidOut(lineStart(.event, .source, OutputLine.Source.batch.rawValue) + key(.agentID))
        legacyEventStart = Self.laidOut(lineStart(.event, .source, OutputLine.Source.legacy.rawValue) + key(.sequence))
        var lossStart: [OutputLine.LossReason: UnsafeRawBufferPointer] = [:]
        for reason in OutputLine.LossReason.allCases {
            lossStart[reason] = Self.laidOut(lineStart(.loss, .reason, reason.rawValue) + key(.agentID))
        }
        self.lossStart = lossStart
        bootEndStart = Self.laidOut(key(.type, first: true) + string(OutputLine.LineType.bootEnd.rawValue) + key(.agentID))
        stateLostStart = Self.laidOut(key(.type, first: true) + string(OutputLine.LineType.stateLost.rawValue) + key(.agentID))
        bootID = LineFragment(key(.bootID))
        sequence = LineFragment(key(.sequence))
        timestampNanoseconds = LineFragment(key(.timestampNanoseconds))
        kindOpen = LineFragment(key(.kind) + string(Event.Kind.name(of: openKind)))
        kindExec = LineFragment(key(.kind) + string(Event.Kind.name(of: execKind)))
        kind = LineFragment(key(.kind))
        verdictAllow = LineFragment(key(.verdict) + string(Event.Verdict.name(of: allowVerdict)))
        verdictDeny = LineFragment(key(.verdict) + string(Event.Verdict.name(of: denyVerdict)))
        verdict = LineFragment(key(.verdict))
        endingClean = LineFragment(key(.ending) + string(OutputLine.Ending.clean.rawValue))
        endingUnclean = LineFragment(key(.ending) + string(OutputLine.Ending.unclean.rawValue))
        endedNanoseconds = LineFragment(key(.endedNanoseconds))
        reportedBy = LineFragment(key(.reportedBy))
        startedNanoseconds = LineFragment(key(.startedNanoseconds))
        decisionNanoseconds = LineFragment(key(.decisionNanoseconds))
        pid = LineFragment(key(.pid))
        ppid = LineFragment(key(.ppid))
        uid = LineFragment(key(.uid))
        gid = LineFragment(key(.gid))
        flags = LineFragment(key(.flags))
        executablePath = LineFragment(key(.executablePath))
        targetPath = LineFragment(key(.targetPath))
        digest = LineFragment(key(.digest))
        count = LineFragment(key(.count))
        beforeSequence = LineFragment(key(.beforeSequence))
        firstSequence = LineFragment(key(.firstSequence))
        lastSequence = LineFragment(key(.lastSequence))
        receivedNanoseconds = LineFragment(key(.receivedNanoseconds))
        peerUID = LineFragment(key(.peerUID))
        peerGID = LineFragment(key(.peerGID))
        peerPID = LineFragment(key(.peerPID))
        end = LineFragment("}\n")
    }

    private static func laidOut(_ text: String) -> UnsafeRawBufferPointer {
        let bytes = Array(text.utf8)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        storage.copyBytes(from: bytes)
        return UnsafeRawBufferPointer(storage)
    }
}
