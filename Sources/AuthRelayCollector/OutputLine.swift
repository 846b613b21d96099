import ONCRPC

/// One line of the JSON Lines output (Docs/Protocol.md, "JSON Lines output"):
/// the format's one schema. The writer (`OutputLineWriter`) takes every field
/// name and fixed value from here; `SinkReplay` and the tests decode with it.
///
/// Field names are stable: fields may be added, none is renamed or removed.
package enum OutputLine: Equatable, Sendable {
    /// `"type":"event"`: one authorization decision.
    case event(EventLine)
    /// `"type":"loss"`: events that will never arrive.
    case loss(LossLine)

    /// Every field name of the format.
    package enum Key: String, CodingKey, CaseIterable, Sendable {
        case type, source, reason
        case agentID = "agent_id"
        case bootID = "boot_id"
        case sequence = "seq"
        case timestampNanoseconds = "timestamp_ns"
        case kind, verdict
        case decisionNanoseconds = "decision_ns"
        case pid, ppid, uid, gid, flags
        case executablePath = "exe_path"
        case targetPath = "target_path"
        case digest
        case count
        case beforeSequence = "before_seq"
        case firstSequence = "first_seq"
        case lastSequence = "last_seq"
        case receivedNanoseconds = "received_ns"
        case peerUID = "peer_uid"
        case peerGID = "peer_gid"
        case peerPID = "peer_pid"
    }

    /// The values of `type`.
    package enum LineType: String, Decodable, CaseIterable, Sendable {
        case event, loss
    }

    /// The values of an event's `source`.
    package enum Source: String, Decodable, CaseIterable, Sendable {
        /// Version 2 REPORT_BATCH: with agent and boot ids, de-duplicated.
        case batch
        /// Version 1 REPORT_EVENT: no ids, not de-duplicated.
        case legacy
    }

    /// The values of a loss's `reason`.
    package enum LossReason: String, Decodable, CaseIterable, Sendable {
        case agentDropped = "agent_dropped"
        case sequenceGap = "sequence_gap"
    }

    package struct EventLine: Equatable, Sendable {
        package var source: Source
        /// Batch events only.
        package var agentID: String?
        package var bootID: String?
        package var sequence: UInt64
        package var timestampNanoseconds: UInt64
        /// "open", "exec", or "kind-N" for a value this collector does not know.
        package var kind: String
        /// "allow", "deny", or "verdict-N".
        package var verdict: String
        package var decisionNanoseconds: UInt64
        package var pid: Int32
        package var ppid: Int32
        package var uid: UInt32
        package var gid: UInt32
        package var flags: UInt32
        package var executablePath: String
        package var targetPath: String
        /// Lowercase hex, "" when empty.
        package var digest: String
        package var receivedNanoseconds: UInt64
        /// Unix socket only.
        package var peer: PeerCredentials?
    }

    package struct LossLine: Equatable, Sendable {
        /// The reason with its fields (`count`, `before_seq`, `first_seq`, `last_seq`).
        package var loss: LossRecord
        package var agentID: String
        package var bootID: String
        package var receivedNanoseconds: UInt64
        package var peer: PeerCredentials?
    }
}

extension OutputLine: Decodable {
    package init(from decoder: any Decoder) throws {
        let line = try decoder.container(keyedBy: Key.self)
        let peer = try Self.peer(in: line)
        switch try line.decode(LineType.self, forKey: .type) {
        case .event:
            self = .event(EventLine(
                source: try line.decode(Source.self, forKey: .source),
                agentID: try line.decodeIfPresent(String.self, forKey: .agentID),
                bootID: try line.decodeIfPresent(String.self, forKey: .bootID),
                sequence: try line.decode(UInt64.self, forKey: .sequence),
                timestampNanoseconds: try line.decode(UInt64.self, forKey: .timestampNanoseconds),
                kind: try line.decode(String.self, forKey: .kind),
                verdict: try line.decode(String.self, forKey: .verdict),
                decisionNanoseconds: try line.decode(UInt64.self, forKey: .decisionNanoseconds),
                pid: try line.decode(Int32.self, forKey: .pid),
                ppid: try line.decode(Int32.self, forKey: .ppid),
                uid: try line.decode(UInt32.self, forKey: .uid),
                gid: try line.decode(UInt32.self, forKey: .gid),
                flags: try line.decode(UInt32.self, forKey: .flags),
                executablePath: try line.decode(String.self, forKey: .executablePath),
                targetPath: try line.decode(String.self, forKey: .targetPath),
                digest: try line.decode(String.self, forKey: .digest),
                receivedNanoseconds: try line.decode(UInt64.self, forKey: .receivedNanoseconds),
                peer: peer))
        case .loss:
            let count = try line.decode(UInt64.self, forKey: .count)
            let loss: LossRecord
            switch try line.decode(LossReason.self, forKey: .reason) {
            case .agentDropped:
                loss = .agentDropped(count: count, beforeSequence: try line.decode(UInt64.self, forKey: .beforeSequence))
            case .sequenceGap:
                let first = try line.decode(UInt64.self, forKey: .firstSequence)
                let last = try line.decode(UInt64.self, forKey: .lastSequence)
                guard first <= last, last &- first &+ 1 == count else {
                    throw DecodingError.dataCorruptedError(forKey: .count, in: line, debugDescription: "not last_seq - first_seq + 1")
                }
                loss = .sequenceGap(first: first, last: last)
            }
            self = .loss(LossLine(loss: loss, agentID: try line.decode(String.self, forKey: .agentID),
                                  bootID: try line.decode(String.self, forKey: .bootID),
                                  receivedNanoseconds: try line.decode(UInt64.self, forKey: .receivedNanoseconds), peer: peer))
        }
    }

    /// `peer_uid`, `peer_gid` and `peer_pid`: all three, or none.
    private static func peer(in line: KeyedDecodingContainer<Key>) throws -> PeerCredentials? {
        guard line.contains(.peerUID) else { return nil }
        return PeerCredentials(pid: try line.decode(Int32.self, forKey: .peerPID), uid: try line.decode(UInt32.self, forKey: .peerUID),
                               gid: try line.decode(UInt32.self, forKey: .peerGID))
    }
}
