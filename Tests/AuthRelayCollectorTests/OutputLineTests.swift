@testable import AuthRelayCollector
import AuthRelayProtocol
import ONCRPC
import SystemSupport
import Testing

/// The JSON Lines writer and the reader share one schema (`OutputLine`):
/// what the sink writes decodes to exactly what it was given.
@Suite("OutputLine")
struct OutputLineTests {
    let reports = TestReports()

    /// Writes through a `JSONLinesSink` into a new file, reads it back with `SinkReplay`.
    func roundTrip(_ write: (JSONLinesSink) throws -> Void) throws -> (lines: [OutputLine], text: String) {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "output-line")
        defer { FileSystem.removeTree(directory) }
        let path = directory + "/events.jsonl"
        let sink = try JSONLinesSink(path: path, policy: .never, rotateBytes: 0, keepFiles: 1, logger: .quiet)
        try write(sink)
        sink.close()
        var lines: [OutputLine] = []
        try SinkReplay.replay(files: [path], from: nil, logger: .quiet) { lines.append($0) }
        return (lines, try #require(FileSystem.readText(path)))
    }

    /// The line a reader should get for `event` (the writer's rules, restated: unknown enum values signed, as XDR's are).
    func expectedLine(_ event: ReceivedEvent, agent: [UInt8]?, boot: [UInt8]?, received: UInt64, peer: PeerCredentials?) -> OutputLine {
        let kind = switch event.kind {
        case 1: "open"
        case 2: "exec"
        default: "kind-\(Int32(bitPattern: event.kind))"
        }
        let verdict = switch event.verdict {
        case 0: "allow"
        case 1: "deny"
        default: "verdict-\(Int32(bitPattern: event.verdict))"
        }
        let hexDigits = Array("0123456789abcdef")
        let digest = String(event.digest.flatMap { [hexDigits[Int($0 >> 4)], hexDigits[Int($0 & 0x0F)]] })
        return .event(OutputLine.EventLine(
            source: agent == nil ? .legacy : .batch,
            agentID: agent.map { String(decoding: $0, as: UTF8.self) }, bootID: boot.map { String(decoding: $0, as: UTF8.self) },
            sequence: event.sequence, timestampNanoseconds: event.timestampNanoseconds, kind: kind, verdict: verdict,
            decisionNanoseconds: event.decisionNanoseconds, pid: event.pid, ppid: event.ppid, uid: event.uid, gid: event.gid,
            flags: event.flags, executablePath: String(decoding: event.executablePath, as: UTF8.self),
            targetPath: String(decoding: event.targetPath, as: UTF8.self), digest: digest,
            receivedNanoseconds: received, peer: peer))
    }

    /// Paths a reporter may send: non-ASCII, control characters, JSON's own
    /// syntax, invalid UTF-8 (each maximal invalid subpart one U+FFFD), none, the longest.
    static let paths: [[UInt8]] = [
        Array("/usr/bin/cat".utf8),
        Array("/home/zoë/文書/😀 file".utf8),
        Array("/tmp/\"quoted\"\\back\u{01}\n\r\t\u{08}\u{0C}\u{1F}\u{7F}".utf8),
        Array("/bin/".utf8) + [0xC3, 0x28, 0xE2, 0x82, 0x41, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0x80, 0xC0, 0xAF, 0xF4, 0x90],
        [],
        Array(repeating: UInt8(ascii: "x"), count: Event.maxPathBytes),
        Array("\u{FFFD}".utf8),
    ]

