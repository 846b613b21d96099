/// The other way to write a batch's events, measured against the pipelined
/// arrays (Benchmarks/postgres.sh runs both): binary COPY into a temporary
/// staging table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING into
/// `events`, in an explicit transaction. COPY cannot run in a pipeline, so
/// this takes three round trips where the arrays take one.
enum CopyStaging {
    static let table = "authrelay_staging_events"

    /// Per session: the table lives as long as the connection, emptied at every commit.
    static let create = "CREATE TEMPORARY TABLE IF NOT EXISTS \(table) (LIKE events) ON COMMIT DELETE ROWS"

    static var copySQL: String {
        let names = (Tables.events.columns.map(\.name) + ["collector_id"]).joined(separator: ", ")
        return "COPY \(table) (\(names)) FROM STDIN (FORMAT binary)"
    }

    static let merge = "INSERT INTO events SELECT * FROM \(table) ON CONFLICT DO NOTHING"

    /// Stores `events` (sorted) in one transaction; how many were new.
    static func store(_ events: [EventRow], collectorID: String, on connection: Connection) throws(StoreError) -> Int {
        let data = try copyData(events, collectorID: collectorID)
        if !connection.hasStagingTable {
            try connection.execute(create, operation: "store")
            connection.hasStagingTable = true
        }
        try connection.execute("BEGIN", operation: "store")
        do {
            try connection.copy(copySQL, data: data, operation: "store")
            let replies = try connection.execute("\(merge); COMMIT", operation: "store")
            return replies.first?.affected ?? 0
        } catch {
            if connection.isUsable { _ = try? connection.execute("ROLLBACK", operation: "store") }
            throw error
        }
    }

    /// Binary COPY: the signature, flags and header extension, then per row
    /// the field count and each field as the arrays carry it, then -1.
    static func copyData(_ rows: [EventRow], collectorID: String) throws(StoreError) -> [UInt8] {
        let columns = Tables.events.columns
        var writer = BinaryWriter(capacity: 19 + rows.count * 256)
        writer.raw(Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        writer.int32(0)
        writer.int32(0)
        for row in rows {
            writer.int16(Int16(columns.count + 1))
            for column in columns { column.write(row, &writer) }
            writer.text(collectorID)
        }
        writer.int16(-1)
        if writer.overflow {
            throw StoreError(.invalidData, "events: a value over PostgreSQL's bigint (2^63 - 1)", operation: "store")
        }
        return writer.bytes
    }
}
