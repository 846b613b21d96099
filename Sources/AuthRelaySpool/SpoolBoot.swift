/// A boot whose directory an open found besides the current one: an earlier
/// run of the agent, to be delivered with its own ids and numbers and whose
/// end (`AR3_REPORT_BOOT_END`) the current boot reports.
package struct SpoolBoot: Sendable, Equatable {
    package enum Ending: Sendable, Equatable {
        /// `markClean` ran: `lastSequence` is the last the sender assigned.
        case clean
        /// Killed, crashed, or a `state` file that is missing or garbled:
        /// `lastSequence` is the highest that reads back from the spool.
        case unclean
    }

    package var agentID: String
    package var bootID: String
    package var ending: Ending
    /// nil: the boot never spooled anything the spool can still find.
    package var lastSequence: UInt64?
    /// The lowest sequence the spool still holds for it (a record or a loss)
    /// above what was acknowledged; nil when nothing is left to deliver.
    package var firstUnacknowledged: UInt64?
    /// CLOCK_REALTIME ns: the clean stop, or the last write to its last segment.
    package var endedNanoseconds: UInt64
}

/// What the spool holds and what it has done since it was opened.
package struct SpoolStats: Sendable, Equatable {
    /// Bytes of segments and losses files (what `maxBytes` bounds).
    package var bytes: Int64 = 0
    package var segments = 0
    /// Boot directories, the current one included.
    package var boots = 0
    /// The oldest segment not wholly acknowledged, of any boot.
    package var oldestBootID: String?
    package var oldestFirstSequence: UInt64?
    /// CLOCK_REALTIME ns when that segment got its first record: the age of
    /// the oldest undelivered event, to a segment's fill time.
    package var oldestAppendedNanoseconds: UInt64?
    package var appendedEvents: UInt64 = 0
    package var appendedRecords: UInt64 = 0
    package var appendedBytes: UInt64 = 0
    /// Events in evicted segments (not acknowledged), and the segments.
    package var evictedEvents: UInt64 = 0
    package var evictedSegments: UInt64 = 0
    /// Sequences in corrupt ranges, each counted once when first recorded.
    package var corruptEvents: UInt64 = 0
    /// Bytes of torn records cut off (a crash mid-write).
    package var tornBytes: UInt64 = 0
    /// Appends (and evictions, acknowledgements) that failed on the disk.
    package var writeFailures: UInt64 = 0
    /// False from a failed write until `reopen()` succeeds.
    package var usable = true
}
