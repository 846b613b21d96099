import AuthRelayHarness
@testable import AuthRelaySpool
import Glibc
import SystemSupport
import Testing

/// Byte `index` of event `sequence` (authrelay-spool-writer computes the same).
func eventByte(_ sequence: UInt64, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: sequence &* 31 &+ UInt64(index)) }

/// `count` events of `eventBytes` bytes from `first`, as the caller would have encoded them.
func eventPayload(first: UInt64, count: UInt32, eventBytes: Int = 150) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(count) * eventBytes)
    for sequence in first..<(first + UInt64(count)) {
        for index in 0..<eventBytes { bytes.append(eventByte(sequence, index)) }
    }
    return bytes
}

/// What a reader yielded, copied out of its buffer.
enum Read: Equatable, CustomStringConvertible {
    case events(first: UInt64, count: UInt32, payload: [UInt8])
    case loss(SpoolLoss)

    init(_ record: SpoolRecord) {
        switch record {
        case .events(let first, let count, let payload): self = .events(first: first, count: count, payload: Array(payload))
        case .loss(let loss): self = .loss(loss)
        }
    }

    var first: UInt64 {
        switch self {
        case .events(let first, _, _): first
        case .loss(let loss): loss.first
        }
    }

    var last: UInt64 {
        switch self {
        case .events(let first, let count, _): first + UInt64(count) - 1
        case .loss(let loss): loss.last
        }
    }

    var description: String {
        switch self {
        case .events(let first, let count, _): "events \(first)...\(first + UInt64(count) - 1)"
        case .loss(let loss): "loss \(loss)"
        }
    }
}

/// Everything the reader has now (bounded: a reader that never ends fails).
func readAll(_ reader: SpoolReader, bound: Int = 1_000_000) throws -> [Read] {
    var reads: [Read] = []
    while let record = try reader.next() {
        reads.append(Read(record))
        if reads.count > bound { Issue.record("reader yielded over \(bound) records"); break }
    }
    return reads
}

/// Checks that `reads` account for first...last exactly once, in order, each
/// event's bytes the ones appended; the losses among them.
@discardableResult
func checkCoverage(_ reads: [Read], from first: UInt64, through last: UInt64, eventBytes: Int = 150,
                   sourceLocation: SourceLocation = #_sourceLocation) -> [SpoolLoss] {
    var next = first
    var losses: [SpoolLoss] = []
    for read in reads {
        #expect(read.first <= next && read.last >= next, "\(read) does not continue at \(next)", sourceLocation: sourceLocation)
        guard read.first <= next && read.last >= next else { return losses }
        switch read {
        case .events(let start, let count, let payload):
            if payload != eventPayload(first: start, count: count, eventBytes: eventBytes) {
                Issue.record("\(read) holds other bytes than were appended", sourceLocation: sourceLocation)
            }
        case .loss(let loss):
            #expect(loss.first == next, "a loss starts where the last read ended: \(loss)", sourceLocation: sourceLocation)
            losses.append(loss)
        }
        next = read.last + 1
    }
    #expect(next == last + 1, "reads end at \(next - 1), not \(last)", sourceLocation: sourceLocation)
    return losses
}

/// A spool directory in a private temporary directory.
struct SpoolFixture {
    static let agentID = "agent-1"
    let temporary: TemporaryDirectory
    var directory: String { temporary.file("spool") }

    init() throws {
        temporary = try TemporaryDirectory(prefix: "authrelay-spool")
    }

    func configuration(boot: String, maxBytes: Int64 = 1 << 30, segmentBytes: Int64 = 4096,
                       durability: SpoolDurability = .none) -> SpoolConfiguration {
        SpoolConfiguration(directory: directory, agentID: Self.agentID, bootID: boot, maxBytes: maxBytes,
                           segmentBytes: segmentBytes, durability: durability)
    }

    func openSpool(boot: String, maxBytes: Int64 = 1 << 30, segmentBytes: Int64 = 4096,
              durability: SpoolDurability = .none) throws -> Spool {
        try Spool.open(configuration(boot: boot, maxBytes: maxBytes, segmentBytes: segmentBytes, durability: durability))
    }

    /// Appends `records` records of `perRecord` events from `first`; the next sequence.
    @discardableResult
    func append(_ spool: Spool, from first: UInt64, records: Int, perRecord: UInt32 = 8) throws(SpoolError) -> UInt64 {
        var next = first
        for _ in 0..<records {
            try spool.append(events: eventPayload(first: next, count: perRecord), firstSequence: next, count: perRecord)
            next += UInt64(perRecord)
        }
        return next
    }

    /// The segment files of `boot`, in order.
    func segments(_ boot: String) -> [String] {
        let names = (try? FileSystem.listDirectory(directory + "/" + boot)) ?? []
        return names.filter { $0.hasPrefix("segment-") }.sorted().map { directory + "/" + boot + "/" + $0 }
    }

    /// The first sequence of the boot's oldest segment on disk.
    func oldestSegmentFirst(_ boot: String) -> UInt64? {
        segments(boot).first.flatMap { SpoolFormat.segmentFirstSequence(FileSystem.baseName(of: $0)) }
    }

    func size(_ path: String) -> Int64 { (try? FileSystem.status(path))?.size ?? -1 }

    /// Overwrites one byte at `offset` of `path` with its complement.
    func flipByte(_ path: String, at offset: Int64) throws {
        var bytes = try FileSystem.readFile(path)
        bytes[Int(offset)] = ~bytes[Int(offset)]
        try FileSystem.writeFile(path, bytes, mode: 0o600)
    }

    /// Appends raw bytes to `path`.
    func appendBytes(_ path: String, _ bytes: [UInt8]) throws {
        let file = try FileDescriptor.open(path, O_WRONLY | O_APPEND)
        try file.writeAll(bytes)
    }
}

/// Bytes of one record of `perRecord` 150-byte events.
func recordBytes(perRecord: UInt32, eventBytes: Int = 150) -> Int64 {
    Int64(SpoolFormat.recordHeaderBytes + Int(perRecord) * eventBytes)
}

let headerBytes = Int64(SpoolFormat.fileHeaderBytes)

/// Runs a program to its end (bounded); fails the test when it does not succeed.
func run(_ program: String, _ arguments: [String]) throws {
    let (status, output) = try ChildProcess.run(program, arguments, timeout: .seconds(20))
    if status != 0 { throw HarnessError("\(program) \(arguments.joined(separator: " ")): status \(status): \(output)") }
}
