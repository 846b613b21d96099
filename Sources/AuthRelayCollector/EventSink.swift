import SystemSupport

/// Where accepted events go. A write returns only once the sink has stored
/// everything (and made it durable when its policy says so); the collector
/// acknowledges a report only after that. A failed write stores nothing.
///
/// The events' byte views are valid only during the call: a sink that keeps
/// anything copies it.
package protocol EventSink: AnyObject {
    /// Stores one batch's loss records and events together.
    func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError)
    /// Stores one version 1 event.
    func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError)
    /// Stores one line of the collector's own (a boot's end, a lost state), durably as a batch is.
    func write(note: CollectorNote, context: ReportContext) throws(SinkError)
    /// Where the output ends now, for a checkpoint; nil when it cannot be read back.
    var position: SinkPosition? { get }
    /// Makes everything written so far durable (before a checkpoint names it).
    func sync() throws(SinkError)
    /// Periodic work: e.g. syncing version 1 events under `--fsync batch`.
    func tick()
    func close()

    // MARK: Groups (the collector's writer thread, CollectorWriter.swift)

    /// Starts a group: the writes until `commitGroup` may be staged (kept in
    /// memory) rather than stored, to be stored together by `commitGroup`.
    func beginGroup()
    /// Stores everything the group staged at once (JSON Lines: one write and,
    /// per policy, one fdatasync; PostgreSQL: one transaction). A throw:
    /// nothing the group staged is stored.
    func commitGroup() throws(SinkError) -> GroupCommit
}

/// What storing a group did besides storing it.
package struct GroupCommit: Sendable, Equatable {
    /// The output was rotated just before the group's lines went out.
    package var rotated = false
    /// Events the store already held (another collector's copy): written by nobody this time.
    package var duplicateEvents: UInt64 = 0

    package init(rotated: Bool = false, duplicateEvents: UInt64 = 0) {
        self.rotated = rotated
        self.duplicateEvents = duplicateEvents
    }
}

extension EventSink {
    /// A sink that stores at every write has nothing to stage.
    package func beginGroup() {}
    package func commitGroup() throws(SinkError) -> GroupCommit { GroupCommit() }
}

/// A failed sink operation: the system call, on which file, and the OS error.
public struct SinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public var system: SystemError
    /// The report itself can never be stored by this sink (a value its store
    /// cannot hold): it is answered REJECTED, not SINK_ERROR, so the agent
    /// does not resend it forever.
    public var refusesReport = false

    public init(_ system: SystemError) {
        self.system = system
    }

    /// A database's refusal: `operation` ("store", "connect"), the store's
    /// classified message (no errno: libpq's status is in the text).
    public static func database(_ operation: String, target: String, _ message: String) -> SinkError {
        SinkError(SystemError(function: "postgres \(operation)", errno: 0, path: target, detail: message))
    }

    /// "open /var/log/authrelay/events.jsonl: Permission denied (errno 13)"
    public var description: String { system.description }
}

/// A point in the JSON Lines output: the file (by device and inode, which a
/// rename keeps) and the byte offset of the end of the last complete line.
package struct SinkPosition: Codable, Equatable, Sendable {
    package var device: UInt64
    package var inode: UInt64
    package var offset: Int64
}

/// Accepts everything and stores nothing: for benchmarks.
final class NullSink: EventSink {
    func write(events: ArraySlice<ReceivedEvent>, losses: [LossRecord], context: ReportContext) throws(SinkError) {}
    func writeLegacy(_ event: ReceivedEvent, context: ReportContext) throws(SinkError) {}
    func write(note: CollectorNote, context: ReportContext) throws(SinkError) {}
    var position: SinkPosition? { nil }
    func sync() throws(SinkError) {}
    func tick() {}
    func close() {}
}
