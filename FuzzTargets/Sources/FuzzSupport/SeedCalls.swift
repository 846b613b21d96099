@testable import AuthRelayProtocol

/// The calls the seed corpora are made of: the RPC header (RFC 5531) written
/// word by word, the arguments by rpcgen's own encoders (through `WireArena`),
/// so every valid seed is what a real client sends. Deterministic: the same
/// bytes each time they are written.
public enum SeedCalls {
    public static let program = AuthRelayProgram.program

    /// Big-endian words.
    public static func words(_ values: [UInt32]) -> [UInt8] {
        values.flatMap { value in (0..<4).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
    }

    /// A CALL message (no record mark) with an AUTH_NONE verifier and either an
    /// AUTH_NONE credential or an AUTH_SYS one (uid and gid 1000, machine "fuzz").
    public static func call(xid: UInt32 = 1, rpcVersion: UInt32 = 2, program: UInt32 = program, version: UInt32,
                            procedure: UInt32, authSys: Bool = false, arguments: [UInt8] = []) -> [UInt8] {
        let credential = authSys ? [1, 24] + [0, 4] + [0x6675_7A7A, 1000, 1000, 0] : [0, 0] as [UInt32]
        return words([xid, 0, rpcVersion, program, version, procedure] + credential + [0, 0]) + arguments
    }

    /// `message` behind one record mark (the last fragment).
    public static func recordMarked(_ message: [UInt8]) -> [UInt8] {
        fragments(message, size: max(message.count, 1))
    }

    /// `message` as fragments of `size` bytes, each behind its mark, the last one flagged.
    public static func fragments(_ message: [UInt8], size: Int) -> [UInt8] {
        stride(from: 0, to: max(message.count, 1), by: size).flatMap { start in
            let end = min(start + size, message.count)
            return words([(end == message.count ? 0x8000_0000 : 0) | UInt32(end - start)]) + message[start..<end]
        }
    }

    // MARK: Arguments

    public static func event(_ sequence: UInt64, pathBytes: Int = 12, digestBytes: Int = 32) -> Event {
        Event(sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000 + sequence, kind: sequence % 2 == 0 ? .exec : .open,
              verdict: sequence % 3 == 0 ? .deny : .allow, decisionNanoseconds: 1500, pid: 4242, ppid: 1, uid: 1000, gid: 1000,
              flags: sequence % 5 == 0 ? [.cached] : [], executablePath: "/usr/bin/" + String(repeating: "x", count: max(pathBytes - 9, 0)),
              targetPath: "/etc/hosts", digest: (0..<digestBytes).map { UInt8(truncatingIfNeeded: $0 &* 37) })
    }

    public static func batch(agent: String = "agent-1", boot: String = "boot-1", first: UInt64, count: Int, dropped: UInt64 = 0,
                             losses: [LossRange] = [], pathBytes: Int = 12) -> EventBatch {
        EventBatch(header: BatchHeader(agentID: agent, bootID: boot, firstSequence: first, dropped: dropped, losses: losses),
                   events: (0..<count).map { event(first + UInt64($0), pathBytes: pathBytes) })
    }

    public static func encode(_ event: Event) -> [UInt8] {
        WireArena().withWire(event) { AuthRelayProgram.event.encode(&$0.pointee) }!
    }

    public static func encode(_ batch: EventBatch) -> [UInt8] {
        WireArena().withWire(batch) { AuthRelayProgram.eventBatch.encode(&$0.pointee) }!
    }

    public static func encode(version3 batch: EventBatch) -> [UInt8] {
        WireArena().withWire(version3: batch) { AuthRelayProgram.eventBatchV3.encode(&$0.pointee) }!
    }

    public static func encode(_ report: BootEnd) -> [UInt8] {
        WireArena().withWire(report) { AuthRelayProgram.bootEnd.encode(&$0.pointee) }!
    }

    // MARK: Calls

    /// One valid call of every procedure of versions 1, 2 and 3 (and a few
    /// variants: AUTH_SYS, no events, drops, loss ranges), by name.
    public static var everyProcedure: [(name: String, message: [UInt8])] {
        let bootEnd = BootEnd(agentID: "agent-1", bootID: "boot-0", ending: .unclean, lastSequence: 41,
                              endedNanoseconds: 1_700_000_000_000_000_000, reportedBy: "boot-1")
        return [
            ("v1-null", call(version: 1, procedure: 0)),
            ("v1-report-event", call(version: 1, procedure: 1, arguments: encode(event(7)))),
            ("v1-report-event-auth-sys", call(version: 1, procedure: 1, authSys: true, arguments: encode(event(8, pathBytes: 200)))),
            ("v2-null", call(version: 2, procedure: 0)),
            ("v2-report-batch-1", call(version: 2, procedure: 1, arguments: encode(batch(first: 1, count: 1)))),
            ("v2-report-batch-3", call(version: 2, procedure: 1, authSys: true, arguments: encode(batch(first: 4, count: 3)))),
            ("v2-report-batch-drops-only", call(version: 2, procedure: 1, arguments: encode(batch(first: 9, count: 0, dropped: 5)))),
            ("v2-get-stats", call(version: 2, procedure: 2)),
            ("v3-null", call(version: 3, procedure: 0)),
            ("v3-report-batch", call(version: 3, procedure: 1, arguments: encode(version3: batch(
                first: 1, count: 2, losses: [LossRange(first: 3, last: 4, reason: .queueFull)])))),
            ("v3-get-stats", call(version: 3, procedure: 2)),
            ("v3-report-boot-end", call(version: 3, procedure: 3, arguments: encode(bootEnd))),
        ]
    }

    /// Calls no valid client makes: other RPC and program versions, unknown
    /// procedures and programs, arguments cut short or over their bounds.
    public static var malformed: [(name: String, message: [UInt8])] {
        let valid = encode(batch(first: 1, count: 2))
        var tooMany = encode(batch(first: 1, count: 0))
        tooMany.replaceSubrange((tooMany.count - 4)..., with: words([513]))
        var longAgent = encode(batch(agent: String(repeating: "a", count: 64), first: 1, count: 1))
        longAgent.replaceSubrange(0..<4, with: words([65]))
        return [
            ("rpc-version-3", call(rpcVersion: 3, version: 2, procedure: 0)),
            ("program-version-4", call(version: 4, procedure: 0)),
            ("unknown-procedure", call(version: 2, procedure: 9)),
            ("unknown-program", call(program: 0x3F0A_7E01, version: 1, procedure: 0)),
            ("batch-cut-short", call(version: 2, procedure: 1, arguments: Array(valid.dropLast(9)))),
            ("batch-513-events", call(version: 2, procedure: 1, arguments: tooMany)),
            ("batch-agent-id-65", call(version: 2, procedure: 1, arguments: longAgent)),
            ("batch-dropped-max", call(version: 2, procedure: 1, arguments: encode(batch(first: 1, count: 0, dropped: .max)))),
            ("batch-first-seq-max", call(version: 2, procedure: 1, arguments: encode(batch(first: .max, count: 0)))),
        ]
    }
}
