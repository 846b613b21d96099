import SystemSupport

/// Why the database did not take a call, sorted by what the caller does
/// next. For every kind but `invalidData` nothing of the call was committed
/// and the same rows may be stored again later: the collector stops
/// acknowledging, reconnects with backoff and retries (agents keep their
/// events in their spools meanwhile). `invalidData` is the rows' fault: a
/// retry fails the same way, so the batch is to be refused, not retried.
package struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable, Equatable {
        /// No server answers, or the connection broke or timed out (no answer
        /// within the operation timeout: a server that hangs is treated as gone).
        case connectionLost = "connection lost"
        /// The server is starting up, shutting down, recovering, read-only
        /// (a standby) or full of clients: it will take calls again soon.
        case serverRestarting = "server restarting"
        /// The server refused our credentials: an operator must act, but
        /// retrying is harmless.
        case authenticationFailed = "authentication failed"
        /// The server cannot write (SQLSTATE 53100 disk_full, or out of memory).
        case diskFull = "disk full"
        /// The rows break a rule of the schema or of PostgreSQL's types (a
        /// value over bigint, a NUL in text): refuse them, do not retry.
        case invalidData = "invalid data"
        /// Anything else (a deadlock victim, a bug): retry with backoff.
        case other
    }

    package var kind: Kind
    /// libpq's message (PQerrorMessage, or the result's), without its newline.
    package var message: String
    /// The five-character SQLSTATE when the server sent one (none for
    /// failures before or outside a query: refused connections, timeouts).
    package var sqlState: String?
    /// What we were doing: "connect", "migrate", "store", "query".
    package var operation: String
    /// The system call behind it, when one failed (waiting on the socket).
    package var system: SystemError?

    package init(_ kind: Kind, _ message: String, sqlState: String? = nil, operation: String, system: SystemError? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.operation = operation
        self.system = system
    }

    /// False only for `invalidData`: everything else may succeed later.
    package var isRetryable: Bool { kind != .invalidData }

    /// "store: connection lost: server closed the connection unexpectedly (SQLSTATE 57P01)"
    package var description: String {
        var text = "\(operation): \(kind.rawValue): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let system { text += ": \(system)" }
        return text
    }

    /// Sorts a failure by SQLSTATE when there is one, else by libpq's text
    /// (connection-time errors reach libpq as text only: PQconnectPoll keeps
    /// no SQLSTATE). `connectionBad`: PQstatus says the connection is gone.
    package static func classify(message: String, sqlState: String?, connectionBad: Bool) -> Kind {
        if let sqlState {
            switch sqlState {
            case "57P01", "57P02", "57P03", "25006", "53300": return .serverRestarting
            case "28000", "28P01": return .authenticationFailed
            case "53100", "53200", "53000": return .diskFull
            default: break
            }
            if sqlState.hasPrefix("08") { return .connectionLost }
            if sqlState.hasPrefix("22") || sqlState.hasPrefix("23") { return .invalidData }
            if connectionBad { return .connectionLost }
            return .other
        }
        let text = message.lowercased()
        let restarting = ["the database system is starting up", "the database system is shutting down",
                          "the database system is in recovery mode", "the database system is not yet accepting connections",
                          "the database system is not accepting connections", "too many clients already",
                          "terminating connection due to administrator command"]
        if restarting.contains(where: text.contains) { return .serverRestarting }
        let authentication = ["authentication failed", "no pg_hba.conf entry", "no password supplied",
                              "password is required", "role \"", "pg_hba.conf rejects"]
        if authentication.contains(where: text.contains) { return .authenticationFailed }
        if text.contains("no space left on device") || text.contains("could not extend file") { return .diskFull }
        return connectionBad ? .connectionLost : .other
    }
}
