@testable import AuthRelayPostgres
import Testing

/// What needs no server: the binary formats, the failure sorting, the backoff.
@Suite struct EncodingTests {
    @Test("a bigint array is array_recv's format: one dimension, element oid 20, length, lower bound 1, values")
    func bigintArray() {
        let column = Column<UInt64>("n", .bigint) { value, out in out.bigint(value) }
        let bytes = column.array([1, 0x0102_0304_0506_0708]).bytes
        #expect(bytes == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 1,
                          0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,
                          0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(!column.array([UInt64(Int64.max)]).overflow)
        #expect(column.array([UInt64(Int64.max) + 1]).overflow)
    }

    @Test("an empty array has no dimensions; NULL is length -1; text is its UTF-8 bytes")
    func emptyNullAndText() {
        let column = Column<String?>("t", .text) { value, out in if let value { out.text(value) } else { out.null() } }
        #expect(column.array([]).bytes == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 25])
        #expect(column.array([nil, "é"]).bytes.suffix(10) == [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0xC3, 0xA9])
    }

    @Test("binary COPY starts with PostgreSQL's signature and ends with -1; each row has every column and the collector")
    func copyFormat() throws {
        let row = EventRow(source: .batch(agentID: "a", bootID: "b"), sequence: 1, timestampNanoseconds: 2, kind: "open",
                           verdict: "allow", pid: 3, executablePath: "/x", targetPath: "/y", receivedNanoseconds: 4)
        let data = try CopyStaging.copyData([row], collectorID: "c")
        #expect(Array(data.prefix(19)) == Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0] + [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(data[19..<21]) == [0, UInt8(Tables.events.columns.count + 1)])
        #expect(Array(data.suffix(2)) == [0xFF, 0xFF])
        var over = row
        over.timestampNanoseconds = .max
        #expect(throws: StoreError.self) { try CopyStaging.copyData([over], collectorID: "c") }
    }

    @Test("the insert statement unnests one typed array per column and adds the collector's id")
    func insertStatement() {
        let sql = Tables.bootEnds.insertSQL
        #expect(sql.hasPrefix("INSERT INTO boot_ends (agent_id, boot_id, ending, last_seq, ended_ns, reported_by, received_ns, peer_uid, peer_gid, peer_pid, collector_id) SELECT *, $11::text FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]"))
        #expect(sql.hasSuffix(" ON CONFLICT DO NOTHING"))
        #expect(!Tables.legacyEvents.insertSQL.contains("ON CONFLICT"))
        #expect(Tables.events.columns.count == 19 && Tables.legacyEvents.columns.count == 17)
    }

    @Test("failures sort by SQLSTATE first, by libpq's text when there is none",
          arguments: [
              ("57P01", "terminating connection due to administrator command", false, StoreError.Kind.serverRestarting),
              ("57P03", "the database system is starting up", false, .serverRestarting),
              ("25006", "cannot execute INSERT in a read-only transaction", false, .serverRestarting),
              ("28P01", "password authentication failed for user \"x\"", false, .authenticationFailed),
              ("53100", "could not extend file: No space left on device", false, .diskFull),
              ("08006", "connection failure", false, .connectionLost),
              ("22021", "invalid byte sequence for encoding \"UTF8\": 0x00", false, .invalidData),
              ("23514", "new row violates check constraint", false, .invalidData),
              ("40P01", "deadlock detected", false, .other),
              ("42P01", "relation \"events\" does not exist", true, .connectionLost),
          ] as [(String, String, Bool, StoreError.Kind)])
    func classifyByState(state: String, message: String, bad: Bool, kind: StoreError.Kind) {
        #expect(StoreError.classify(message: message, sqlState: state, connectionBad: bad) == kind)
    }

    @Test("connection-time failures (text only) sort by what libpq says",
          arguments: [
              ("connection to server at \"127.0.0.1\", port 1 failed: Connection refused", StoreError.Kind.connectionLost),
              ("connection to server on socket \"/x/.s.PGSQL.5\" failed: FATAL:  the database system is shutting down", .serverRestarting),
              ("FATAL:  password authentication failed for user \"authrelay\"", .authenticationFailed),
              ("fe_sendauth: no password supplied", .authenticationFailed),
              ("FATAL:  sorry, too many clients already", .serverRestarting),
              ("server closed the connection unexpectedly", .connectionLost),
          ] as [(String, StoreError.Kind)])
    func classifyByText(message: String, kind: StoreError.Kind) {
        #expect(StoreError.classify(message: message, sqlState: nil, connectionBad: true) == kind)
    }

    @Test("the backoff doubles to its limit with at most a quarter more, and starts over after reset")
    func backoff() {
        var backoff = Backoff(first: .milliseconds(100), limit: .milliseconds(800))
        let delays = (0..<6).map { _ in backoff.nextDelay() }
        for (delay, base) in zip(delays, [100, 200, 400, 800, 800, 800]) {
            #expect(delay >= .milliseconds(base) && delay <= .milliseconds(base + base / 4))
        }
        backoff.reset()
        #expect(backoff.nextDelay() <= .milliseconds(125))
    }

    @Test("a connection string libpq cannot read fails before any connection, with libpq's reason")
    func badConninfo() {
        let error = #expect(throws: StoreError.self) { try Connection.parse("host=x port") }
        #expect(error?.message.contains("port") == true)
        #expect(throws: Never.self) { try Connection.parse("postgresql://u@h:5/db?sslmode=disable") }
    }
}
