import SystemSupport

/// The collector's way into PostgreSQL: one connection, used by one thread
/// (a writer thread, never the poll loop: every call waits on the server).
///
/// `store` commits a batch (or several, gathered by the caller) in one
/// transaction and returns only after COMMIT did: what it returns may be
/// acknowledged. A throw means nothing of the call was committed; unless the
/// error is `invalidData` the same rows are to be stored again later, and
/// rows already there are skipped by their keys, so a retry, a restart or
/// another collector's copy is stored once.
///
/// Not Sendable: create it on the thread that uses it.
package final class EventStore {
    package let settings: ConnectionSettings
    /// Written into every row: which collector stored it.
    package let collectorID: String
    /// How events are written; the default is the faster (Benchmarks/postgres.sh measures both).
    package var method: WriteMethod = .pipelinedArrays
    private var connection: Connection?

    package enum WriteMethod: String, Sendable, CaseIterable {
        /// One INSERT ... SELECT FROM unnest(binary arrays) ON CONFLICT DO
        /// NOTHING per table, pipelined: one round trip, committed by the Sync.
        case pipelinedArrays = "arrays"
        /// Binary COPY into a temporary table, then INSERT ... SELECT ... ON
        /// CONFLICT DO NOTHING: three round trips. Events only (for the benchmark).
        case copyThenMerge = "copy"
    }

    /// A store that is not connected yet (`connect`, or the first call, connects).
    package init(settings: ConnectionSettings, collectorID: String) {
        self.settings = settings
        self.collectorID = collectorID
    }

    /// A connected store.
    package static func open(_ settings: ConnectionSettings, collectorID: String) throws(StoreError) -> EventStore {
        let store = EventStore(settings: settings, collectorID: collectorID)
        try store.connect()
        return store
    }

    /// True while the connection works as far as libpq knows (a server that
    /// went away is found by the next call).
    package var isConnected: Bool { connection?.isUsable == true }

    /// Connects anew (closing any connection there was).
    package func connect() throws(StoreError) {
        connection = nil
        connection = try Connection(settings)
    }

    /// Connects until it works or `shouldStop` returns true, sleeping
    /// `backoff`'s delays between attempts (in slices of at most 50 ms, so a
    /// stop is seen at once); `onFailure` hears each failed attempt and the
    /// delay before the next. True once connected; `backoff` is reset then.
    package func reconnect(backoff: inout Backoff, shouldStop: () -> Bool,
                           onFailure: (StoreError, Duration) -> Void = { _, _ in }) -> Bool {
        while !shouldStop() {
            do {
                try connect()
                backoff.reset()
                return true
            } catch {
                let delay = backoff.nextDelay()
                onFailure(error, delay)
                let deadline = SystemClock.deadline(after: delay)
                while !shouldStop() && SystemClock.monotonicNanoseconds() < deadline {
                    SystemClock.sleep(min(.milliseconds(50), SystemClock.remaining(until: deadline)))
                }
            }
        }
        return false
    }

    package func close() { connection = nil }

    /// Creates or updates the schema (see `Schema`); safe to run from every
    /// collector at every start.
    @discardableResult
    package func migrate() throws(StoreError) -> Schema.Migration {
        try using { connection throws(StoreError) in try Schema.migrate(connection) }
    }

    // MARK: Storing

    /// Commits `batch` in one transaction; returns after COMMIT returned.
    /// One round trip: one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT
    /// DO NOTHING per table, pipelined, committed by the pipeline's Sync.
    @discardableResult
    package func store(_ batch: StoreBatch) throws(StoreError) -> StoreReceipt {
        var receipt = StoreReceipt()
        if batch.isEmpty { return receipt }
        var events: [EventRow] = []
        var legacy: [EventRow] = []
        events.reserveCapacity(batch.events.count)
        for event in batch.events {
            if case .batch = event.source { events.append(event) } else { legacy.append(event) }
        }
        // Every transaction inserts in one order (table, then key): two
        // collectors storing overlapping batches wait on each other, never deadlock.
        events = Self.sorted(events, by: Self.eventPrecedes)
        let losses = Self.sorted(batch.losses, by: Self.lossPrecedes)
        let bootEnds = Self.sorted(batch.bootEnds, by: Self.bootEndPrecedes)
        if method == .copyThenMerge {
            precondition(legacy.isEmpty && losses.isEmpty && bootEnds.isEmpty, "the COPY method stores batch events only")
            receipt.eventsStored = try using { connection throws(StoreError) in
                try CopyStaging.store(events, collectorID: collectorID, on: connection)
            }
            receipt.eventsDuplicate = events.count - receipt.eventsStored
            return receipt
        }

        // One step per table that has rows, and what its reply counts.
        var steps: [Connection.Step] = []
        var kinds: [ReceiptField] = []
        func add<Row>(_ table: Table<Row>, _ rows: [Row], _ kind: ReceiptField) throws(StoreError) {
            guard !rows.isEmpty else { return }
            steps.append(.init(table.statementName, try table.parameters(rows, collectorID: collectorID)))
            kinds.append(kind)
        }
        try add(Tables.events, events, .events(events.count))
        try add(Tables.legacyEvents, legacy, .legacy)
        try add(Tables.losses, losses, .losses(losses.count))
        try add(Tables.bootEnds, bootEnds, .bootEnds(bootEnds.count))
        let replies = try using { connection throws(StoreError) in
            if !connection.hasStatements {
                // Per session, once the schema is there (after `migrate`, or another collector's).
                try connection.prepare(Self.statements, operation: "store")
                connection.hasStatements = true
            }
            return try connection.run(steps, operation: "store")
        }
        for (kind, reply) in zip(kinds, replies) {
            switch kind {
            case .events(let sent): receipt.eventsStored = reply.affected; receipt.eventsDuplicate = sent - reply.affected
            case .legacy: receipt.legacyEventsStored = reply.affected
            case .losses(let sent): receipt.lossesStored = reply.affected; receipt.lossesDuplicate = sent - reply.affected
            case .bootEnds(let sent): receipt.bootEndsStored = reply.affected; receipt.bootEndsDuplicate = sent - reply.affected
            }
        }
        return receipt
    }

    private enum ReceiptField {
        case events(Int), legacy, losses(Int), bootEnds(Int)
    }

    static let statements: [(name: String, sql: String)] = [
        (Tables.events.statementName, Tables.events.insertSQL),
        (Tables.legacyEvents.statementName, Tables.legacyEvents.insertSQL),
        (Tables.losses.statementName, Tables.losses.insertSQL),
        (Tables.bootEnds.statementName, Tables.bootEnds.insertSQL),
    ]

    // MARK: Reading

    /// The `sequence_gaps` view: what no event or loss covers, per agent and
    /// boot, over every collector's rows; for one agent (and boot) when given.
    package func sequenceGaps(agentID: String? = nil, bootID: String? = nil) throws(StoreError) -> [SequenceGap] {
        let rows = try query("""
            SELECT agent_id, boot_id, first_seq, last_seq, count FROM sequence_gaps
            WHERE ($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR boot_id = $2)
            ORDER BY agent_id, boot_id, first_seq
            """, [agentID, bootID])
        return rows.map { row in
            SequenceGap(agentID: row[0] ?? "", bootID: row[1] ?? "", firstSequence: UInt64(row[2] ?? "") ?? 0,
                        lastSequence: UInt64(row[3] ?? "") ?? 0, count: UInt64(row[4] ?? "") ?? 0)
        }
    }

    /// One statement with text parameters; its rows as text (nil is NULL).
    /// For reports (`authrelay stats`) and tests.
    package func query(_ sql: String, _ parameters: [String?] = []) throws(StoreError) -> [[String?]] {
        try using { connection throws(StoreError) in try connection.query(sql, parameters, operation: "query") }
    }

    // MARK: The connection

    /// Runs `body` on the connection (connecting first when there is none).
    /// After a failure the connection is dropped unless it is known to be
    /// fine (the rows' own fault): the next call starts from a fresh one.
    private func using<Result>(_ body: (Connection) throws(StoreError) -> Result) throws(StoreError) -> Result {
        if connection?.isUsable != true { try connect() }
        guard let connection else { throw StoreError(.connectionLost, "not connected", operation: "store") }
        do {
            return try body(connection)
        } catch {
            if error.kind != .invalidData || !connection.isUsable { self.connection = nil }
            throw error
        }
    }

    private static func sorted<Row>(_ rows: [Row], by precedes: (Row, Row) -> Bool) -> [Row] {
        // Batches come sorted: checking costs one pass, sorting only when needed.
        for index in rows.indices.dropFirst() where precedes(rows[index], rows[index - 1]) {
            return rows.sorted(by: precedes)
        }
        return rows
    }

    private static func eventPrecedes(_ a: EventRow, _ b: EventRow) -> Bool {
        if a.agentID != b.agentID { return a.agentID < b.agentID }
        if a.bootID != b.bootID { return a.bootID < b.bootID }
        return a.sequence < b.sequence
    }

    private static func lossPrecedes(_ a: LossRow, _ b: LossRow) -> Bool {
        if a.agentID != b.agentID { return a.agentID < b.agentID }
        if a.bootID != b.bootID { return a.bootID < b.bootID }
        return a.extent.start < b.extent.start
    }

    private static func bootEndPrecedes(_ a: BootEndRow, _ b: BootEndRow) -> Bool {
        if a.agentID != b.agentID { return a.agentID < b.agentID }
        return a.bootID < b.bootID
    }
}

/// Sequence numbers of one boot that no event and no loss covers.
package struct SequenceGap: Sendable, Equatable {
    package var agentID: String
    package var bootID: String
    package var firstSequence: UInt64
    package var lastSequence: UInt64
    package var count: UInt64

    package init(agentID: String, bootID: String, firstSequence: UInt64, lastSequence: UInt64, count: UInt64) {
        self.agentID = agentID
        self.bootID = bootID
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.count = count
    }
}

extension LossRow.Extent {
    /// Where it sorts: the range's first number, or the sequence the drops preceded.
    var start: UInt64 {
        switch self {
        case .range(let first, _): first
        case .before(let sequence, _): sequence
        }
    }
}
