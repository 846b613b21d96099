import CLibPQ
import Glibc
import SystemSupport

/// One libpq connection, used by one thread. libpq runs non-blocking under
/// it and every wait is a poll on its socket with a deadline, so no call can
/// hang on a server that stopped answering (libpq's blocking calls wait
/// forever). The only file that calls libpq; nothing C leaves it.
package final class Connection {
    private let handle: OpaquePointer
    private let operationTimeout: Duration
    private var abandoned = false
    /// Set once this session has prepared the store's statements (they need the schema).
    package var hasStatements = false
    /// Set once this session has its COPY staging table (CopyStaging).
    package var hasStagingTable = false

    /// Connects (bounded by the connect timeout) and sets non-blocking mode.
    package init(_ settings: ConnectionSettings) throws(StoreError) {
        let given = try Self.parse(settings.conninfo)
        var parameters = [("dbname", settings.conninfo)]
        if let file = settings.passwordFile {
            let text: String
            do { text = String(decoding: try FileSystem.readFile(file), as: UTF8.self) } catch {
                throw StoreError(.authenticationFailed, "cannot read the password file", operation: "connect", system: error)
            }
            parameters.append(("password", String(text.prefix { $0 != "\n" && $0 != "\r\n" })))
        }
        if !given.contains("connect_timeout") {
            parameters.append(("connect_timeout", "\(max(2, settings.connectTimeout.roundedUpMilliseconds / 1000))"))
        }
        parameters.append(("fallback_application_name", settings.applicationName))
        // Text goes to the server as UTF-8 bytes (binary parameters and COPY).
        parameters.append(("client_encoding", "UTF8"))
        let connection = withCStringArray(parameters.map(\.0)) { keywords in
            withCStringArray(parameters.map(\.1)) { values in PQconnectdbParams(keywords, values, 1) }
        }
        guard let connection else { throw StoreError(.other, "libpq could not allocate a connection", operation: "connect") }
        if PQstatus(connection) != CONNECTION_OK {
            let message = Self.text(PQerrorMessage(connection))
            PQfinish(connection)
            throw StoreError(StoreError.classify(message: message, sqlState: nil, connectionBad: true), message,
                             operation: "connect")
        }
        // libpq prints the server's notices to stderr by default; the store has nothing to say about them.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        if PQsetnonblocking(connection, 1) != 0 {
            let message = Self.text(PQerrorMessage(connection))
            PQfinish(connection)
            throw StoreError(.other, message, operation: "connect")
        }
        handle = connection
        operationTimeout = settings.operationTimeout
    }

    deinit { PQfinish(handle) }

    /// False once libpq found the connection broken (or we gave up on it).
    package var isUsable: Bool { !abandoned && PQstatus(handle) == CONNECTION_OK }

    /// The server's version number (150008 for 15.8).
    package var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// The keywords a conninfo sets; fails when libpq cannot read it.
    package static func parse(_ conninfo: String) throws(StoreError) -> Set<String> {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &error) else {
            let message = error.map { text(UnsafePointer($0)) } ?? "cannot parse the connection string"
            PQfreemem(error)
            throw StoreError(.other, message, operation: "connect")
        }
        defer { PQconninfoFree(options) }
        var keywords = Set<String>()
        var option = options
        while let keyword = option.pointee.keyword {
            if option.pointee.val != nil { keywords.insert(String(cString: keyword)) }
            option += 1
        }
        return keywords
    }

    /// libpq's version (150008 for 15.8).
    package static var libraryVersion: Int { Int(PQlibVersion()) }

    // MARK: Simple queries

    /// Runs `sql` (one or more statements, simple protocol, no parameters);
    /// every statement's reply. Throws the first failure once the server has
    /// finished with the string (the statements after a failed one do not run).
    @discardableResult
    package func execute(_ sql: String, operation: String) throws(StoreError) -> [Reply] {
        let deadline = SystemClock.deadline(after: operationTimeout)
        guard PQsendQuery(handle, sql) == 1 else { throw failure(operation) }
        try flush(until: deadline, operation)
        return try replies(until: deadline, operation)
    }

    /// One statement with text parameters (nil is NULL); its rows as text.
    package func query(_ sql: String, _ parameters: [String?] = [], operation: String) throws(StoreError) -> [[String?]] {
        let deadline = SystemClock.deadline(after: operationTimeout)
        let encoded = parameters.map { $0.map { Parameter(text: $0) } ?? .null }
        let sent = Parameter.withArrays(encoded) { count, values, lengths, formats in
            PQsendQueryParams(handle, sql, count, nil, values, lengths, formats, 0)
        }
        guard sent == 1 else { throw failure(operation) }
        try flush(until: deadline, operation)
        return try replies(until: deadline, operation).last?.rows ?? []
    }

    // MARK: Pipelines

    /// One step of a pipeline: a prepared statement and its parameters.
    package struct Step {
        package var statement: String
        package var parameters: [Parameter]
        package init(_ statement: String, _ parameters: [Parameter]) {
            self.statement = statement
            self.parameters = parameters
        }
    }

    /// Prepares named statements in one round trip (per connection: a new
    /// connection prepares again).
    package func prepare(_ statements: [(name: String, sql: String)], operation: String) throws(StoreError) {
        try pipeline(operation) { () throws(StoreError) in
            for statement in statements where PQsendPrepare(handle, statement.name, statement.sql, 0, nil) != 1 {
                throw failure(operation)
            }
            return statements.count
        }
    }

    /// Sends every step, then one Sync, and reads every reply: one round
    /// trip. Without an explicit BEGIN the steps run as one implicit
    /// transaction that commits at the Sync, or rolls back entirely when any
    /// step fails (PostgreSQL's extended protocol: a Sync ends the implicit
    /// transaction). So a returned reply list means committed; a throw means
    /// none of it was.
    package func run(_ steps: [Step], operation: String) throws(StoreError) -> [Reply] {
        try pipeline(operation) { () throws(StoreError) in
            for step in steps {
                let sent = Parameter.withArrays(step.parameters) { count, values, lengths, formats in
                    PQsendQueryPrepared(handle, step.statement, count, values, lengths, formats, 0)
                }
                if sent != 1 { throw failure(operation) }
            }
            return steps.count
        }
    }

    /// Enters pipeline mode, lets `send` queue its commands (it returns how
    /// many), syncs, reads one reply per command and the Sync's, leaves
    /// pipeline mode. Throws the first failure after reading up to the Sync,
    /// so the connection is ready for the next call.
    @discardableResult
    private func pipeline(_ operation: String, _ send: () throws(StoreError) -> Int) throws(StoreError) -> [Reply] {
        let deadline = SystemClock.deadline(after: operationTimeout)
        guard PQenterPipelineMode(handle) == 1 else { throw failure(operation) }
        defer { PQexitPipelineMode(handle) }
        let count = try send()
        guard PQpipelineSync(handle) == 1 else { throw failure(operation) }
        try flush(until: deadline, operation)
        var replies: [Reply] = []
        var firstFailure: StoreError?
        do throws(StoreError) {
            for _ in 0..<count {
                guard let reply = try nextReply(until: deadline, operation) else { continue }
                if firstFailure == nil, let error = reply.failure(operation, connectionBad: !isUsable) { firstFailure = error }
                replies.append(reply)
                _ = try nextReply(until: deadline, operation)  // the NULL that ends each command's results
            }
            guard let sync = try nextReply(until: deadline, operation), sync.status == .pipelineSync else {
                throw failure(operation, "the server's pipeline answer ended early")
            }
        } catch {
            throw firstFailure ?? error  // the first reason, not the broken connection it led to
        }
        if let firstFailure { throw firstFailure }
        return replies
    }

    // MARK: COPY

    /// `sql` must be a COPY ... FROM STDIN: sends `data` as its whole input
    /// and ends it; the rows COPY took. Not in a pipeline (libpq refuses COPY there).
    @discardableResult
    package func copy(_ sql: String, data: [UInt8], operation: String) throws(StoreError) -> Int {
        let deadline = SystemClock.deadline(after: operationTimeout)
        guard PQsendQuery(handle, sql) == 1 else { throw failure(operation) }
        try flush(until: deadline, operation)
        guard let started = try nextReply(until: deadline, operation) else { throw failure(operation, "no reply to COPY") }
        if let error = started.failure(operation, connectionBad: !isUsable) {
            _ = try replies(until: deadline, operation)
            throw error
        }
        var offset = 0
        while offset < data.count {
            let chunk = min(data.count - offset, 1 << 20)
            let put = data.withUnsafeBufferPointer { bytes in
                bytes.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    PQputCopyData(handle, $0 + offset, Int32(chunk))
                }
            }
            if put < 0 { throw failure(operation) }
            if put == 0 { try wait(for: .writable, until: deadline, operation); continue }
            offset += chunk
        }
        while true {
            let ended = PQputCopyEnd(handle, nil)
            if ended < 0 { throw failure(operation) }
            if ended == 1 { break }
            try wait(for: .writable, until: deadline, operation)
        }
        try flush(until: deadline, operation)
        return try replies(until: deadline, operation).last?.affected ?? 0
    }

    // MARK: Waiting, bounded

    /// Replies until libpq's NULL; throws the first failure among them.
    private func replies(until deadline: UInt64, _ operation: String) throws(StoreError) -> [Reply] {
        var replies: [Reply] = []
        var firstFailure: StoreError?
        do throws(StoreError) {
            while let reply = try nextReply(until: deadline, operation) {
                if firstFailure == nil, let error = reply.failure(operation, connectionBad: !isUsable) { firstFailure = error }
                replies.append(reply)
                if reply.status == .copyIn { break }
            }
        } catch {
            throw firstFailure ?? error
        }
        if let firstFailure { throw firstFailure }
        return replies
    }

    /// The next result, waiting for the socket while libpq is busy; nil is
    /// libpq's NULL (no more results for this command).
    private func nextReply(until deadline: UInt64, _ operation: String) throws(StoreError) -> Reply? {
        while PQisBusy(handle) != 0 {
            try wait(for: .readable, until: deadline, operation)
            if PQconsumeInput(handle) == 0 {
                // Broken: what libpq read last may be the server's own reason
                // (a FATAL with its SQLSTATE, e.g. 57P01 at a shutdown).
                if let result = PQgetResult(handle) {
                    defer { PQclear(result) }
                    let reply = Reply(result)
                    if reply.status == .failed { return reply }
                }
                throw failure(operation)
            }
        }
        guard let result = PQgetResult(handle) else { return nil }
        defer { PQclear(result) }
        return Reply(result)
    }

    /// Sends what libpq has queued; reads meanwhile, as libpq asks, so a
    /// server that answers while we still send cannot deadlock us both.
    private func flush(until deadline: UInt64, _ operation: String) throws(StoreError) {
        while true {
            let result = PQflush(handle)
            if result == 0 { return }
            if result < 0 { throw failure(operation) }
            let ready = try wait(for: [.readable, .writable], until: deadline, operation)
            if ready.contains(.readable) && PQconsumeInput(handle) == 0 { throw failure(operation) }
        }
    }

    /// Polls libpq's socket; past the deadline the connection is given up
    /// (shut down at the socket: unusable from now on) and the call fails.
    @discardableResult
    private func wait(for events: PollEvents, until deadline: UInt64, _ operation: String) throws(StoreError) -> PollEvents {
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw failure(operation) }
        let remaining = SystemClock.remaining(until: deadline)
        let ready: PollEvents
        do {
            ready = try FileDescriptor.borrowing(socket) { descriptor throws(SystemError) in
                try descriptor.wait(for: events, timeout: remaining)
            }
        } catch {
            throw StoreError(.connectionLost, "cannot wait on the server's socket", operation: operation, system: error)
        }
        if ready.isEmpty {
            abandon()
            throw StoreError(.connectionLost, "no answer from the server within \(operationTimeout.shortDescription)",
                             operation: operation)
        }
        return ready
    }

    /// Makes the connection unusable now (a timed-out server may still be
    /// working on our call; whatever it commits later is a duplicate the
    /// next store skips, never an acknowledged loss).
    private func abandon() {
        abandoned = true
        try? FileDescriptor.borrowing(PQsocket(handle)) { descriptor throws(SystemError) in
            descriptor.shutdownReadingAndWriting()
        }
    }

    /// libpq's current message as a failure.
    private func failure(_ operation: String, _ fallback: String? = nil) -> StoreError {
        let message = Self.text(PQerrorMessage(handle))
        let text = message.isEmpty ? (fallback ?? "failed") : message
        return StoreError(StoreError.classify(message: text, sqlState: nil, connectionBad: !isUsable), text,
                          operation: operation)
    }

    /// A C message without its trailing newline.
    static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        var text = String(cString: pointer)
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}

/// `body` with a C array of C strings (NULL-terminated) for `strings`.
private func withCStringArray<Result>(_ strings: [String],
                                      _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> Result) -> Result {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
