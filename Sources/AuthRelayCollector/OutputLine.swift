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
    /// `"type":"boot_end"`: how a run of an agent ended (version 3 REPORT_BOOT_END).
    case bootEnd(BootEndLine)
    /// `"type":"state_lost"`: the collector started with neither its state nor its output.
    case stateLost(StateLostLine)

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
        case ending
        case endedNanoseconds = "ended_ns"
        case reportedBy = "reported_by"
        case startedNanoseconds = "started_ns"
        case receivedNanoseconds = "received_ns"
        case peerUID = "peer_uid"
        case peerGID = "peer_gid"
        case peerPID = "peer_pid"
    }

    /// The values of `type`.
    package enum LineType: String, Decodable, CaseIterable, Sendable {
        case event, loss
        case bootEnd = "boot_end"
        case stateLost = "state_lost"
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
        /// Version 2: a header's `dropped`.
        case agentDropped = "agent_dropped"
        /// Sequences skipped.
        case sequenceGap = "sequence_gap"
        /// Version 3 loss ranges, by the agent's reason.
        case queueFull = "queue_full"
        case spoolEvicted = "spool_evicted"
        case spoolCorrupt = "spool_corrupt"
        case refused
        /// Found by the collector at start: acknowledged, then gone from the output.
        case outputLost = "output_lost"
    }

    /// The values of a boot_end's `ending`.
    package enum Ending: String, Decodable, CaseIterable, Sendable {
        case clean, unclean
    }

    package struct EventLine: Equatable, Sendable {
        package var source: Source
        /// Batch events only.
        package var agentID: String?
        package var bootID: String?
        package var sequence: UInt64
        package var timestampNanoseconds: UInt64
        /// "open", "exec", or "kind-N" for a value this collector does not know (N signed, as the XDR enum is).
        package var kind: String
        /// "allow", "deny", or "verdict-N" (N signed).
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

    package struct BootEndLine: Equatable, Sendable {
        package var agentID: String
        /// The run that ended.
        package var bootID: String
        package var ending: Ending
        /// Clean: the last sequence the run assigned; unclean: the last that reached its spool.
        package var lastSequence: UInt64
        package var endedNanoseconds: UInt64
        /// The run that reported it.
        package var reportedBy: String
        package var receivedNanoseconds: UInt64
        package var peer: PeerCredentials?
    }

    package struct StateLostLine: Equatable, Sendable {
        /// The pair whose first batch showed that events were delivered before this collector's history.
        package var agentID: String
        package var bootID: String
        /// That batch's first_seq: the sequences below it are unknown, not lost.
        package var firstSequence: UInt64
        /// When the collector started without its state and output.
        package var startedNanoseconds: UInt64
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
                let (first, last) = try Self.range(in: line, count: count)
                loss = .sequenceGap(first: first, last: last)
            case let reason:
                let (first, last) = try Self.range(in: line, count: count)
                loss = .range(first: first, last: last, reason: RangeReason.allCases.first { $0.lineReason == reason }!)
            }
            self = .loss(LossLine(loss: loss, agentID: try line.decode(String.self, forKey: .agentID),
                                  bootID: try line.decode(String.self, forKey: .bootID),
                                  receivedNanoseconds: try line.decode(UInt64.self, forKey: .receivedNanoseconds), peer: peer))
        case .bootEnd:
            self = .bootEnd(BootEndLine(
                agentID: try line.decode(String.self, forKey: .agentID), bootID: try line.decode(String.self, forKey: .bootID),
                ending: try line.decode(Ending.self, forKey: .ending), lastSequence: try line.decode(UInt64.self, forKey: .lastSequence),
                endedNanoseconds: try line.decode(UInt64.self, forKey: .endedNanoseconds),
                reportedBy: try line.decode(String.self, forKey: .reportedBy),
                receivedNanoseconds: try line.decode(UInt64.self, forKey: .receivedNanoseconds), peer: peer))
        case .stateLost:
            self = .stateLost(StateLostLine(
                agentID: try line.decode(String.self, forKey: .agentID), bootID: try line.decode(String.self, forKey: .bootID),
                firstSequence: try line.decode(UInt64.self, forKey: .firstSequence),
                startedNanoseconds: try line.decode(UInt64.self, forKey: .startedNanoseconds),
                receivedNanoseconds: try line.decode(UInt64.self, forKey: .receivedNanoseconds), peer: peer))
        }
    }

    /// `first_seq` and `last_seq`, checked against `count`.
    private static func range(in line: KeyedDecodingContainer<Key>, count: UInt64) throws -> (UInt64, UInt64) {
        let first = try line.decode(UInt64.self, forKey: .firstSequence)
        let last = try line.decode(UInt64.self, forKey: .lastSequence)
        guard first <= last, LossRecord.count(first, last) == count else {
            throw DecodingError.dataCorruptedError(forKey: .count, in: line, debugDescription: "not last_seq - first_seq + 1")
        }
        return (first, last)
    }

    /// `peer_uid`, `peer_gid` and `peer_pid`: all three, or none.
    private static func peer(in line: KeyedDecodingContainer<Key>) throws -> PeerCredentials? {
        guard line.contains(.peerUID) else { return nil }
        return PeerCredentials(pid: try line.decode(Int32.self, forKey: .peerPID), uid: try line.decode(UInt32.self, forKey: .peerUID),
                               gid: try line.decode(UInt32.self, forKey: .peerGID))
    }
}
