import CAuthRelayRPC
import ONCRPC

/// Who sent a batch or event, and when it arrived: the fields every line of it shares.
struct ReportContext {
    /// Version 2's header ids; nil for a version 1 (legacy) event.
    var agentID: UnsafePointer<CChar>?
    var bootID: UnsafePointer<CChar>?
    /// CLOCK_REALTIME at arrival.
    var receivedNanoseconds: UInt64
    /// The reporter's kernel credentials (unix socket only).
    var peer: PeerCredentials?
}

/// What a batch lost before it: each becomes a "loss" line.
enum LossRecord: Equatable {
    /// The agent's header said it dropped `count` events before the batch starting at `beforeSequence`.
    case agentDropped(count: UInt64, beforeSequence: UInt64)
    /// Sequences `first...last` never arrived.
    case sequenceGap(first: UInt64, last: UInt64)
}

/// The JSON Lines format (Docs/Protocol.md, "JSON Lines output"). Field names
/// are stable: new fields may be added, none is renamed or removed.
enum EventLines {
    /// Appends one "event" line per event, all sharing `context`. `shared` is scratch
    /// space the caller keeps (not `buffer`: copying from a buffer that grows would move its bytes).
    static func appendEvents(_ events: UnsafeBufferPointer<ar_event>, context: ReportContext, to buffer: JSONLineBuffer,
                             shared: JSONLineBuffer) {
        guard !events.isEmpty else { return }
        // The fields every line shares are formatted once and copied per event.
        shared.removeAll()
        if context.agentID != nil {
            shared.append("{\"type\":\"event\",\"source\":\"batch\",\"agent_id\":")
            shared.appendQuoted(cString: context.agentID)
            shared.append(",\"boot_id\":")
            shared.appendQuoted(cString: context.bootID)
            shared.append(",\"seq\":")
        } else {
            shared.append("{\"type\":\"event\",\"source\":\"legacy\",\"seq\":")
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

    /// Appends one "loss" line.
    static func appendLoss(_ loss: LossRecord, context: ReportContext, to buffer: JSONLineBuffer) {
        switch loss {
        case .agentDropped(let count, let before):
            buffer.append("{\"type\":\"loss\",\"reason\":\"agent_dropped\",\"agent_id\":")
            buffer.appendQuoted(cString: context.agentID)
            buffer.append(",\"boot_id\":")
            buffer.appendQuoted(cString: context.bootID)
            buffer.append(",\"count\":")
            buffer.append(count)
            buffer.append(",\"before_seq\":")
            buffer.append(before)
        case .sequenceGap(let first, let last):
            buffer.append("{\"type\":\"loss\",\"reason\":\"sequence_gap\",\"agent_id\":")
            buffer.appendQuoted(cString: context.agentID)
            buffer.append(",\"boot_id\":")
            buffer.appendQuoted(cString: context.bootID)
            buffer.append(",\"count\":")
            buffer.append(last - first + 1)
            buffer.append(",\"first_seq\":")
            buffer.append(first)
            buffer.append(",\"last_seq\":")
            buffer.append(last)
        }
        buffer.append(",")
        appendTrailer(context, to: buffer)
    }

    /// `"received_ns":N[,"peer_uid":U,"peer_gid":G,"peer_pid":P]}` and the newline.
    private static func appendTrailer(_ context: ReportContext, to buffer: JSONLineBuffer) {
        buffer.append("\"received_ns\":")
        buffer.append(context.receivedNanoseconds)
        if let peer = context.peer {
            buffer.append(",\"peer_uid\":")
            buffer.append(UInt64(peer.uid))
            buffer.append(",\"peer_gid\":")
            buffer.append(UInt64(peer.gid))
            buffer.append(",\"peer_pid\":")
            buffer.append(Int64(peer.pid))
        }
        buffer.append("}\n")
    }

    /// Everything from the seq value to the comma before "received_ns".
    private static func appendEventFields(_ event: ar_event, to buffer: JSONLineBuffer) {
        buffer.append(UInt64(event.seq))
        buffer.append(",\"timestamp_ns\":")
        buffer.append(UInt64(event.timestamp_ns))
        switch event.kind.rawValue {
        case 1: buffer.append(",\"kind\":\"open\"")
        case 2: buffer.append(",\"kind\":\"exec\"")
        default:
            buffer.append(",\"kind\":\"kind-")
            buffer.append(UInt64(event.kind.rawValue))
            buffer.append("\"")
        }
        switch event.verdict.rawValue {
        case 0: buffer.append(",\"verdict\":\"allow\"")
        case 1: buffer.append(",\"verdict\":\"deny\"")
        default:
            buffer.append(",\"verdict\":\"verdict-")
            buffer.append(UInt64(event.verdict.rawValue))
            buffer.append("\"")
        }
        buffer.append(",\"decision_ns\":")
        buffer.append(UInt64(event.decision_ns))
        buffer.append(",\"pid\":")
        buffer.append(Int64(event.pid))
        buffer.append(",\"ppid\":")
        buffer.append(Int64(event.ppid))
        buffer.append(",\"uid\":")
        buffer.append(UInt64(event.uid))
        buffer.append(",\"gid\":")
        buffer.append(UInt64(event.gid))
        buffer.append(",\"flags\":")
        buffer.append(UInt64(event.flags))
        buffer.append(",\"exe_path\":")
        buffer.appendQuoted(cString: event.exe_path)
        buffer.append(",\"target_path\":")
        buffer.appendQuoted(cString: event.target_path)
        buffer.append(",\"digest\":")
        buffer.appendQuotedHex(event.digest.digest_val, count: Int(event.digest.digest_len))
        buffer.append(",")
    }
}
