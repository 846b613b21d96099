import AuthRelayProtocol
import CAuthRelayRPC
import Glibc
import ONCRPC
import SystemSupport

/// The handler edge: the RPCProcedure closures, the one place the collector
/// sees rpcgen's C structs. REPORT_BATCH arguments are decoded by
/// `ViewBatchDecoder` straight into a reused `ReceivedBatch` (rpcgen's routine
/// only when it could not); every other argument becomes Swift values laid into
/// storage reused from call to call. Each goes through the `CollectorCore`, and
/// its answer is written back as the C result.
///
/// Runs on the RPC server's thread; not thread-safe.
final class ReportHandlers {
    private let core: CollectorCore
    private let injectedDelay: Duration?
    /// Runs after each batch: the collector checkpoints when enough was written.
    private let afterBatch: () -> Void
    /// With a writer, reports are copied out and answered once it stored them
    /// (deferred replies); without (the fuzz targets, unit tests), at once.
    private let writer: CollectorWriter?
    /// Every batch is laid into this one: its events keep their capacity.
    private var received = ReceivedBatch()
    /// REPORT_BATCH arguments are decoded by these, straight from the call's bytes.
    private let decodersV2 = ViewBatchDecoderPool(.v2)
    private let decodersV3 = ViewBatchDecoderPool(.v3)
    /// Version 3 GET_STATS answers are laid out here (they live until the next call).
    private let statsWire = StatsWire()

    init(core: CollectorCore, injectedDelay: Duration?, writer: CollectorWriter? = nil, afterBatch: @escaping () -> Void) {
        self.core = core
        self.injectedDelay = injectedDelay
        self.writer = writer
        self.afterBatch = afterBatch
    }

    /// Versions 1, 2 and 3 of `program`. Reports may be deferred (answered by
    /// the writer thread); NULL and GET_STATS answer at once.
    /// `statistics(withAgentViews)`: the counters GET_STATS answers.
    func programs(_ program: UInt32, statistics: @escaping (_ withAgentViews: Bool) -> CollectorStats) -> [RPCProgram] {
        [
            RPCProgram(program: program, version: 1, procedures: [
                .null(),
                RPCProcedure(deferrable: AuthRelayProgram.reportEventV1, argument: AuthRelayProgram.event, ar_event.self,
                             result: AuthRelayProgram.ack, ar_ack.self) { [unowned self] request, event, ack, deferral in
                    let received = ReceivedEvent(event.pointee)
                    guard let writer else {
                        injectDelay()
                        ack.pointee = core.reportEvent(received, from: request.peer).wire
                        return .result
                    }
                    hand(CopiedReport(legacy: received, peer: request.peer), to: writer, deferral.later(), ar_ack.self) { answer, result in
                        guard case .event(let value) = answer else { return false }
                        result.pointee = value.wire
                        return true
                    }
                    return .deferred
                },
            ]),
            RPCProgram(program: program, version: 2, procedures: [
                .null(),
                batchProcedure(AuthRelayProgram.reportBatchV2, AuthRelayProgram.eventBatch, ar_event_batch.self, .batchV2,
                               decodedBy: decodersV2, load: { $0.load($1) }, report: { $0.reportBatch($1, from: $2) }),
                RPCProcedure(AuthRelayProgram.getStatsV2, result: AuthRelayProgram.stats, ar_stats.self) { _, stats in
                    stats.pointee = statistics(false).wire
                    return .result
                },
            ]),
            RPCProgram(program: program, version: 3, procedures: [
                .null(),
                batchProcedure(AuthRelayProgram.reportBatchV3, AuthRelayProgram.eventBatchV3, ar3_event_batch.self, .batchV3,
                               decodedBy: decodersV3, load: { $0.load($1) }, report: { $0.reportBatchV3($1, from: $2) }),
                RPCProcedure(AuthRelayProgram.getStatsV3, result: AuthRelayProgram.statsV3, ar3_stats.self) { [unowned self] request, stats in
                    // The views name agent runs (boot ids included, which a forged batch
                    // would need): with --allow-uid, only for those who may report.
                    // (`allowedUIDs` never changes: read without the core's lock.)
                    var current = statistics(core.isAuthorized(request.peer))
                    if request.transport == .udp, var extra = current.version3 {
                        extra.agents = Self.views(extra.agents, fittingDatagramOf: Self.datagramReplyBytes)
                        current.version3 = extra
                    }
                    statsWire.lay(current, into: stats)
                    return .result
                },
                RPCProcedure(deferrable: AuthRelayProgram.reportBootEndV3, argument: AuthRelayProgram.bootEnd, ar_boot_end.self,
                             result: AuthRelayProgram.status, ar_status.self) { [unowned self] request, report, status, deferral in
                    let received = ReceivedBootEnd(report.pointee)
                    guard let writer else {
                        injectDelay()
                        status.pointee = ar_status(rawValue: core.reportBootEnd(received, from: request.peer).rawValue)
                        afterBatch()
                        return .result
                    }
                    hand(CopiedReport(bootEnd: received, peer: request.peer), to: writer, deferral.later(), ar_status.self) { answer, result in
                        guard case .bootEnd(let value) = answer else { return false }
                        result.pointee = ar_status(rawValue: value.rawValue)
                        return true
                    }
                    return .deferred
                },
            ]),
        ]
    }

