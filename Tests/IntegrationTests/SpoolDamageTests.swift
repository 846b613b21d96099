import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import Logging
import SystemSupport
import TestSupport
import Testing

/// What an earlier run leaves in the spool is delivered by the next one,
/// with its own boot id and numbers, after damage: a torn last record is cut
/// off, a corrupted one becomes an exact loss range. And a spool directory
/// that cannot be written makes the sender fall back to memory (one log line,
/// a counter) and come back to the disk once it can.
@Suite("Spool: damage and an unusable directory", .serialized, .timeLimit(.minutes(4)))
struct SpoolDamageTests {
    init() { TestProcess.prepare() }

    /// A run against an absent collector that stops cleanly with `count` events in the spool; its boot id.
    static func leaveInSpool(_ spool: String, count: Int, in directory: TemporaryDirectory) -> String {
        let sender = SpoolTest.sender(.unix(path: directory.file("absent.sock")), spool: spool, segmentBytes: 64 << 10,
                                      capacity: 32_768)
        for index in 0..<count { sender.submit(SpoolTest.event(index)) }
        let report = sender.close(drainTimeout: .milliseconds(300))
        #expect(report.leftInSpool == UInt64(count), "\(report)")
        return sender.configuration.bootID
    }

    static func changeOwner(_ path: String, to owner: String) throws {
        let (status, output) = try ChildProcess.run("/bin/chown", [owner, path], timeout: .seconds(10))
        if status != 0 { throw HarnessError("chown \(owner) \(path): \(output)") }
    }

    static func segments(_ spool: String, boot: String) throws -> [String] {
        try FileSystem.listDirectory(spool + "/" + boot).filter { $0.hasPrefix("segment-") }.sorted().map { spool + "/" + boot + "/" + $0 }
    }

