import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Logging
import ONCRPC
import Synchronization
import SystemSupport
import TestSupport
import Testing

/// What the spool tests share: a sender with a spool in a temporary
/// directory, events that say their submit order, and readers of a
/// collector's output that check exactly-once and exact loss ranges.
enum SpoolTest {
    /// A sender with a spool under `directory`, short timeouts, small segments;
    /// `failover`: the collectors it moves on to, in order, after `endpoint`
    /// (`preferFirst`: back to `endpoint` once it answers again).
    static func sender(_ endpoint: RPCEndpoint, failover: [RPCEndpoint] = [], spool directory: String, agent: String = "spool-test",
                       bootID: String = EventSender.randomBootID(), maxBytes: Int64 = 64 << 20,
                       segmentBytes: Int64 = 256 << 10, capacity: Int = 16_384, memoryBytes: Int = 16 << 20, liveWindowBytes: Int = 2 << 20,
                       retry: Duration = .milliseconds(300), program: UInt32? = nil, highestVersion: ProtocolVersion = .v3,
                       preferFirst: Bool = false,
                       logger: Logger = quietLogger) -> EventSender {
        var configuration = EventSender.Configuration(endpoints: [endpoint] + failover, agentID: agent)
        configuration.preferFirst = preferFirst
        if let program { configuration.program = program }
        configuration.highestVersion = highestVersion
        configuration.bootID = bootID
        configuration.capacity = capacity
        configuration.callTimeout = .milliseconds(500)
        configuration.connectTimeout = .milliseconds(500)
        configuration.initialBackoff = .milliseconds(20)
        configuration.maxBackoff = .milliseconds(500)
        var options = EventSender.SpoolOptions(directory: directory)
        options.maxBytes = maxBytes
        options.segmentBytes = segmentBytes
        options.memoryBytes = memoryBytes
        options.liveWindowBytes = liveWindowBytes
        options.retryInterval = retry
        configuration.spool = options
        return EventSender(configuration: configuration, logger: logger)
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "spool-test")
        logger.logLevel = .error
        return logger
    }

    /// Event `index` of a run: its target path says the index, so the output shows submit order.
    static func event(_ index: Int, pathBytes: Int = 0) -> Event {
        let padding = pathBytes > 0 ? "/" + String(repeating: "p", count: pathBytes) : ""
        return Event(timestampNanoseconds: Timestamps.realtime(), kind: .open, verdict: index % 5 == 0 ? .deny : .allow,
                     decisionNanoseconds: 800, pid: 1000 + Int32(index % 100), ppid: 1, uid: 1000, gid: 1000,
                     executablePath: "/usr/bin/cat", targetPath: "/srv/data\(padding)/file-\(index)")
    }

    /// The index in an event's target path ("/srv/data/file-12" -> 12).
    static func index(_ line: [String: Any]) -> Int? {
        (line["target_path"] as? String)?.split(separator: "-").last.flatMap { Int($0) }
    }

    /// Submits `count` events from `first` at `rate` per second (paced, not bursty); the submits that were queued.
    @discardableResult
    static func submit(_ sender: EventSender, from first: Int = 0, count: Int, rate: Double, pathBytes: Int = 0) -> Int {
        count - submitNotingDrops(sender, from: first, count: count, rate: rate, pathBytes: pathBytes).count
    }

    /// The same; the indices of the submits that were dropped.
    static func submitNotingDrops(_ sender: EventSender, from first: Int = 0, count: Int, rate: Double, pathBytes: Int = 0) -> [Int] {
        let start = SystemClock.monotonicNanoseconds()
        var dropped: [Int] = []
        for offset in 0..<count {
            let due = start + UInt64(Double(offset) / rate * 1e9)
            let now = SystemClock.monotonicNanoseconds()
            if due > now + 1_000_000 { SystemClock.sleep(.nanoseconds(Int64(due - now))) }
            if sender.submit(event(first + offset, pathBytes: pathBytes)) == .dropped { dropped.append(first + offset) }
        }
        return dropped
    }
}