    /// REPORT_BATCH of version 2 or 3: decoded into views, then answered at
    /// once without a writer, or handed to it and answered once stored.
    private func batchProcedure<Batch>(
        _ number: UInt32, _ argument: XDRRoutine, _ type: Batch.Type, _ kind: CopiedReport.Kind,
        decodedBy decoders: ViewBatchDecoderPool, load: @escaping (inout ReceivedBatch, Batch) -> Void,
        report: @escaping (CollectorCore, ReceivedBatch, PeerCredentials?) -> BatchAck
    ) -> RPCProcedure {
        RPCProcedure(deferrable: number, argument: argument, type, result: AuthRelayProgram.batchAck, ar_batch_ack.self,
                     incremental: { decoders.take() }) { [unowned self] request, batch, ack, deferral in
            withReceived(batch, decodedBy: decoders, { load(&$0, batch.pointee) }) { received -> RPCReply in
                guard let writer else {
                    injectDelay()
                    ack.pointee = report(core, received, request.peer).wire
                    afterBatch()
                    return .result
                }
                handBatch(kind, received, request, writer, deferral)
                return .deferred
            }
        }
    }

    private func handBatch(_ kind: CopiedReport.Kind, _ batch: ReceivedBatch, _ request: RPCRequest, _ writer: CollectorWriter,
                           _ deferral: RPCDeferral) {
        hand(CopiedReport(batch: batch, kind: kind, peer: request.peer), to: writer, deferral.later(), ar_batch_ack.self) { answer, result in
            guard case .batch(let value) = answer else { return false }
            result.pointee = value.wire
            return true
        }
    }

    /// Queues `report` for the writer, whose answer completes the call; a full
    /// hand-off answers SINK_ERROR at once (what a failed store answers).
    private func hand<Result>(_ report: CopiedReport, to writer: CollectorWriter, _ completion: RPCCompletion, _ type: Result.Type,
                              fill: @escaping @Sendable (CollectorWriter.Answer, UnsafeMutablePointer<Result>) -> Bool) {
        let kind = report.kind
        let reply: @Sendable (CollectorWriter.Answer) -> Void = { answer in
            completion.complete(type) { result in fill(answer, result) ? .result : .systemError }
        }
        guard writer.submit(CollectorWriter.Job(report: report, reply: reply)) else {
            switch kind {
            case .batchV2, .batchV3: reply(.batch(BatchAck(status: .sinkError, accepted: 0, duplicates: 0, highestSequence: 0)))
            case .legacyEvent: reply(.event(Ack(status: .sinkError, sequence: report.legacySequence)))
            case .bootEnd: reply(.bootEnd(.sinkError))
            }
            return
        }
    }

    /// A version 3 GET_STATS answer over udp fits libtirpc's default datagram
    /// buffer (UDPMSGSIZE, 8,800 bytes): a client's `clnt_dg` cannot read a
    /// larger one, and a 40-byte request must not draw a 60 KB answer (a
    /// reflection). The views that do not fit are left out (tcp and unix have them all).
    static let datagramReplyBytes = 8800

    /// The first `views` whose encoding, with the reply header (24 bytes) and
    /// the counters (88 + 72 + the array count 4), fits `limit` bytes.
    static func views(_ views: [AgentView], fittingDatagramOf limit: Int) -> [AgentView] {
        var used = 24 + 88 + 72 + 4
        var count = 0
        for view in views {
            func xdrString(_ text: String) -> Int { 4 + (min(text.utf8.count, Event.maxIDBytes) + 3) / 4 * 4 }
            used += xdrString(view.agentID) + xdrString(view.bootID) + 16 + 80  // two hypers, ar_agent_status
            guard used <= limit else { break }
            count += 1
        }
        return Array(views.prefix(count))
    }

