import SystemSupport

/// A boot directory's `state` file: small text, replaced atomically (a
/// temporary file renamed over it) when the boot starts and at its clean stop.
///
///     authrelay-spool-state 1
///     agent_id host-7
///     boot_id 5f0c...
///     ending running|clean
///     last_seq 81234        (or -)
///     acknowledged 80000    (or -)
///     ended_ns 1718000000000000000
///
/// Anything else (missing, cut short, a foreign line) reads as an unclean end.
struct BootState: Equatable {
    var agentID: String
    var bootID: String
    var clean: Bool
    var lastSequence: UInt64?
    var acknowledgedThrough: UInt64?
    var endedNanoseconds: UInt64

    static let firstLine = "authrelay-spool-state 1"

    var text: String {
        """
        \(Self.firstLine)
        agent_id \(agentID)
        boot_id \(bootID)
        ending \(clean ? "clean" : "running")
        last_seq \(lastSequence.map(String.init) ?? "-")
        acknowledged \(acknowledgedThrough.map(String.init) ?? "-")
        ended_ns \(endedNanoseconds)

        """
    }

    /// nil when it does not read as a state file.
    init?(text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(Self.firstLine), lines.last == "" else { return nil }
        lines.removeFirst()
        lines.removeLast()
        var fields: [Substring: Substring] = [:]
        for line in lines {
            guard let space = line.firstIndex(of: " ") else { return nil }
            fields[line[..<space]] = line[line.index(after: space)...]
        }
        guard fields.count == 6, let agentID = fields["agent_id"], let bootID = fields["boot_id"],
              let ending = fields["ending"], ending == "clean" || ending == "running",
              let last = fields["last_seq"], let acknowledged = fields["acknowledged"],
              let ended = fields["ended_ns"].flatMap({ UInt64($0) }) else { return nil }
        func optionalNumber(_ text: Substring) -> UInt64?? { text == "-" ? .some(nil) : UInt64(text).map { .some($0) } }
        guard let lastSequence = optionalNumber(last), let acknowledgedThrough = optionalNumber(acknowledged) else { return nil }
        self.init(agentID: String(agentID), bootID: String(bootID), clean: ending == "clean", lastSequence: lastSequence,
                  acknowledgedThrough: acknowledgedThrough, endedNanoseconds: ended)
    }

    init(agentID: String, bootID: String, clean: Bool, lastSequence: UInt64?, acknowledgedThrough: UInt64?, endedNanoseconds: UInt64) {
        self.agentID = agentID
        self.bootID = bootID
        self.clean = clean
        self.lastSequence = lastSequence
        self.acknowledgedThrough = acknowledgedThrough
        self.endedNanoseconds = endedNanoseconds
    }

    static func load(directory: String) -> BootState? {
        FileSystem.readText(directory + "/" + SpoolFormat.statePath).flatMap { BootState(text: $0) }
    }

    func save(directory: String, durable: Bool) throws(SystemError) {
        try FileSystem.replaceFile(directory + "/" + SpoolFormat.statePath, with: Array(text.utf8), mode: 0o600, durable: durable)
    }
}