    @Test("batch events decode to every field written, extremes included")
    func batchEvents() throws {
        var events: ContiguousArray<ReceivedEvent> = []
        for (index, path) in Self.paths.enumerated() {
            events.append(ReceivedEvent(
                sequence: UInt64.max - UInt64(Self.paths.count - index), timestampNanoseconds: .max, kind: [1, 2, 0, 3, .max][index % 5],
                verdict: [0, 1, 2, .max][index % 4], decisionNanoseconds: index == 0 ? 0 : .max,
                pid: index.isMultiple(of: 2) ? .min : .max, ppid: index.isMultiple(of: 2) ? -1 : 0, uid: .max, gid: 0,
                flags: index == 0 ? 0 : .max, executablePath: reports.view(path), targetPath: reports.view(Self.paths[(index + 1) % Self.paths.count]),
                digest: reports.view(index == 0 ? [] : (0..<Event.maxDigestBytes).map { UInt8(truncatingIfNeeded: $0 * 37 + index) })))
        }
        let agent: [UInt8] = [0x61, 0xE2, 0x82, 0x0A, 0x22]
        let boot = Array(String(repeating: "b", count: Event.maxIDBytes).utf8)
        let peer = PeerCredentials(pid: .max, uid: .max, gid: 0)
        let context = ReportContext(agentID: reports.view(agent), bootID: reports.view(boot), receivedNanoseconds: .max, peer: peer)
        let (lines, _) = try roundTrip { sink in try sink.write(events: events[...], losses: [], context: context) }
        #expect(lines.count == events.count)
        for (line, event) in zip(lines, events) {
            #expect(line == expectedLine(event, agent: agent, boot: boot, received: .max, peer: peer))
        }
        guard case .event(let first) = lines.first else { return }
        #expect(first.agentID == "a\u{FFFD}\n\"")
    }

