import AuthRelayProtocol
import SystemSupport

/// A durable, bounded, append-only spool of framed records for one agent's
/// sender: what the collector has not acknowledged yet, on disk, so it
/// survives a collector outage and the agent's own death.
///
/// Layout (see `SpoolFormat` for the bytes): `directory/lock`, and per boot
/// `directory/<boot id>/` with `state` (`BootState`), `losses` (ranges lost
/// in the spool) and `segment-<first sequence, 20 digits>` files.
///
/// Threads: two at most, neither an auth thread: a spooler that appends and
/// a delivery thread that reads (`reader`) and acknowledges. One lock guards
/// everything; an append holds it for one write(2) (and, when full, an
/// eviction; under `.interval` or at a segment's close, an fdatasync). Never
/// call any of it from an auth thread: every call may wait on the disk.
///
/// Sequences rise within a boot. A gap (numbers the caller kept in memory
/// while the spool was unusable, say) starts a new segment and is no loss of
/// the spool's: readers step over it.
package final class Spool: @unchecked Sendable {
    /// Bytes of an agent or boot id: the protocol's bound.
    package static let maxIDBytes = Event.maxIDBytes

    package let configuration: SpoolConfiguration
    /// Only ever used under `lock` (hence @unchecked Sendable: the one lock is the rule).
    private let core: SpoolCore
    private let lock = Locked(())

    private init(configuration: SpoolConfiguration, core: SpoolCore) {
        self.configuration = configuration
        self.core = core
    }

    /// Runs `body` on the catalog under the spool's one lock.
    func locked<Result, Failure: Error>(_ body: (SpoolCore) throws(Failure) -> Result) throws(Failure) -> Result {
        try lock.withLock { _ throws(Failure) in try body(core) }
    }

    /// Opens the spool directory (made 0700 when missing), takes its lock,
    /// and recovers what is there: earlier boots to deliver, torn tails cut.
    package static func open(_ configuration: SpoolConfiguration) throws(SpoolError) -> Spool {
        try configuration.validate()
        try SpoolDirectory.prepare(configuration.directory)
        let lock = try SpoolDirectory.lock(configuration.directory)
        var recovery = Recovery(configuration: configuration, buffer: ReadBuffer(capacity: 1 << 20))
        let boots = try recovery.discover()
        let core = SpoolCore(configuration: configuration, boots: boots, lock: lock)
        core.counters.tornBytes = recovery.tornBytes
        core.counters.corruptEvents = recovery.corruptEvents
        return Spool(configuration: configuration, core: core)
    }

    /// The boots an open found besides the current one, oldest first, as they are now.
    package var earlierBoots: [SpoolBoot] {
        locked { core in core.boots.filter { !$0.isCurrent }.map(\.summary) }
    }

    /// The lowest sequence the current boot may append next (nil before its first record).
    package var nextSequence: UInt64? { locked { $0.nextSequence } }

    /// False from a failed write until `reopen()` succeeds.
    package var isUsable: Bool { locked { $0.failure == nil } }

    // MARK: Writing

    /// Appends `count` events the caller encoded (concatenated XDR), numbered
    /// from `firstSequence`: one write(2). When the spool would pass maxBytes,
    /// its oldest segments go first (`evicted`). Throws `.unwritable` with the
    /// system error when the disk refuses; from then on `.unusable` until
    /// `reopen()`. `count` is at least 1 (a precondition).
    package func append(events payload: UnsafeRawBufferPointer, firstSequence: UInt64, count: UInt32) throws(SpoolError) {
        try locked { core throws(SpoolError) in
            try core.append(kind: .events, first: firstSequence, count: count, payload: payload)
        }
    }

    package func append(events payload: [UInt8], firstSequence: UInt64, count: UInt32) throws(SpoolError) {
        try payload.withUnsafeBytes { raw in
            Result { () throws(SpoolError) in try append(events: raw, firstSequence: firstSequence, count: count) }
        }.get()
    }

    /// Appends a loss the caller knows of (the memory queue overflowed
    /// before these reached the spool) in its place among the events. `first <= last` (a precondition).
    package func appendLoss(first: UInt64, last: UInt64, reason: SpoolLossReason) throws(SpoolError) {
        var payload: [UInt8] = []
        payload.appendLittleEndian(last)
        payload.appendLittleEndian(reason.rawValue)
        let loss = SpoolLoss(first: first, last: last, reason: reason)
        try payload.withUnsafeBytes { raw in
            Result { () throws(SpoolError) in
                try locked { core throws(SpoolError) in
                    try core.append(kind: .loss, first: first, count: loss.savedCount, payload: raw)
                }
            }
        }.get()
    }

    /// Everything of `boot` wholly at or below `through` is delivered: its
    /// segments are deleted (the current boot's open segment stays until it
    /// is closed), and an earlier boot's directory once nothing is left of
    /// it; report its BOOT_END before acknowledging its last sequence (`through:
    /// 0` finishes a boot that holds nothing). Unknown boots are ignored.
    package func acknowledge(boot: String, through: UInt64) throws(SpoolError) {
        try locked { core throws(SpoolError) in try core.acknowledge(bootID: boot, through: through) }
    }

    /// The clean stop: the open segment synced and closed, `state` says clean
    /// with `lastSequence` (the last the sender assigned), synced. Appends
    /// are refused after it; reading and acknowledging go on.
    package func markClean(lastSequence: UInt64) throws(SpoolError) {
        try locked { core throws(SpoolError) in try core.markClean(lastSequence: lastSequence) }
    }

    /// fdatasync of the open segment (and the directory after a new one), whatever the policy.
    package func sync() throws(SpoolError) {
        try locked { core throws(SpoolError) in
            do throws(SystemError) { try core.syncWriter() } catch { throw .unwritable(error) }
        }
    }

    /// For `.interval`: syncs when the interval has passed since the last
    /// sync and something was written. Call it from the spooler's loop.
    package func tick(now: UInt64 = SystemClock.monotonicNanoseconds()) throws(SpoolError) {
        try locked { core throws(SpoolError) in
            do throws(SystemError) { try core.tick(now: now) } catch { throw .unwritable(error) }
        }
    }

    /// After a failure (or any time): checks the directory again (made when
    /// gone, its lock taken again when it is a new one), reads the catalog
    /// from disk again (cutting what a failed write left), and takes appends
    /// again. Throws, and stays unusable, while the directory is still not
    /// usable: call it again a few seconds later. What was acknowledged and
    /// counted is kept. After `markClean`, `.closed`.
    package func reopen() throws(SpoolError) {
        try locked { core throws(SpoolError) in
            if core.closed { throw .closed }  // the state says clean: a reopen would say running again
            try? core.closeWriter()
            core.writer = nil
            do throws(SpoolError) {
                try SpoolDirectory.prepare(configuration.directory)
                if SpoolDirectory.lockIdentity(in: configuration.directory) != core.lockIdentity {
                    core.lock = nil
                    core.lock = try SpoolDirectory.lock(configuration.directory)
                    core.lockIdentity = SpoolDirectory.lockIdentity(in: configuration.directory)
                }
                var recovery = Recovery(configuration: configuration, buffer: ReadBuffer(capacity: 1 << 20))
                let boots = try recovery.discover()
                for boot in boots {
                    guard let known = core.boot(boot.bootID) else { continue }
                    if let acknowledged = known.acknowledgedThrough { boot.acknowledgedThrough = max(boot.acknowledgedThrough ?? 0, acknowledged) }
                    for loss in known.losses { boot.insert(boot.newPieces(of: loss)) }
                }
                core.boots = boots
                core.recount()
                core.counters.tornBytes += recovery.tornBytes
                core.counters.corruptEvents += recovery.corruptEvents
                if let last = core.current.lastSequence { core.nextSequence = max(core.nextSequence ?? 0, last &+ 1) }
                core.failure = nil
            } catch {
                core.failure = error.systemError
                    ?? SystemError(function: "reopen", errno: 0, path: configuration.directory, detail: error.description)
                throw error
            }
        }
    }

    // MARK: Reading

    /// A reader of `boot` (the current one when nil) from `sequence` on. One
    /// thread uses it; it takes the spool's lock only to look at the catalog.
    package func reader(boot: String? = nil, from sequence: UInt64) -> SpoolReader {
        SpoolReader(spool: self, bootID: boot ?? configuration.bootID, from: sequence)
    }

    package func stats() -> SpoolStats {
        locked { $0.stats() }
    }
}