/// One boot of one agent as a collector's JSON Lines output shows it.
struct BootOutput {
    /// Sequences of event lines, in output order (a repeat would be a duplicate).
    var sequences: [UInt64] = []
    /// seq -> index of the submit (from the target path).
    var indexBySequence: [UInt64: Int] = [:]
    /// Sequence gap and loss ranges, in output order.
    var gaps: [ClosedRange<UInt64>] = []
    /// Loss lines with a reason (version 3 collectors) besides gaps.
    var losses: [(range: ClosedRange<UInt64>, reason: String)] = []
    /// boot_end lines (version 3 collectors): how the run ended, as reported.
    var ends: [(ending: String, last: UInt64, reportedBy: String)] = []

    init(lines: [[String: Any]], bootID: String) {
        for line in lines where line["boot_id"] as? String == bootID {
            switch line["type"] as? String {
            case "event":
                guard let sequence = (line["seq"] as? NSNumber)?.uint64Value else { continue }
                sequences.append(sequence)
                indexBySequence[sequence] = SpoolTest.index(line)
            case "loss":
                guard let first = (line["first_seq"] as? NSNumber)?.uint64Value,
                      let last = (line["last_seq"] as? NSNumber)?.uint64Value else { continue }
                let reason = line["reason"] as? String ?? ""
                if reason == "sequence_gap" { gaps.append(first...last) } else { losses.append((first...last, reason)) }
            case "boot_end":
                ends.append((line["ending"] as? String ?? "", (line["last_seq"] as? NSNumber)?.uint64Value ?? 0,
                             line["reported_by"] as? String ?? ""))
            default:
                continue
            }
        }
    }

    var duplicates: Int { sequences.count - Set(sequences).count }

    /// Events lost for `reason` ("spool_evicted", ...), every range together.
    func lost(_ reason: String) -> UInt64 {
        losses.filter { $0.reason == reason }.reduce(0) { $0 + UInt64($1.range.count) }
    }

    /// The sequences in loss ranges of `reason`.
    func lostSequences(_ reason: String) -> Set<UInt64> {
        Set(losses.filter { $0.reason == reason }.flatMap { Array($0.range) })
    }

    /// Whether the events are exactly `range`, each once; else what differs (short).
    func exactly(_ range: ClosedRange<UInt64>) -> String? {
        let delivered = Set(sequences)
        let missing = range.filter { !delivered.contains($0) }
        let extra = delivered.filter { !range.contains($0) }.sorted()
        if missing.isEmpty && extra.isEmpty && duplicates == 0 { return nil }
        return "\(missing.count) missing (first \(missing.prefix(5))), \(extra.count) extra (first \(extra.prefix(5))), \(duplicates) duplicates"
    }

    /// Checks that 1...last is covered exactly once by events and gap/loss ranges, no range overlapping an event.
    func checkCoverage(through last: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        var covered = Set(sequences)
        for range in gaps + losses.map(\.range) {
            for sequence in range {
                #expect(!covered.contains(sequence), "\(sequence) is both delivered and in a loss range", sourceLocation: sourceLocation)
                covered.insert(sequence)
            }
        }
        let missing = (1...max(last, 1)).filter { !covered.contains($0) }
        #expect(last == 0 || missing.isEmpty, "\(missing.count) sequences neither delivered nor in a loss range, first \(missing.prefix(5))",
                sourceLocation: sourceLocation)
        #expect(covered.max() ?? 0 <= last, "output goes past \(last)", sourceLocation: sourceLocation)
    }
}

/// A swift-log handler that keeps every message, for tests that count log lines.
final class CapturedLog: Sendable {
    private let messages = Locked<[String]>([])

    var all: [String] { messages.withLock { $0 } }

    func count(containing text: String) -> Int { all.filter { $0.contains(text) }.count }

    func logger(level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "captured") { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ message: String) { messages.withLock { $0.append(message) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            self.log.append("\(level) \(message) \(metadata ?? [:])")
        }
    }
}