    /// The batch `decoders` decoded for this call, or, when none could finish it and
    /// rpcgen's routine decoded it (the dispatcher's fallback), `batch` laid into `received`.
    private func withReceived<Answer>(_ batch: UnsafeRawPointer, decodedBy decoders: ViewBatchDecoderPool,
                                      _ load: (inout ReceivedBatch) -> Void, _ body: (ReceivedBatch) -> Answer) -> Answer {
        if let decoder = decoders.decoder(of: batch) { return body(decoder.batch) }
        load(&received)
        defer { received.removeAll() }  // its views end with the call
        return body(received)
    }

    /// --inject-delay: a slow collector on purpose, before anything else.
    private func injectDelay() {
        guard let injectedDelay else { return }
        SystemClock.sleep(injectedDelay)
    }
}

extension ReceivedEvent {
    /// Views of `event`'s strings and digest: valid while the decoded argument is.
    init(_ event: ar_event) {
        self.init(
            sequence: UInt64(event.seq), timestampNanoseconds: UInt64(event.timestamp_ns),
            // The enums' bits as sent: -1 arrives as 0xFFFFFFFF, and the output names it signed ("kind--1").
            kind: UInt32(truncatingIfNeeded: event.kind.rawValue), verdict: UInt32(truncatingIfNeeded: event.verdict.rawValue),
            decisionNanoseconds: UInt64(event.decision_ns),
            pid: event.pid, ppid: event.ppid, uid: event.uid, gid: event.gid, flags: event.flags,
            executablePath: Self.bytes(of: event.exe_path), targetPath: Self.bytes(of: event.target_path),
            digest: event.digest.digest_val.map { UnsafeRawBufferPointer(start: $0, count: Int(event.digest.digest_len)) }
                ?? UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// A decoded XDR string's bytes without its NUL; NULL (never sent by a valid peer) reads as empty.
    static func bytes(of string: UnsafeMutablePointer<CChar>?) -> UnsafeRawBufferPointer {
        guard let string else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: string, count: strlen(string))
    }
}

extension ReceivedBatch {
    /// Lays `batch` into this value: its header, and its events into `events`, whose capacity is kept.
    mutating func load(_ batch: ar_event_batch) {
        agentID = ReceivedEvent.bytes(of: batch.header.agent_id)
        bootID = ReceivedEvent.bytes(of: batch.header.boot_id)
        firstSequence = UInt64(batch.header.first_seq)
        dropped = UInt64(batch.header.dropped)
        losses.removeAll(keepingCapacity: true)
        status = nil
        loadEvents(batch)
    }

    /// Lays a version 3 batch into this value: its header (losses and status), and its events.
    mutating func load(_ batch: ar3_event_batch) {
        agentID = ReceivedEvent.bytes(of: batch.header.agent_id)
        bootID = ReceivedEvent.bytes(of: batch.header.boot_id)
        firstSequence = UInt64(batch.header.first_seq)
        dropped = 0
        losses.removeAll(keepingCapacity: true)
        if let wire = batch.header.losses.losses_val {
            for index in 0..<Int(batch.header.losses.losses_len) { losses.append(LossRange(wire: wire[index])) }
        }
        status = AgentStatus(wire: batch.header.status)
        loadEvents(batch)
    }

    private mutating func loadEvents(_ batch: some WireEventBatch) {
        events.removeAll(keepingCapacity: true)
        // xdr_array (and BatchDecoder) allocate the array whenever the count is not 0.
        guard let wire = batch.eventArray else { return }
        let count = Int(batch.eventCount)
        events.reserveCapacity(count)
        for index in 0..<count {
            events.append(ReceivedEvent(wire[index]))
        }
    }
}

extension ReceivedBootEnd {
    /// Views of `report`'s strings: valid while the decoded argument is.
    init(_ report: ar_boot_end) {
        self.init(agentID: ReceivedEvent.bytes(of: report.agent_id), bootID: ReceivedEvent.bytes(of: report.boot_id),
                  ending: UInt32(truncatingIfNeeded: report.ending.rawValue), lastSequence: UInt64(report.last_seq),
                  endedNanoseconds: UInt64(report.ended_ns), reportedBy: ReceivedEvent.bytes(of: report.reported_by))
    }
}
