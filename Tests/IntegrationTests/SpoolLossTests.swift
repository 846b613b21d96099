import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// Exact loss positions: a spool that reaches its cap evicts its oldest
/// segments, and a memory queue that fills drops submits; either way every
/// lost sequence is in a loss range (a sequence gap over version 2, a loss
/// with its reason over version 3) and every delivered event has the number
/// of its place in submit order.
@Suite("Spool: exact losses", .serialized, .timeLimit(.minutes(4)))
struct SpoolLossTests {
    init() { TestProcess.prepare() }

    /// 200 events delivered, the collector stopped, `count` events of long paths
    /// at 5,000/s into a spool of 512 KiB (64 KiB segments), the collector back.
    static func overflowSpool(_ endpoint: RPCEndpoint, stop: (Int32) -> Void, spool: String, count: Int = 10_000,
                              program: UInt32? = nil, highestVersion: ProtocolVersion = .v3) -> (report: ShutdownReport, boot: String) {
        let sender = SpoolTest.sender(endpoint, spool: spool, maxBytes: 512 << 10, segmentBytes: 64 << 10, liveWindowBytes: 16 << 10,
                                      program: program, highestVersion: highestVersion)
        SpoolTest.submit(sender, count: 200, rate: 5000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 200 }, "\(sender.stats)")
        stop(SIGSTOP)
        let queued = SpoolTest.submit(sender, from: 200, count: count, rate: 5000, pathBytes: 100)
        #expect(queued == count, "the queue dropped: the spool should have taken everything")
        #expect(sender.stats.spoolEvicted > 0, "a 512 KiB spool must evict \(count) events of 200 bytes: \(sender.stats)")
        stop(SIGCONT)
        return (sender.close(drainTimeout: .seconds(30)), sender.configuration.bootID)
    }

    @Test("spool cap reached (authrelayd, version 3): the missing sequences are exactly the spool_evicted loss lines")
    func capReachedVersion3Authrelayd() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let (report, boot) = Self.overflowSpool(daemon.unix, stop: daemon.process.signal, spool: directory.file("spool"))
        let total: UInt64 = 10_200
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0)
        #expect(report.stats.collectorVersion == .v3)
        let output = BootOutput(lines: try daemon.outputLines(), bootID: boot)
        #expect(output.duplicates == 0)
        #expect(output.gaps.isEmpty, "version 3 says why: no sequence gaps \(output.gaps.prefix(3))")
        output.checkCoverage(through: total)
        let lost = output.lost("spool_evicted")
        print("spool cap (v3): \(output.losses.count) loss lines, \(lost) events; spool evicted \(report.stats.spoolEvicted), lost \(report.stats.spoolLost)")
        #expect(output.losses.allSatisfy { $0.reason == "spool_evicted" }, "\(output.losses.prefix(3))")
        #expect(lost > 0 && lost == report.stats.spoolLost)
        #expect(report.stats.spoolLost <= report.stats.spoolEvicted)
        #expect(UInt64(output.sequences.count) == report.stats.acknowledged)
        #expect(report.stats.acknowledged + lost == total)
        #expect(output.indexBySequence.allSatisfy { $0.key == UInt64($0.value + 1) }, "every event has its submit position")
        #expect(output.ends.count == 1 && output.ends.first?.ending == "clean" && output.ends.first?.last == total, "\(output.ends)")
        let stats = try CollectorClient(endpoint: daemon.unix).stats()
        #expect(stats.version3?.lostSpoolEvicted == lost && stats.gapEvents == 0, "\(stats)")
    }

    @Test("spool cap reached (authrelayd, the sender limited to version 2): the missing sequences are exactly the gap ranges")
    func capReachedVersion2() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let (report, boot) = Self.overflowSpool(daemon.unix, stop: daemon.process.signal, spool: directory.file("spool"),
                                                highestVersion: .v2)
        let total: UInt64 = 10_200
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0)
        #expect(report.stats.collectorVersion == .v2)
        let output = BootOutput(lines: try daemon.outputLines(), bootID: boot)
        #expect(output.duplicates == 0)
        #expect(output.losses.isEmpty, "version 2 cannot say why: only gaps \(output.losses.prefix(3))")
        output.checkCoverage(through: total)
        let gapEvents = output.gaps.reduce(0) { $0 + UInt64($1.count) }
        print("spool cap (v2): \(output.gaps.count) gaps, \(gapEvents) events; spool evicted \(report.stats.spoolEvicted), lost \(report.stats.spoolLost)")
        #expect(gapEvents > 0)
        #expect(gapEvents == report.stats.spoolLost)
        #expect(report.stats.spoolLost <= report.stats.spoolEvicted)
        #expect(UInt64(output.sequences.count) == report.stats.acknowledged)
        #expect(report.stats.acknowledged + gapEvents == total)
        #expect(output.indexBySequence.allSatisfy { $0.key == UInt64($0.value + 1) }, "every event has its submit position")
        #expect(output.ends.isEmpty, "version 2 has no boot ends")
    }

    @Test("spool cap reached (rpcgen collector, version 3): every missing range is a spool_evicted loss",
          .enabled(if: RpcgenCollector.available, "needs rpcbind, rpcgen and cc"))
    func capReachedVersion3() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let collector = try RpcgenCollector(.generatedMain, in: directory)
        defer { collector.stop() }
        let endpoint = RPCEndpoint.rpcbind(host: "localhost", transport: .tcp)
        let (report, boot) = Self.overflowSpool(endpoint, stop: collector.process.signal, spool: directory.file("spool"),
                                                program: collector.program)
        #expect(report.isBalanced, "\(report)")
        #expect(report.stats.collectorVersion == .v3)
        let sequences = collector.sequences(boot: boot)
        let losses = collector.losses(boot: boot)
        #expect(!losses.isEmpty && losses.allSatisfy { $0.1 == "spool_evicted" }, "\(losses.prefix(5))")
        var covered = Set(sequences)
        #expect(covered.count == sequences.count, "duplicates")
        for (range, _) in losses { for sequence in range { #expect(covered.insert(sequence).inserted, "\(sequence) twice") } }
        #expect(covered == Set(1...10_200))
        let lost = losses.reduce(0) { $0 + UInt64($1.0.count) }
        #expect(lost == report.stats.spoolLost)
        let status = try #require(collector.lastStatus(boot: boot))
        #expect(status[3] > 0 && status[9] == 1, "status: evicted > 0, spool usable: \(status)")
    }

    /// The spool unusable (its path is a file) and memory small: with the
    /// collector stopped the window fills, the queue of 64 fills, and submits
    /// drop. Returns the report and the submit indices that were dropped.
    static func overflowMemory(_ endpoint: RPCEndpoint, stop: (Int32) -> Void, in directory: TemporaryDirectory,
                               program: UInt32? = nil, highestVersion: ProtocolVersion = .v3) throws -> (report: ShutdownReport, boot: String, dropped: [Int]) {
        let blocker = directory.file("spool-is-a-file")
        try FileSystem.writeFile(blocker, Array("not a directory\n".utf8))
        let sender = SpoolTest.sender(endpoint, spool: blocker, capacity: 64, memoryBytes: 32 << 10, program: program,
                                      highestVersion: highestVersion)
        // Connected and negotiated before the rest: one event acknowledged first
        // (a first connect slowed by TSan would otherwise fill the 64 already).
        var dropped = SpoolTest.submitNotingDrops(sender, count: 1, rate: 5000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 1 }, "\(sender.stats)")
        dropped += SpoolTest.submitNotingDrops(sender, from: 1, count: 99, rate: 5000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged + UInt64(dropped.count) == 100 }, "\(sender.stats)")
        #expect(sender.stats.spool == .memory)
        stop(SIGSTOP)
        dropped += SpoolTest.submitNotingDrops(sender, from: 100, count: 4000, rate: 5000)
        stop(SIGCONT)
        for index in 4100..<4200 where sender.submit(SpoolTest.event(index)) == .dropped { dropped.append(index) }
        return (sender.close(drainTimeout: .seconds(30)), sender.configuration.bootID, dropped)
    }

    @Test("memory full (spool unusable, authrelayd, version 3): queue_full loss lines exactly where submits dropped")
    func queueFullVersion3Authrelayd() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let (report, boot, dropped) = try Self.overflowMemory(daemon.unix, stop: daemon.process.signal, in: directory)
        #expect(!dropped.isEmpty, "nothing dropped: \(report)")
        #expect(report.isBalanced, "\(report)")
        #expect(report.stats.dropped == UInt64(dropped.count))
        let output = BootOutput(lines: try daemon.outputLines(), bootID: boot)
        #expect(output.duplicates == 0)
        #expect(output.gaps.isEmpty, "\(output.gaps.prefix(3))")
        output.checkCoverage(through: 4200)
        #expect(output.losses.allSatisfy { $0.reason == "queue_full" }, "\(output.losses.prefix(3))")
        #expect(output.lostSequences("queue_full") == Set(dropped.map { UInt64($0 + 1) }), "losses are not exactly the dropped submits")
        #expect(output.indexBySequence.allSatisfy { $0.key == UInt64($0.value + 1) })
        let stats = try CollectorClient(endpoint: daemon.unix).stats()
        #expect(stats.version3?.lostQueueFull == UInt64(dropped.count) && stats.reportedDropped == 0 && stats.gapEvents == 0, "\(stats)")
        // No spool to leave anything in: the clean end is reported at the stop, with the last sequence.
        #expect(output.ends.count == 1 && output.ends.first?.ending == "clean" && output.ends.first?.last == 4200, "\(output.ends)")
    }

    @Test("memory full (spool unusable, authrelayd, the sender limited to version 2): each dropped submit is a gap at its own place")
    func queueFullVersion2() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let (report, boot, dropped) = try Self.overflowMemory(daemon.unix, stop: daemon.process.signal, in: directory, highestVersion: .v2)
        #expect(!dropped.isEmpty, "nothing dropped: \(report)")
        #expect(report.isBalanced, "\(report)")
        #expect(report.stats.dropped == UInt64(dropped.count))
        let output = BootOutput(lines: try daemon.outputLines(), bootID: boot)
        #expect(output.duplicates == 0)
        #expect(output.losses.isEmpty)
        output.checkCoverage(through: 4200)
        let gapSequences = Set(output.gaps.flatMap { Array($0) })
        #expect(gapSequences == Set(dropped.map { UInt64($0 + 1) }), "gaps are not exactly the dropped submits")
        #expect(output.indexBySequence.allSatisfy { $0.key == UInt64($0.value + 1) })
        // The collector saw gaps, not version 2 drop counts: reported_dropped stays 0.
        #expect(try CollectorClient(endpoint: daemon.unix).stats().reportedDropped == 0)
    }

    @Test("memory full (rpcgen collector, version 3): queue_full losses exactly where submits dropped; a clean end with the last sequence",
          .enabled(if: RpcgenCollector.available, "needs rpcbind, rpcgen and cc"))
    func queueFullVersion3() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let collector = try RpcgenCollector(.generatedMain, in: directory)
        defer { collector.stop() }
        let (report, boot, dropped) = try Self.overflowMemory(.rpcbind(host: "localhost", transport: .tcp), stop: collector.process.signal,
                                                        in: directory, program: collector.program)
        #expect(!dropped.isEmpty)
        #expect(report.isBalanced, "\(report)")
        let losses = collector.losses(boot: boot)
        #expect(losses.allSatisfy { $0.1 == "queue_full" }, "\(losses.prefix(5))")
        #expect(Set(losses.flatMap { Array($0.0) }) == Set(dropped.map { UInt64($0 + 1) }))
        #expect(Set(collector.sequences(boot: boot)).count + dropped.count == 4200)
        // Spool unusable the whole run: the status says memory only, one fallback.
        let status = try #require(collector.lastStatus(boot: boot))
        #expect(status[6] == 1 && status[9] == 0, "fallbacks 1, usable 0: \(status)")
        // No spool to leave anything in: the clean end is reported at the stop.
        let ends = collector.bootEnds.filter { $0.boot == boot }
        #expect(ends.count == 1 && ends.first?.ending == "clean" && ends.first?.last == 4200, "\(ends)")
    }
}
