import AuthRelayPostgres
import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// Stores reports in PostgreSQL (`AuthRelayPostgres.EventStore`), on the
/// writer thread only: a group's batches become one `StoreBatch`, committed
/// in one transaction by `commitGroup`; the writer acknowledges after COMMIT.
///
/// De-duplication is the database's primary key (agent_id, boot_id, seq):
/// rows another collector (or this one before a restart) stored are skipped,
/// so any number of collectors in front of one database store each event
/// once. Gaps are not written: the `sequence_gaps` view finds them where
/// every collector's rows meet.
///
/// The database going away (stopped, restarting, slow past the operation
/// timeout, refusing our credentials, full): the group fails, the writer
/// answers SINK_ERROR (agents keep their events and retry, or move to their
/// next collector), and until the backoff's next attempt groups fail at once
/// without a round trip. One log line when the episode starts (with the
/// reason) and one when the database is back; `sink_errors` in GET_STATS
/// counts the reports refused meanwhile.
package final class PostgresSink: EventSink {
    /// The URL without a password, for logs and errors.
    let target: String
    private let store: EventStore
    private let logger: Logger
    private var staged = StoreBatch()
    private var migrated = false
    private var backoff = Backoff(first: .milliseconds(100), limit: .seconds(5))
    private var outage: Outage?

    /// One episode of the database not taking groups.
    private struct Outage {
        var reason: StoreError
        var since: UInt64
        var failures: UInt64 = 1
        /// CLOCK_MONOTONIC of the next real attempt.
        var nextAttempt: UInt64
    }

    /// Connects and migrates the schema once; a database that does not answer
    /// yet is not a start failure (the collector serves and refuses reports
    /// until it does), but the reason is logged.
    package init(url: String, passwordFile: String?, logger: Logger, collectorID: String = PostgresSink.hostName()) throws(SinkError) {
        guard url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") else {
            throw SinkError(SystemError(function: "postgres url", errno: 22, path: url,
                                        detail: "expected postgresql://user@host:port/database"))
        }
        target = Self.redacted(url)
        self.logger = logger
        let settings = ConnectionSettings(conninfo: url, passwordFile: passwordFile, connectTimeout: .seconds(5),
                                          operationTimeout: .seconds(10))
        store = EventStore(settings: settings, collectorID: collectorID)
        do {
            try prepare()
            logger.info("database connected, schema current", metadata: ["database": "\(target)"])
        } catch {
            startOutage(error)
        }
    }

    // MARK: Staging (no I/O)

    package func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError) {
        let agentID = String(decoding: context.agentID ?? UnsafeRawBufferPointer(start: nil, count: 0), as: UTF8.self)
        let bootID = String(decoding: context.bootID ?? UnsafeRawBufferPointer(start: nil, count: 0), as: UTF8.self)
        let peer = Self.peer(context.peer)
        // Checked before anything is staged: a value PostgreSQL cannot hold fails this report
        // alone, not the group it would share a transaction with.
        // The largest value, without an array per event.
        var largest = context.receivedNanoseconds
        for event in events { largest = max(largest, event.sequence, event.timestampNanoseconds, event.decisionNanoseconds) }
        for loss in losses { largest = max(largest, Self.numbers(loss).max() ?? 0) }
        try checkFits([largest])
        for loss in losses {
            staged.losses.append(LossRow(agentID: agentID, bootID: bootID, reason: Self.reason(loss), extent: Self.extent(loss),
                                         receivedNanoseconds: context.receivedNanoseconds, peer: peer))
        }
        staged.events.reserveCapacity(staged.events.count + events.count)
        for event in events {
            staged.events.append(Self.row(event, source: .batch(agentID: agentID, bootID: bootID), context, peer))
        }
        try commitUnlessGrouping()
    }

    package func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError) {
        try checkFits([event.sequence, event.timestampNanoseconds, event.decisionNanoseconds, context.receivedNanoseconds])
        staged.events.append(Self.row(event, source: .legacy, context, Self.peer(context.peer)))
        try commitUnlessGrouping()
    }

    package func write(note: CollectorNote, context: ReportContext) throws(SinkError) {
        guard case .bootEnd(let ending, let lastSequence, let endedNanoseconds, let reportedBy) = note else {
            return  // state_lost is the JSON Lines' own: the database's history never starts over
        }
        try checkFits([lastSequence, endedNanoseconds, context.receivedNanoseconds])
        staged.bootEnds.append(BootEndRow(
            agentID: String(decoding: context.agentID ?? UnsafeRawBufferPointer(start: nil, count: 0), as: UTF8.self),
            bootID: String(decoding: context.bootID ?? UnsafeRawBufferPointer(start: nil, count: 0), as: UTF8.self),
            ending: ending == .clean ? .clean : .unclean, lastSequence: lastSequence, endedNanoseconds: endedNanoseconds,
            reportedBy: String(decoding: reportedBy, as: UTF8.self), receivedNanoseconds: context.receivedNanoseconds,
            peer: Self.peer(context.peer)))
        try commitUnlessGrouping()
    }

    private var grouping = false

    /// PostgreSQL's bigint holds up to 2^63 - 1; the protocol's hypers go to 2^64 - 1.
    private func checkFits(_ values: [UInt64]) throws(SinkError) {
        guard let value = values.first(where: { $0 > UInt64(Int64.max) }) else { return }
        var error = SinkError.database("store", target: target, "invalid data: \(value) is over PostgreSQL's bigint (2^63 - 1)")
        error.refusesReport = true
        throw error
    }

    private static func numbers(_ loss: LossRecord) -> [UInt64] {
        switch loss {
        case .agentDropped(let count, let before): [count, before]
        case .sequenceGap(let first, let last), .range(let first, let last, _): [first, last]
        }
    }

    /// Outside a group (the collector's start), a write is committed at once.
    private func commitUnlessGrouping() throws(SinkError) {
        guard !grouping else { return }
        _ = try commitStaged()
    }

    // MARK: Committing

    package func beginGroup() {
        staged = StoreBatch()
        grouping = true
    }

    package func commitGroup() throws(SinkError) -> GroupCommit {
        grouping = false
        return try commitStaged()
    }

    private func commitStaged() throws(SinkError) -> GroupCommit {
        defer { staged = StoreBatch() }
        guard !staged.isEmpty else { return GroupCommit() }
        let now = SystemClock.monotonicNanoseconds()
        if let outage, now < outage.nextAttempt {
            self.outage!.failures += 1
            throw unavailable(outage.reason)
        }
        do {
            try prepare()
            let receipt = try store.store(staged)
            endOutage()
            return GroupCommit(duplicateEvents: UInt64(receipt.eventsDuplicate))
        } catch {
            // The rows' fault, not the database's (checked at staging; this is a rule found only there).
            if error.kind == .invalidData {
                logger.error("group refused by the database as invalid", metadata: ["database": "\(target)", "error": "\(error)"])
            } else {
                startOutage(error)
            }
            throw unavailable(error)
        }
    }

    /// Connects (when not connected) and migrates once per process.
    private func prepare() throws(StoreError) {
        if !store.isConnected { try store.connect() }
        if !migrated {
            try store.migrate()
            migrated = true
        }
    }

    private func unavailable(_ error: StoreError) -> SinkError {
        .database(error.operation, target: target, "\(error.kind.rawValue): \(error.message)"
            + (error.sqlState.map { " (SQLSTATE \($0))" } ?? ""))
    }

    private func startOutage(_ error: StoreError) {
        let now = SystemClock.monotonicNanoseconds()
        let delay = backoff.nextDelay()
        if outage == nil {
            logger.error("database unavailable: reports are answered SINK_ERROR (agents keep them) until it is back", metadata: [
                "database": "\(target)", "reason": "\(error.kind.rawValue)", "error": "\(error)",
            ])
            outage = Outage(reason: error, since: now, nextAttempt: now + UInt64(delay.nanoseconds))
        } else {
            outage!.reason = error
            outage!.failures += 1
            outage!.nextAttempt = now + UInt64(delay.nanoseconds)
        }
    }

    private func endOutage() {
        backoff.reset()
        guard let ended = outage else { return }
        outage = nil
        let lasted = Duration.nanoseconds(Int64(SystemClock.monotonicNanoseconds() - ended.since))
        logger.notice("database back", metadata: [
            "database": "\(target)", "lasted": "\(lasted)", "refused_groups": "\(ended.failures)",
            "last_reason": "\(ended.reason.kind.rawValue)",
        ])
    }

    /// True while an outage episode is open (for tests and the daemon's summary).
    package var isUnavailable: Bool { outage != nil }

    package var position: SinkPosition? { nil }
    /// Everything acknowledged is committed already.
    package func sync() throws(SinkError) {}
    package func tick() {}
    package func close() { store.close() }

    // MARK: Rows

    private static func row(_ event: ReceivedEvent, source: EventRow.Source, _ context: ReportContext,
                            _ peer: AuthRelayPostgres.PeerCredentials?) -> EventRow {
        EventRow(source: source, sequence: event.sequence, timestampNanoseconds: event.timestampNanoseconds,
                 kind: Event.Kind.name(of: event.kind), verdict: Event.Verdict.name(of: event.verdict),
                 decisionNanoseconds: event.decisionNanoseconds, pid: event.pid, ppid: event.ppid, uid: event.uid, gid: event.gid,
                 flags: event.flags, executablePath: String(decoding: event.executablePath, as: UTF8.self),
                 targetPath: String(decoding: event.targetPath, as: UTF8.self), digest: Array(event.digest),
                 receivedNanoseconds: context.receivedNanoseconds, peer: peer)
    }

    private static func peer(_ peer: ONCRPC.PeerCredentials?) -> AuthRelayPostgres.PeerCredentials? {
        peer.map { AuthRelayPostgres.PeerCredentials(uid: $0.uid, gid: $0.gid, pid: $0.pid) }
    }

    private static func reason(_ loss: LossRecord) -> LossRow.Reason {
        switch loss {
        case .agentDropped: .agentDropped
        case .sequenceGap: .sequenceGap
        case .range(_, _, let reason): LossRow.Reason(rawValue: reason.lineReason.rawValue) ?? .refused
        }
    }

    private static func extent(_ loss: LossRecord) -> LossRow.Extent {
        switch loss {
        case .agentDropped(let count, let before): .before(sequence: before, count: count)
        case .sequenceGap(let first, let last), .range(let first, let last, _): .range(first: first, last: last)
        }
    }

    /// `postgresql://user:secret@host/db` as `postgresql://user:***@host/db`.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.firstRange(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@"),
              let colon = url[scheme.upperBound..<at].firstIndex(of: ":") else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }

    /// Which collector stored a row: this host's name.
    package static func hostName() -> String {
        Processes.hostName() ?? "authrelayd"
    }
}