    @Test("numbers of every length decode to themselves")
    func numbers() throws {
        var values: [UInt64] = [0, 1, .max, .max - 1]
        var power: UInt64 = 1
        for _ in 0..<19 {
            power *= 10
            values += [power - 1, power, power + 1]
        }
        let signed: [Int32] = [.min, .min + 1, -1, 0, 1, -10, -99, -100, 100, .max]
        let events = values.enumerated().map { index, value in
            ReceivedEvent(sequence: value, timestampNanoseconds: ~value, kind: 1, verdict: 0, decisionNanoseconds: value / 3,
                          pid: signed[index % signed.count], ppid: signed[(index + 3) % signed.count],
                          uid: UInt32(truncatingIfNeeded: value), gid: UInt32(truncatingIfNeeded: value >> 32),
                          flags: UInt32(truncatingIfNeeded: value / 7), executablePath: reports.view("/e"), targetPath: reports.view("/t"),
                          digest: reports.view([]))
        }
        let (lines, _) = try roundTrip { sink in
            for (event, value) in zip(events, values) {
                try sink.writeLegacy(event, context: ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: value, peer: nil))
            }
        }
        #expect(lines == zip(events, values).map { expectedLine($0, agent: nil, boot: nil, received: $1, peer: nil) })
    }

    @Test("loss lines decode to the loss, the ids, the arrival and the peer")
    func losses() throws {
        let losses: [LossRecord] = [
            .sequenceGap(first: 1, last: .max - 1), .agentDropped(count: .max, beforeSequence: .max),
            .sequenceGap(first: 7, last: 7), .agentDropped(count: 1, beforeSequence: 1),
        ]
        for peer in [nil, PeerCredentials(pid: .min, uid: 0, gid: .max)] {
            let context = ReportContext(agentID: reports.view("agent é"), bootID: reports.view("boot\t1"), receivedNanoseconds: 0, peer: peer)
            let (lines, _) = try roundTrip { sink in
                try sink.write(events: [reports.event(1)][...], losses: losses, context: context)
            }
            #expect(Array(lines.dropLast()) == losses.map {
                OutputLine.loss(OutputLine.LossLine(loss: $0, agentID: "agent é", bootID: "boot\t1", receivedNanoseconds: 0, peer: peer))
            })
            #expect(lines.last == expectedLine(reports.event(1), agent: Array("agent é".utf8), boot: Array("boot\t1".utf8),
                                               received: 0, peer: peer))
        }
    }

    @Test("version 1 events decode as legacy: no ids")
    func legacyEvents() throws {
        let events = Self.paths.enumerated().map { reports.event(UInt64($0.offset), exe: $0.element, target: $0.element, digest: $0.element) }
        let (lines, _) = try roundTrip { sink in
            for event in events {
                try sink.writeLegacy(event, context: ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: 5, peer: nil))
            }
        }
        #expect(lines == events.map { expectedLine($0, agent: nil, boot: nil, received: 5, peer: nil) })
    }

    @Test("the bytes are the documented format, field for field (Docs/Protocol.md)")
    func exactBytes() throws {
        let event = ReceivedEvent(sequence: 1, timestampNanoseconds: 2, kind: 1, verdict: 1, decisionNanoseconds: 3, pid: -4, ppid: 5,
                                  uid: 6, gid: 7, flags: 3, executablePath: reports.view("/bin/a\"b"), targetPath: reports.view("/t"),
                                  digest: reports.view([0xDE, 0xAD]))
        let other = ReceivedEvent(sequence: 2, timestampNanoseconds: 0, kind: 0xFFFF_FFFF, verdict: 9, decisionNanoseconds: 0, pid: 0,
                                  ppid: 0, uid: 0, gid: 0, flags: 0, executablePath: reports.view([0xFF]), targetPath: reports.view(""),
                                  digest: reports.view([]))
        let peer = PeerCredentials(pid: 10, uid: 11, gid: 12)
        let batch = ReportContext(agentID: reports.view("a"), bootID: reports.view("b"), receivedNanoseconds: 9, peer: peer)
        let legacy = ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: 8, peer: nil)
        let (_, text) = try roundTrip { sink in
            try sink.write(events: [event, other][...], losses: [.sequenceGap(first: 3, last: 4), .agentDropped(count: 6, beforeSequence: 5)],
                           context: batch)
            try sink.writeLegacy(event, context: legacy)
        }
        let peerFields = #","peer_uid":11,"peer_gid":12,"peer_pid":10}"#
        #expect(text == [
            #"{"type":"loss","reason":"sequence_gap","agent_id":"a","boot_id":"b","count":2,"first_seq":3,"last_seq":4,"received_ns":9"# + peerFields,
            #"{"type":"loss","reason":"agent_dropped","agent_id":"a","boot_id":"b","count":6,"before_seq":5,"received_ns":9"# + peerFields,
            #"{"type":"event","source":"batch","agent_id":"a","boot_id":"b","seq":1,"timestamp_ns":2,"kind":"open","verdict":"deny","decision_ns":3,"pid":-4,"ppid":5,"uid":6,"gid":7,"flags":3,"exe_path":"/bin/a\"b","target_path":"/t","digest":"dead","received_ns":9"# + peerFields,
            #"{"type":"event","source":"batch","agent_id":"a","boot_id":"b","seq":2,"timestamp_ns":0,"kind":"kind--1","verdict":"verdict-9","decision_ns":0,"pid":0,"ppid":0,"uid":0,"gid":0,"flags":0,"exe_path":"\ufffd","target_path":"","digest":"","received_ns":9"# + peerFields,
            #"{"type":"event","source":"legacy","seq":1,"timestamp_ns":2,"kind":"open","verdict":"deny","decision_ns":3,"pid":-4,"ppid":5,"uid":6,"gid":7,"flags":3,"exe_path":"/bin/a\"b","target_path":"/t","digest":"dead","received_ns":8}"#,
        ].map { $0 + "\n" }.joined())
    }

    @Test("negative XDR enum values are written signed, through AuthRelayProtocol's name table, in every version")
    func negativeEnums() throws {
        let events = [(UInt32(bitPattern: -1), UInt32(bitPattern: -2)), (UInt32(bitPattern: Int32.min), 7), (3, UInt32(bitPattern: -1))]
            .enumerated().map { index, values in reports.event(UInt64(index + 1), kind: values.0, verdict: values.1) }
        let batch = ReportContext(agentID: reports.view("a"), bootID: reports.view("b"), receivedNanoseconds: 1, peer: nil)
        let (lines, text) = try roundTrip { sink in
            try sink.write(events: events[...], losses: [], context: batch)
            try sink.writeLegacy(events[0], context: ReportContext(agentID: nil, bootID: nil, receivedNanoseconds: 1, peer: nil))
        }
        #expect(text.contains(#""kind":"kind--1","verdict":"verdict--2""#))
        #expect(text.contains(#""kind":"kind--2147483648","verdict":"verdict-7""#))
        #expect(text.contains(#""kind":"kind-3","verdict":"verdict--1""#))
        let names = lines.compactMap { line -> String? in
            guard case .event(let event) = line else { return nil }
            return event.kind + " " + event.verdict
        }
        #expect(names == ["kind--1 verdict--2", "kind--2147483648 verdict-7", "kind-3 verdict--1", "kind--1 verdict--2"])
        #expect(names.first == Event.Kind.name(of: UInt32(bitPattern: -1)) + " " + Event.Verdict.name(of: UInt32(bitPattern: -2)))
    }

    @Test("version 3 loss lines (every reason, output_lost too), boot_end and state_lost lines decode to what was written")
    func version3Lines() throws {
        let losses: [LossRecord] = RangeReason.allCases.enumerated().map { index, reason in
            .range(first: UInt64(index * 10 + 1), last: index == 0 ? .max : UInt64(index * 10 + 5), reason: reason)
        }
        let peer = PeerCredentials(pid: 3, uid: 4, gid: 5)
        let context = ReportContext(agentID: reports.view("agent\n1"), bootID: reports.view([0xFF, 0x41]), receivedNanoseconds: 9, peer: peer)
        let notes: [CollectorNote] = [
            .bootEnd(ending: .clean, lastSequence: .max, endedNanoseconds: 8, reportedBy: reports.view("next\"boot")),
            .bootEnd(ending: .unclean, lastSequence: 0, endedNanoseconds: .max, reportedBy: reports.view([0xC3])),
            .stateLost(startedNanoseconds: 6, firstSequence: .max),
        ]
        let (lines, _) = try roundTrip { sink in
            try sink.write(events: [][...], losses: losses, context: context)
            for note in notes { try sink.write(note: note, context: context) }
        }
        let agent = "agent\n1", boot = "\u{FFFD}A"
        #expect(Array(lines.prefix(losses.count)) == losses.map {
            .loss(OutputLine.LossLine(loss: $0, agentID: agent, bootID: boot, receivedNanoseconds: 9, peer: peer))
        })
        #expect(Array(lines.dropFirst(losses.count)) == [
            .bootEnd(OutputLine.BootEndLine(agentID: agent, bootID: boot, ending: .clean, lastSequence: .max, endedNanoseconds: 8,
                                            reportedBy: "next\"boot", receivedNanoseconds: 9, peer: peer)),
            .bootEnd(OutputLine.BootEndLine(agentID: agent, bootID: boot, ending: .unclean, lastSequence: 0, endedNanoseconds: .max,
                                            reportedBy: "\u{FFFD}", receivedNanoseconds: 9, peer: peer)),
            .stateLost(OutputLine.StateLostLine(agentID: agent, bootID: boot, firstSequence: .max, startedNanoseconds: 6,
                                                receivedNanoseconds: 9, peer: peer)),
        ])
        // 1...UInt64.max is one more than a count can say: it saturates, and still reads back.
        guard case .loss(let first) = lines.first else { return }
        #expect(first.loss.count == .max)
    }

    @Test("the version 3 lines' bytes are the documented format (Docs/Protocol.md)")
    func version3ExactBytes() throws {
        let context = ReportContext(agentID: reports.view("a"), bootID: reports.view("b"), receivedNanoseconds: 9, peer: nil)
        let (_, text) = try roundTrip { sink in
            try sink.write(events: [][...], losses: [.range(first: 3, last: 4, reason: .spoolEvicted), .range(first: 5, last: 5, reason: .outputLost)],
                           context: context)
            try sink.write(note: .bootEnd(ending: .unclean, lastSequence: 7, endedNanoseconds: 8, reportedBy: reports.view("c")), context: context)
            try sink.write(note: .stateLost(startedNanoseconds: 6, firstSequence: 10), context: context)
        }
        #expect(text == [
            #"{"type":"loss","reason":"spool_evicted","agent_id":"a","boot_id":"b","count":2,"first_seq":3,"last_seq":4,"received_ns":9}"#,
            #"{"type":"loss","reason":"output_lost","agent_id":"a","boot_id":"b","count":1,"first_seq":5,"last_seq":5,"received_ns":9}"#,
            #"{"type":"boot_end","agent_id":"a","boot_id":"b","ending":"unclean","last_seq":7,"ended_ns":8,"reported_by":"c","received_ns":9}"#,
            #"{"type":"state_lost","agent_id":"a","boot_id":"b","first_seq":10,"started_ns":6,"received_ns":9}"#,
        ].map { $0 + "\n" }.joined())
    }

    @Test("SinkReplay recovers what de-duplication needs from every line type")
    func replayed() {
        let key = AgentKey(agentID: "a", bootID: "b")
        func line(_ loss: LossRecord) -> OutputLine {
            .loss(OutputLine.LossLine(loss: loss, agentID: "a", bootID: "b", receivedNanoseconds: 0, peer: nil))
        }
        #expect(line(.range(first: 5, last: 9, reason: .queueFull)).replayed == .handled(key: key, highest: 9, dropReport: nil))
        #expect(line(.range(first: 1, last: 4, reason: .outputLost)).replayed == .handled(key: key, highest: 4, dropReport: nil))
        #expect(line(.agentDropped(count: 2, beforeSequence: 7)).replayed
            == .handled(key: key, highest: 6, dropReport: SequenceTracker.DropReport(beforeSequence: 7, count: 2)))
        let bootEnd = OutputLine.bootEnd(OutputLine.BootEndLine(agentID: "a", bootID: "b", ending: .clean, lastSequence: 3,
                                                                endedNanoseconds: 0, reportedBy: "c", receivedNanoseconds: 0, peer: nil))
        #expect(bootEnd.replayed == .bootEnd(key))
        let stateLost = OutputLine.stateLost(OutputLine.StateLostLine(agentID: "a", bootID: "b", firstSequence: 9, startedNanoseconds: 5,
                                                                      receivedNanoseconds: 0, peer: nil))
        #expect(stateLost.replayed == .stateLost(startedNanoseconds: 5))
    }

    @Test("every field name of the schema is one the documented format uses")
    func fieldNames() {
        let documented: Set<String> = [
            "type", "source", "reason", "agent_id", "boot_id", "seq", "timestamp_ns", "kind", "verdict", "decision_ns", "pid", "ppid",
            "uid", "gid", "flags", "exe_path", "target_path", "digest", "count", "before_seq", "first_seq", "last_seq", "received_ns",
            "peer_uid", "peer_gid", "peer_pid", "ending", "ended_ns", "reported_by", "started_ns",
        ]
        #expect(Set(OutputLine.Key.allCases.map(\.stringValue)) == documented)
        #expect(Set(OutputLine.LossReason.allCases.map(\.rawValue)) == [
            "agent_dropped", "sequence_gap", "queue_full", "spool_evicted", "spool_corrupt", "refused", "output_lost",
        ])
        #expect(Set(OutputLine.LineType.allCases.map(\.rawValue)) == ["event", "loss", "boot_end", "state_lost"])
    }
}
