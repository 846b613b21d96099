import AuthRelayProtocol

/// The sample events every test target sends: ordinary ones, ones at the edges
/// of the protocol's bounds, and numbered ones a collector's output can be
/// traced back to.
package enum Sample {
    package static func event(
        sequence: UInt64 = 1, path: String = "/usr/bin/true", target: String = "/etc/passwd", digest: [UInt8] = [0xde, 0xad]
    ) -> Event {
        Event(
            sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000, kind: .open, verdict: .allow,
            decisionNanoseconds: 1234, pid: 4321, ppid: 1, uid: 1000, gid: 1000, flags: [.cached],
            executablePath: path, targetPath: target, digest: digest)
    }

    /// Every variable field at its maximum, every number at an extreme.
    package static func maximal(sequence: UInt64 = .max) -> Event {
        Event(
            sequence: sequence, timestampNanoseconds: .max, kind: .other(.max), verdict: .deny,
            decisionNanoseconds: .max, pid: .min, ppid: .max, uid: .max, gid: .max,
            flags: Event.Flags(rawValue: .max),
            executablePath: "/" + String(repeating: "e", count: Event.maxPathBytes - 1),
            targetPath: "/" + String(repeating: "t", count: Event.maxPathBytes - 1),
            digest: (0..<Event.maxDigestBytes).map { UInt8(255 - $0) })
    }

    /// What the collector tests send: the timestamp follows the sequence, even
    /// sequences are execs, every third a deny, so each output line can be
    /// checked against the event it came from.
    package static func numbered(_ sequence: UInt64, path: String = "/etc/passwd") -> Event {
        Event(
            sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000 + sequence,
            kind: sequence % 2 == 0 ? .exec : .open, verdict: sequence % 3 == 0 ? .deny : .allow,
            decisionNanoseconds: 1500, pid: 4242, ppid: 1, uid: 1000, gid: 100, flags: .cached,
            executablePath: "/usr/bin/cat", targetPath: path, digest: [0xDE, 0xAD, 0xBE, 0xEF])
    }

    /// `count` events made by `make`, numbered from `firstSequence`, under one header.
    package static func batch(
        agent: String = "agent-1", boot: String = "boot-1", count: Int, firstSequence: UInt64 = 1, dropped: UInt64 = 0,
        make: (UInt64) -> Event = { event(sequence: $0) }
    ) -> EventBatch {
        EventBatch(
            header: BatchHeader(agentID: agent, bootID: boot, firstSequence: firstSequence, dropped: dropped),
            events: (0..<count).map { make(firstSequence + UInt64($0)) })
    }

    /// A batch of `numbered` events.
    package static func numberedBatch(
        agent: String = "agent-1", boot: String = "boot-1", count: Int, firstSequence: UInt64 = 1, dropped: UInt64 = 0
    ) -> EventBatch {
        batch(agent: agent, boot: boot, count: count, firstSequence: firstSequence, dropped: dropped) { numbered($0) }
    }
}
