/// The tables the store writes, column by column, in the schema's order
/// (Schema.swift creates them). Each insert is one statement over binary
/// arrays, one per column, unnested into rows: one prepared statement for
/// any number of rows, no per-row parsing of SQL.
struct Table<Row>: Sendable {
    let name: String
    let columns: [Column<Row>]
    /// Rows already present by a unique key are skipped, not errors.
    let skipsDuplicates: Bool

    /// The name the statement is prepared under.
    var statementName: String { "authrelay_insert_\(name)" }

    /// INSERT INTO t (c1, ..., collector_id) SELECT *, $N+1 FROM unnest($1::type[], ..., $N::type[]) [ON CONFLICT DO NOTHING]
    var insertSQL: String {
        let names = (columns.map(\.name) + ["collector_id"]).joined(separator: ", ")
        let arrays = columns.enumerated().map { "$\($0.offset + 1)::\($0.element.kind.arrayName)" }.joined(separator: ", ")
        let conflict = skipsDuplicates ? " ON CONFLICT DO NOTHING" : ""
        return "INSERT INTO \(name) (\(names)) SELECT *, $\(columns.count + 1)::text FROM unnest(\(arrays))\(conflict)"
    }

    /// The statement's parameters for `rows`: one binary array per column, then the collector's id.
    func parameters(_ rows: [Row], collectorID: String) throws(StoreError) -> [Parameter] {
        var parameters: [Parameter] = []
        parameters.reserveCapacity(columns.count + 1)
        for column in columns {
            let array = column.array(rows)
            if array.overflow {
                throw StoreError(.invalidData, "\(name).\(column.name): a value over PostgreSQL's bigint (2^63 - 1)",
                                 operation: "store")
            }
            parameters.append(Parameter(binary: array.bytes))
        }
        parameters.append(Parameter(text: collectorID))
        return parameters
    }
}

enum Tables {
    static let events = Table<EventRow>(name: "events", columns: [
        Column("agent_id", .text) { row, out in out.text(row.agentID) },
        Column("boot_id", .text) { row, out in out.text(row.bootID) },
        Column("seq", .bigint) { row, out in out.bigint(row.sequence) },
    ] + decisionColumns(), skipsDuplicates: true)

    static let legacyEvents = Table<EventRow>(name: "legacy_events", columns: [
        Column("seq", .bigint) { row, out in out.bigint(row.sequence) },
    ] + decisionColumns(), skipsDuplicates: false)

    static let losses = Table<LossRow>(name: "losses", columns: [
        Column("agent_id", .text) { row, out in out.text(row.agentID) },
        Column("boot_id", .text) { row, out in out.text(row.bootID) },
        Column("reason", .text) { row, out in out.text(row.reason.rawValue) },
        Column("first_seq", .bigint) { row, out in
            if case .range(let first, _) = row.extent { out.bigint(first) } else { out.null() }
        },
        Column("last_seq", .bigint) { row, out in
            if case .range(_, let last) = row.extent { out.bigint(last) } else { out.null() }
        },
        Column("before_seq", .bigint) { row, out in
            if case .before(let sequence, _) = row.extent { out.bigint(sequence) } else { out.null() }
        },
        Column("count", .bigint) { row, out in out.bigint(row.extent.count) },
        Column("received_ns", .bigint) { row, out in out.bigint(row.receivedNanoseconds) },
    ] + peerColumns(\.peer), skipsDuplicates: true)

    static let bootEnds = Table<BootEndRow>(name: "boot_ends", columns: [
        Column("agent_id", .text) { row, out in out.text(row.agentID) },
        Column("boot_id", .text) { row, out in out.text(row.bootID) },
        Column("ending", .text) { row, out in out.text(row.ending.rawValue) },
        Column("last_seq", .bigint) { row, out in out.bigint(row.lastSequence) },
        Column("ended_ns", .bigint) { row, out in out.bigint(row.endedNanoseconds) },
        Column("reported_by", .text) { row, out in out.text(row.reportedBy) },
        Column("received_ns", .bigint) { row, out in out.bigint(row.receivedNanoseconds) },
    ] + peerColumns(\.peer), skipsDuplicates: true)

    /// What every event carries, batch or legacy: the decision, its arrival, the peer.
    private static func decisionColumns() -> [Column<EventRow>] {
        [
            Column("timestamp_ns", .bigint) { row, out in out.bigint(row.timestampNanoseconds) },
            Column("kind", .text) { row, out in out.text(row.kind) },
            Column("verdict", .text) { row, out in out.text(row.verdict) },
            Column("decision_ns", .bigint) { row, out in out.bigint(row.decisionNanoseconds) },
            Column("pid", .integer) { row, out in out.integer(row.pid) },
            Column("ppid", .integer) { row, out in out.integer(row.ppid) },
            Column("uid", .bigint) { row, out in out.bigint(row.uid) },
            Column("gid", .bigint) { row, out in out.bigint(row.gid) },
            Column("flags", .bigint) { row, out in out.bigint(row.flags) },
            Column("exe_path", .text) { row, out in out.text(row.executablePath) },
            Column("target_path", .text) { row, out in out.text(row.targetPath) },
            Column("digest", .bytea) { row, out in out.bytea(row.digest) },
            Column("received_ns", .bigint) { row, out in out.bigint(row.receivedNanoseconds) },
        ] + peerColumns(\.peer)
    }

    private static func peerColumns<Row>(_ peer: KeyPath<Row, PeerCredentials?> & Sendable) -> [Column<Row>] {
        [
            Column("peer_uid", .bigint) { row, out in if let peer = row[keyPath: peer] { out.bigint(peer.uid) } else { out.null() } },
            Column("peer_gid", .bigint) { row, out in if let peer = row[keyPath: peer] { out.bigint(peer.gid) } else { out.null() } },
            Column("peer_pid", .integer) { row, out in if let peer = row[keyPath: peer] { out.integer(peer.pid) } else { out.null() } },
        ]
    }
}

extension EventRow {
    /// The batch's agent id ("" for a legacy event, which the events table never gets).
    var agentID: String {
        if case .batch(let agentID, _) = source { return agentID }
        return ""
    }

    var bootID: String {
        if case .batch(_, let bootID) = source { return bootID }
        return ""
    }
}
