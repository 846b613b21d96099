import CLibPQ

/// One libpq result, copied out into Swift values at once (the PGresult is
/// cleared before anything else runs, so no C pointer outlives the call).
package struct Reply: Sendable {
    package enum Status: Sendable, Equatable {
        case command
        case rows
        case copyIn
        case pipelineSync
        /// A pipeline step skipped because an earlier one failed.
        case pipelineAborted
        case failed
        case other(UInt32)
    }

    package var status: Status
    /// Text values; nil is NULL. Only for `.rows`.
    package var rows: [[String?]]
    /// Rows the command inserted, updated, deleted or copied (PQcmdTuples).
    package var affected: Int
    package var message: String
    package var sqlState: String?

    init(_ result: OpaquePointer) {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY: status = .command
        case PGRES_TUPLES_OK: status = .rows
        case PGRES_COPY_IN: status = .copyIn
        case PGRES_PIPELINE_SYNC: status = .pipelineSync
        case PGRES_PIPELINE_ABORTED: status = .pipelineAborted
        case PGRES_FATAL_ERROR, PGRES_BAD_RESPONSE: status = .failed
        case let other: status = .other(other.rawValue)
        }
        var rows: [[String?]] = []
        if status == .rows {
            let columns = PQnfields(result)
            for row in 0..<PQntuples(result) {
                rows.append((0..<columns).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                })
            }
        }
        self.rows = rows
        affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        message = Connection.text(PQresultErrorMessage(result))
        sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }  // PG_DIAG_SQLSTATE
    }

    /// The failure this reply reports, if it is one.
    func failure(_ operation: String, connectionBad: Bool) -> StoreError? {
        switch status {
        case .failed, .other:
            let message = self.message.isEmpty ? "the server reported a failure" : self.message
            return StoreError(StoreError.classify(message: message, sqlState: sqlState, connectionBad: connectionBad),
                              message, sqlState: sqlState, operation: operation)
        case .pipelineAborted:
            return StoreError(.other, "skipped: an earlier step failed", operation: operation)
        case .command, .rows, .copyIn, .pipelineSync:
            return nil
        }
    }
}

/// One parameter of a statement: bytes in PostgreSQL's binary format for the
/// statement's type, or text; nil bytes is NULL.
package struct Parameter: Sendable, Equatable {
    package var bytes: [UInt8]?
    package var binary: Bool

    package static let null = Parameter(bytes: nil, binary: false)

    package init(text: String) {
        bytes = Array(text.utf8)
        binary = false
    }

    package init(binary bytes: [UInt8]) {
        self.bytes = bytes
        binary = true
    }

    private init(bytes: [UInt8]?, binary: Bool) {
        self.bytes = bytes
        self.binary = binary
    }

    /// libpq's four parallel arrays for `parameters`, valid during `body`:
    /// the values point into one buffer that holds every parameter's bytes
    /// (libpq copies them into its output buffer before returning).
    static func withArrays<Result>(
        _ parameters: [Parameter],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> Result
    ) -> Result {
        var buffer: [UInt8] = [0]  // never empty: an empty value still needs an address
        buffer.reserveCapacity(parameters.reduce(1) { $0 + ($1.bytes?.count ?? 0) })
        var offsets: [Int?] = []
        for parameter in parameters {
            if let bytes = parameter.bytes {
                offsets.append(buffer.count)
                buffer += bytes
                if !parameter.binary { buffer.append(0) }  // libpq reads text values up to a NUL
            } else {
                offsets.append(nil)
            }
        }
        let lengths = parameters.map { Int32($0.bytes?.count ?? 0) }
        let formats = parameters.map { Int32($0.binary ? 1 : 0) }
        return buffer.withUnsafeBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let values: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
            return values.withUnsafeBufferPointer { values in
                lengths.withUnsafeBufferPointer { lengths in
                    formats.withUnsafeBufferPointer { formats in
                        body(Int32(parameters.count), values.baseAddress, lengths.baseAddress, formats.baseAddress)
                    }
                }
            }
        }
    }
}
