import AuthRelayProtocol
import Synchronization
import SystemSupport

/// How earlier runs ended, written down until a version 3 collector has been
/// told (`AR3_REPORT_BOOT_END`): the spool forgets a boot once its events are
/// delivered, which a version 2 collector can take, so the end is kept here.
///
/// `boot-ends` in the spool directory (the spool reads only directories
/// there), one line per boot, replaced atomically:
///
///     agent_id<TAB>boot_id<TAB>clean|unclean<TAB>last_seq<TAB>ended_ns<TAB>reported_by
///
/// Ids have no control characters (the spool refuses them), so a tab
/// separates fields. Reporting twice is harmless: the collector writes one
/// boot_end line per (agent, boot). Bounded: against a version 2 collector
/// every restart adds a line that is never crossed off, so past `capacity`
/// the oldest go.
final class BootEndLedger: Sendable {
    static let fileName = "boot-ends"

    let path: String
    let capacity: Int
    private let entries: Locked<[BootEnd]>

    /// Reads what an earlier run left (a file that does not read is empty).
    init(directory: String, capacity: Int = 1000) {
        path = directory + "/" + Self.fileName
        self.capacity = capacity
        let text = FileSystem.readText(path) ?? ""
        entries = Locked(text.split(separator: "\n").compactMap(Self.parse))
    }

    /// The ends not reported yet, oldest first.
    var pending: [BootEnd] { entries.withLock { $0 } }

    /// Writes down `ends` not held already (by agent and boot); throws when the file cannot be written.
    func add(_ ends: [BootEnd]) throws(SystemError) {
        try entries.withLock { (entries) throws(SystemError) in
            let new = ends.filter { end in !entries.contains { $0.agentID == end.agentID && $0.bootID == end.bootID } }
            guard !new.isEmpty else { return }
            let kept = Array((entries + new).suffix(capacity))
            try save(kept)
            entries = kept
        }
    }

    /// Forgets `end` (reported).
    func remove(_ end: BootEnd) throws(SystemError) {
        try entries.withLock { (entries) throws(SystemError) in
            let left = entries.filter { $0.agentID != end.agentID || $0.bootID != end.bootID }
            guard left.count != entries.count else { return }
            try save(left)
            entries = left
        }
    }

    private func save(_ ends: [BootEnd]) throws(SystemError) {
        if ends.isEmpty {
            try FileSystem.removeFile(path)
            return
        }
        let text = ends.map(Self.line).joined()
        try FileSystem.replaceFile(path, with: Array(text.utf8), mode: 0o600, durable: true)
    }

    static func line(_ end: BootEnd) -> String {
        [end.agentID, end.bootID, end.ending == .clean ? "clean" : "unclean", String(end.lastSequence),
         String(end.endedNanoseconds), end.reportedBy].joined(separator: "\t") + "\n"
    }

    static func parse(_ line: Substring) -> BootEnd? {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[2] == "clean" || fields[2] == "unclean",
              let last = UInt64(fields[3]), let ended = UInt64(fields[4]), !fields[0].isEmpty, !fields[1].isEmpty
        else { return nil }
        return BootEnd(agentID: String(fields[0]), bootID: String(fields[1]), ending: fields[2] == "clean" ? .clean : .unclean,
                       lastSequence: last, endedNanoseconds: ended, reportedBy: String(fields[5]))
    }
}