    /// The next run (ten events of its own) against authrelayd: the output and its report.
    static func nextRun(_ spool: String, in directory: TemporaryDirectory) throws -> (lines: [[String: Any]], report: ShutdownReport) {
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let sender = SpoolTest.sender(daemon.unix, spool: spool, segmentBytes: 64 << 10)
        for index in 0..<10 { sender.submit(SpoolTest.event(index)) }
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced && report.undelivered == 0, "\(report)")
        return (try daemon.outputLines(), report)
    }

    @Test("an earlier run's events are delivered by the next run, with their own boot id and numbers")
    func earlierRunDelivered() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let spool = directory.file("spool")
        let earlier = Self.leaveInSpool(spool, count: 3000, in: directory)
        let (lines, report) = try Self.nextRun(spool, in: directory)
        #expect(report.stats.earlierRunsDelivered == 3000)
        let output = BootOutput(lines: lines, bootID: earlier)
        #expect(output.exactly(1...3000) == nil, "\(output.exactly(1...3000) ?? "")")
        #expect(output.gaps.isEmpty && output.losses.isEmpty)
        #expect(!FileSystem.exists(spool + "/" + earlier), "the delivered run's directory is gone")
    }

    @Test("a torn last record (a write cut short) is cut off; everything before it is delivered")
    func tornTail() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let spool = directory.file("spool")
        let earlier = Self.leaveInSpool(spool, count: 3000, in: directory)
        let last = try #require(try Self.segments(spool, boot: earlier).last)
        // A record header that claims 4,000 bytes, and 30 of them: what a crash mid-write leaves.
        var torn: [UInt8] = [0xA0, 0x0F, 0, 0, 0x12, 0x34, 0x56, 0x78, 1]
        torn += [UInt8](repeating: 0x5A, count: 30)
        let file = try FileDescriptor.open(last, O_WRONLY | O_APPEND)
        try file.writeAll(torn)
        try file.close()
        let (lines, report) = try Self.nextRun(spool, in: directory)
        let output = BootOutput(lines: lines, bootID: earlier)
        #expect(output.exactly(1...3000) == nil, "\(output.exactly(1...3000) ?? "")")
        #expect(output.gaps.isEmpty && output.losses.isEmpty)
        #expect(report.stats.spoolCorrupt == 0)
    }

    @Test("a corrupted record is skipped, counted once and reported: the gap is exactly its events")
    func corruptRecord() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let spool = directory.file("spool")
        let earlier = Self.leaveInSpool(spool, count: 3000, in: directory)
        let first = try #require(try Self.segments(spool, boot: earlier).first)
        var bytes = try FileSystem.readFile(first)
        bytes[192 + 5000] ^= 0xFF  // inside a record's events, past the segment header
        try FileSystem.writeFile(first, bytes, mode: 0o600)
        let (lines, report) = try Self.nextRun(spool, in: directory)
        let output = BootOutput(lines: lines, bootID: earlier)
        #expect(output.duplicates == 0)
        output.checkCoverage(through: 3000)
        let lost = output.lost("spool_corrupt")
        print("corrupt record: \(output.losses.map(\.range)) lost as spool_corrupt, spool counted \(report.stats.spoolCorrupt)")
        #expect(output.gaps.isEmpty, "version 3 says why: \(output.gaps)")
        #expect(output.losses.count == 1 && lost > 0 && lost < 3000, "\(output.losses)")
        #expect(report.stats.spoolCorrupt == lost)
        #expect(UInt64(output.sequences.count) + lost == 3000)
        // The earlier run stopped cleanly (its collector absent): the next run reports that end.
        #expect(output.ends.count == 1 && output.ends.first?.ending == "clean" && output.ends.first?.last == 3000, "\(output.ends)")
    }

    @Test("a spool directory that cannot be used (a file in its place; another owner) falls back to memory, says so once, and recovers")
    func unusableDirectory() throws {
        for problem in ["a file in its place", "owned by another user"] {
            let directory = try TemporaryDirectory(prefix: "authrelay-spool")
            defer { directory.remove() }
            let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
            defer { daemon.stop() }
            let spool = directory.file("spool")
            if problem == "a file in its place" {
                try FileSystem.writeFile(spool, Array("x\n".utf8))
            } else {
                try FileSystem.makeDirectories(spool, mode: 0o700)
                try Self.changeOwner(spool, to: "1:1")
            }
            let log = CapturedLog()
            let sender = SpoolTest.sender(daemon.unix, spool: spool, logger: log.logger())
            SpoolTest.submit(sender, count: 500, rate: 5000)
            #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 500 }, "\(problem): \(sender.stats)")
            #expect(sender.stats.spool == .memory, "\(problem)")
            SystemClock.sleep(.milliseconds(700))  // a few retries, each failing
            #expect(sender.stats.memoryFallbacks == 1, "\(problem)")
            #expect(log.count(containing: "spool unusable") == 1, "\(problem): \(log.all)")

            if problem == "a file in its place" { try FileSystem.removeFile(spool) } else { try Self.changeOwner(spool, to: "0:0") }
            #expect(eventually(timeout: .seconds(5)) { sender.stats.spool == .disk }, "\(problem): never recovered \(sender.stats)")
            SpoolTest.submit(sender, from: 500, count: 500, rate: 5000)
            let report = sender.close(drainTimeout: .seconds(20))
            #expect(report.isBalanced && report.undelivered == 0, "\(problem): \(report)")
            #expect(report.stats.spooled >= 500 && report.stats.memoryFallbacks == 1, "\(problem): \(report.stats)")
            #expect(log.count(containing: "spool usable again") == 1, "\(problem): \(log.all)")
            let output = BootOutput(lines: try daemon.outputLines(), bootID: sender.configuration.bootID)
            #expect(output.exactly(1...1000) == nil, "\(problem): \(output.exactly(1...1000) ?? "")")
        }
    }

    @Test("a full disk mid-run (a 256 KiB tmpfs): memory takes over, the disk again once acknowledgements free it",
          .enabled(if: tmpfsMountUnavailableReason == nil, "\(tmpfsMountUnavailableReason ?? "")"))
    func fullDisk() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let mountPoint = directory.file("spoolfs")
        try FileSystem.makeDirectories(mountPoint)
        try mountTmpfs(at: mountPoint, size: "256k")
        defer { unmount(mountPoint) }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let log = CapturedLog()
        let sender = SpoolTest.sender(daemon.unix, spool: mountPoint + "/spool", segmentBytes: 64 << 10, liveWindowBytes: 16 << 10,
                                      logger: log.logger())
        SpoolTest.submit(sender, count: 100, rate: 5000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 100 })
        daemon.process.signal(SIGSTOP)
        // About 1 MB of events into a 256 KiB file system.
        let queued = SpoolTest.submit(sender, from: 100, count: 5000, rate: 5000, pathBytes: 100)
        #expect(queued == 5000)
        #expect(sender.stats.spool == .memory, "\(sender.stats)")
        daemon.process.signal(SIGCONT)
        #expect(eventually(timeout: .seconds(15)) { sender.stats.acknowledged == 5100 }, "\(sender.stats)")
        #expect(eventually(timeout: .seconds(5)) { sender.stats.spool == .disk }, "never back on disk: \(sender.stats)")
        SpoolTest.submit(sender, from: 5100, count: 500, rate: 5000)
        let report = sender.close(drainTimeout: .seconds(20))
        #expect(report.isBalanced && report.undelivered == 0, "\(report)")
        #expect(report.stats.memoryFallbacks >= 1)
        #expect(log.count(containing: "spool unusable") == Int(report.stats.memoryFallbacks), "\(log.all)")
        let output = BootOutput(lines: try daemon.outputLines(), bootID: sender.configuration.bootID)
        #expect(output.exactly(1...5600) == nil, "\(output.exactly(1...5600) ?? "")")
    }
}
