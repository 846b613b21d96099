import CAuthRelayRPC
import Glibc

/// Where accepted events go. A write returns only once the sink has stored
/// everything (and made it durable when its policy says so); the collector
/// acknowledges a report only after that. A failed write stores nothing.
protocol EventSink: AnyObject {
    /// Stores one batch's loss records and events together.
    func write(events: UnsafeBufferPointer<ar_event>, losses: [LossRecord], context: ReportContext) throws(SinkError)
    /// Stores one version 1 event.
    func writeLegacy(_ event: UnsafePointer<ar_event>, context: ReportContext) throws(SinkError)
    /// Where the output ends now, for a checkpoint; nil when it cannot be read back.
    var position: SinkPosition? { get }
    /// Makes everything written so far durable (before a checkpoint names it).
    func sync() throws(SinkError)
    /// Periodic work: e.g. syncing version 1 events under `--fsync batch`.
    func tick()
    func close()
}

/// A failed sink operation: which, on what, and the OS error.
public struct SinkError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(errno)))"
    }
}

/// A point in the JSON Lines output: the file (by device and inode, which a
/// rename keeps) and the byte offset of the end of the last complete line.
struct SinkPosition: Codable, Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var offset: Int64
}

/// Accepts everything and stores nothing: for benchmarks.
final class NullSink: EventSink {
    func write(events: UnsafeBufferPointer<ar_event>, losses: [LossRecord], context: ReportContext) throws(SinkError) {}
    func writeLegacy(_ event: UnsafePointer<ar_event>, context: ReportContext) throws(SinkError) {}
    var position: SinkPosition? { nil }
    func sync() throws(SinkError) {}
    func tick() {}
    func close() {}
}
