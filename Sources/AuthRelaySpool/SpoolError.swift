import SystemSupport

/// Why the spool refused or failed. Whatever wraps a `SystemError` names the
/// call and path that failed.
package enum SpoolError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidConfiguration(String)
    /// Something other than a directory is where the spool directory should be.
    case notADirectory(path: String)
    /// Owned by another user, or group- or world-writable: events hold paths and pids.
    case unsafeDirectory(path: String, reason: String)
    /// Another process holds the directory's lock (still, after half a second).
    case inUse(path: String)
    /// A spool file of a format version this code does not read.
    case unsupportedFormat(path: String, version: UInt32)
    /// A write, create, sync or remove failed (full disk, read-only, gone):
    /// the spool is unusable until `reopen()` succeeds; keep events in memory.
    case unwritable(SystemError)
    /// An earlier write failed (the error inside) and `reopen()` has not yet succeeded.
    case unusable(SystemError)
    /// A read failed (not damage: damage is a loss range).
    case unreadable(SystemError)
    /// Sequences must rise: `got` is below the next expected.
    case outOfOrder(expected: UInt64, got: UInt64)
    case recordTooLarge(bytes: Int, limit: Int)
    /// `markClean` ran: the boot takes no more records.
    case closed
    case unknownBoot(String)

    /// `error` (from a body that throws both) as a SpoolError: itself, or a SystemError wrapped by `wrap`.
    static func from(_ error: any Error, wrapping wrap: (SystemError) -> SpoolError) -> SpoolError {
        if let error = error as? SpoolError { return error }
        if let error = error as? SystemError { return wrap(error) }
        preconditionFailure("neither a SpoolError nor a SystemError: \(error)")
    }

    /// The system call failure inside, if any.
    package var systemError: SystemError? {
        switch self {
        case .unwritable(let error), .unusable(let error), .unreadable(let error): error
        default: nil
        }
    }

    package var description: String {
        switch self {
        case .invalidConfiguration(let text): "spool configuration: \(text)"
        case .notADirectory(let path): "spool directory \(path) is not a directory"
        case .unsafeDirectory(let path, let reason): "spool directory \(path) refused: \(reason)"
        case .inUse(let path): "spool directory \(path) is in use by another process"
        case .unsupportedFormat(let path, let version): "\(path): spool format \(version), this agent reads \(SpoolFormat.version)"
        case .unwritable(let error): "spool cannot be written: \(error)"
        case .unusable(let error): "spool unusable since: \(error)"
        case .unreadable(let error): "spool cannot be read: \(error)"
        case .outOfOrder(let expected, let got): "spool sequence \(got) is below the next expected, \(expected)"
        case .recordTooLarge(let bytes, let limit): "spool record of \(bytes) bytes over the bound of \(limit)"
        case .closed: "spool closed by a clean stop"
        case .unknownBoot(let boot): "spool has no boot \(boot)"
        }
    }
}
