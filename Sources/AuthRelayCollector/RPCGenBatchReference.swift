import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC

/// rpcgen's decode of a REPORT_BATCH argument, laid out as the handlers lay
/// the C structs: what `ViewBatchDecoder` must equal. For the unit tests and
/// the differential fuzz target (fuzz-view-decoder).
enum RPCGenBatchReference {
    /// `body` gets rpcgen's decode of `bytes` as a `ReceivedBatch` (views of the
    /// C strings, valid during `body`), or nil when rpcgen's routine rejects them.
    /// Trailing bytes are ignored, as the dispatcher's decode ignores them.
    static func decode<R>(_ bytes: UnsafeRawBufferPointer, _ version: ViewBatchDecoder.Version,
                          _ body: (ReceivedBatch?) -> R) -> R {
        var received = ReceivedBatch()
        let result: R?
        switch version {
        case .v2:
            result = AuthRelayProgram.eventBatch.decode(bytes, as: ar_event_batch.self) { batch in
                received.load(batch.pointee)
                return body(received)
            }
        case .v3:
            result = AuthRelayProgram.eventBatchV3.decode(bytes, as: ar3_event_batch.self) { batch in
                received.load(batch.pointee)
                return body(received)
            }
        }
        return result ?? body(nil)
    }
}

extension ReceivedBatch {
    /// The first field in which `self` and `other` differ (views compared by
    /// their bytes), or nil when every field is equal.
    func difference(from other: ReceivedBatch) -> String? {
        if !agentID.elementsEqual(other.agentID) { return "agentID" }
        if !bootID.elementsEqual(other.bootID) { return "bootID" }
        if firstSequence != other.firstSequence { return "firstSequence" }
        if dropped != other.dropped { return "dropped" }
        if losses != other.losses { return "losses" }
        if status != other.status { return "status" }
        if events.count != other.events.count { return "events.count \(events.count) vs \(other.events.count)" }
        for (index, (event, theirs)) in zip(events, other.events).enumerated() {
            if let field = event.difference(from: theirs) { return "events[\(index)].\(field)" }
        }
        return nil
    }
}

extension ReceivedEvent {
    func difference(from other: ReceivedEvent) -> String? {
        if sequence != other.sequence { return "sequence" }
        if timestampNanoseconds != other.timestampNanoseconds { return "timestampNanoseconds" }
        if kind != other.kind { return "kind" }
        if verdict != other.verdict { return "verdict" }
        if decisionNanoseconds != other.decisionNanoseconds { return "decisionNanoseconds" }
        if pid != other.pid || ppid != other.ppid { return "pid/ppid" }
        if uid != other.uid || gid != other.gid { return "uid/gid" }
        if flags != other.flags { return "flags" }
        if !executablePath.elementsEqual(other.executablePath) { return "executablePath" }
        if !targetPath.elementsEqual(other.targetPath) { return "targetPath" }
        if !digest.elementsEqual(other.digest) { return "digest" }
        return nil
    }
}
