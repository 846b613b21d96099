import AuthRelayProtocol
import AuthRelaySpool
import Synchronization
import SystemSupport

/// What the spooler thread and the delivery thread share: the spool once it
/// is open, the ledger of boot ends, the window of live pieces, the wake-ups,
/// and how far the spooler numbered. Neither auth threads nor `submit` touch it.
final class SpoolPipeline: Sendable {
    let options: EventSender.SpoolOptions
    let window: DeliveryWindow
    /// The spooler stored something new (or close began): the delivery looks again.
    let deliveryWake = WakeSignal()
    /// Close began: a delivery backoff ends early (new pieces must not cut it short).
    let closeWake = WakeSignal()
    private let opened = Locked<(spool: Spool, ledger: BootEndLedger)?>(nil)
    /// The last sequence the spooler gave (an event or a drop); 0 before any.
    let lastSequence = Atomic<UInt64>(0)
    /// The spooler took the last event off the queue after close: `lastSequence` is final.
    let spoolerFinished = Atomic<Bool>(false)

    init(options: EventSender.SpoolOptions) {
        self.options = options
        window = DeliveryWindow(liveBytes: options.liveWindowBytes, memoryBytes: options.memoryBytes)
    }

    /// The spool and ledger, once the spooler opened them (it may take several tries).
    var spool: (spool: Spool, ledger: BootEndLedger)? { opened.withLock { $0 } }

    func publish(_ spool: Spool, ledger: BootEndLedger) {
        opened.withLock { $0 = (spool, ledger) }
    }

    /// Copies the spool's figures into the counters (from the spooler or the delivery thread).
    func publishStats(of spool: Spool, to counters: SenderCounters) {
        let stats = spool.stats()
        counters.spoolBytes.store(stats.bytes, ordering: .relaxed)
        counters.spoolSegments.store(stats.segments, ordering: .relaxed)
        counters.oldestSpooled.store(stats.oldestAppendedNanoseconds ?? 0, ordering: .relaxed)
        counters.spoolEvicted.store(stats.evictedEvents, ordering: .relaxed)
        counters.spoolCorrupt.store(stats.corruptEvents, ordering: .relaxed)
    }
}

extension LossReason {
    init(_ reason: SpoolLossReason) {
        switch reason {
        case .queueFull: self = .queueFull
        case .evicted: self = .spoolEvicted
        case .corrupt: self = .spoolCorrupt
        case .refused: self = .refused
        }
    }
}

extension BootEnd {
    /// How an earlier run the spool found ended, as the run `reporter` reports it.
    init(_ boot: SpoolBoot, reportedBy reporter: String) {
        self.init(agentID: boot.agentID, bootID: boot.bootID, ending: boot.ending == .clean ? .clean : .unclean,
                  lastSequence: boot.lastSequence ?? 0, endedNanoseconds: boot.endedNanoseconds, reportedBy: reporter)
    }
}
