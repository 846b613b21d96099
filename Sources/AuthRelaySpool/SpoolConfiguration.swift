/// When the spool asks the disk to make its writes durable (fdatasync).
/// Every append is one write(2) into the page cache: that already survives
/// the agent being killed (-9 included), as the kernel owns the cache. Only
/// a power loss or kernel crash needs the syncs below.
package enum SpoolDurability: Sendable, Equatable {
    /// No fdatasync but at `markClean`: a power loss can cost what the kernel had not written back (about 30 s by default).
    case none
    /// fdatasync each segment as it is closed (full, or a gap in the
    /// numbers, or `markClean`) and the directory once a segment was created:
    /// a power loss costs at most the open segment.
    case onSegmentClose
    /// `onSegmentClose`, and `tick(now:)` syncs the open segment once
    /// `interval` has passed since the last sync and something was written:
    /// a power loss costs about `interval`. The caller's thread decides when
    /// to tick (the spooler, between batches).
    case interval(Duration)
}

/// How one agent boot's spool is opened.
package struct SpoolConfiguration: Sendable, Equatable {
    /// Created 0700 when missing; refused when another user owns it or it is group- or world-writable.
    package var directory: String
    package var agentID: String
    /// A file name too: no "/", not "." or "..", no control characters.
    package var bootID: String
    /// Bound on segment and losses bytes, every boot together.
    package var maxBytes: Int64
    /// A segment is closed once the next record would take it past this.
    package var segmentBytes: Int64 = 8 << 20
    package var durability: SpoolDurability = .onSegmentClose

    package init(directory: String, agentID: String, bootID: String, maxBytes: Int64,
                 segmentBytes: Int64 = 8 << 20, durability: SpoolDurability = .onSegmentClose) {
        self.directory = directory
        self.agentID = agentID
        self.bootID = bootID
        self.maxBytes = maxBytes
        self.segmentBytes = segmentBytes
        self.durability = durability
    }

    func validate() throws(SpoolError) {
        try Self.checkID(agentID, field: "agent id")
        try Self.checkID(bootID, field: "boot id")
        if bootID.contains("/") || bootID == "." || bootID == ".." {
            throw .invalidConfiguration("boot id \"\(bootID)\" cannot name a directory")
        }
        if segmentBytes < 4096 { throw .invalidConfiguration("segment bytes \(segmentBytes) < 4096") }
        if maxBytes < segmentBytes { throw .invalidConfiguration("max bytes \(maxBytes) < segment bytes \(segmentBytes)") }
        if case .interval(let interval) = durability, interval <= .zero {
            throw .invalidConfiguration("a sync interval must be positive")
        }
    }

    /// The state file is text and the header keeps 64 bytes per id.
    private static func checkID(_ id: String, field: String) throws(SpoolError) {
        if id.isEmpty { throw .invalidConfiguration("empty \(field)") }
        if id.utf8.count > Spool.maxIDBytes { throw .invalidConfiguration("\(field) over \(Spool.maxIDBytes) bytes") }
        if id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw .invalidConfiguration("\(field) \"\(id)\" has a control character")
        }
    }
}
