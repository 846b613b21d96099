import AuthRelayHarness
@testable import AuthRelaySpool
import Glibc
import SystemSupport
import Testing

@Suite struct SpoolDirectoryTests {
    @Test("a missing spool directory is made 0700, its files 0600")
    func modes() throws {
        let fixture = try SpoolFixture()
        let spool = try fixture.openSpool(boot: "boot-1")
        try fixture.append(spool, from: 1, records: 1)
        #expect(try FileSystem.status(fixture.directory)?.mode == 0o700)
        #expect(try FileSystem.status(fixture.directory + "/boot-1")?.mode == 0o700)
        #expect(try FileSystem.status(fixture.segments("boot-1")[0])?.mode == 0o600)
        #expect(try FileSystem.status(fixture.directory + "/boot-1/state")?.mode == 0o600)
    }

    @Test("a group- or world-writable directory is refused", arguments: [0o770, 0o707, 0o777] as [mode_t])
    func writableByOthers(mode: mode_t) throws {
        let fixture = try SpoolFixture()
        try FileSystem.makeDirectory(fixture.directory, mode: 0o700)
        try FileSystem.setMode(fixture.directory, mode)
        let error = #expect(throws: SpoolError.self) { try fixture.openSpool(boot: "boot-1") }
        #expect(error?.description.contains("group- or world-writable") == true)
        try FileSystem.setMode(fixture.directory, 0o750)
        _ = try fixture.openSpool(boot: "boot-1")  // read by the group is the operator's choice
    }

    @Test("a directory owned by another user is refused", .enabled(if: Processes.effectiveUserID == 0, "needs root to chown"))
    func otherOwner() throws {
        let fixture = try SpoolFixture()
        try FileSystem.makeDirectory(fixture.directory, mode: 0o700)
        try run("/bin/chown", ["65534", fixture.directory])
        let error = #expect(throws: SpoolError.self) { try fixture.openSpool(boot: "boot-1") }
        guard case .unsafeDirectory(_, let reason) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("owned by uid 65534"))
    }

    @Test("a file where the directory should be: refused, then taken once it is a directory")
    func fileInTheWay() throws {
        let fixture = try SpoolFixture()
        try FileSystem.writeFile(fixture.directory, [1])
        #expect(throws: SpoolError.notADirectory(path: fixture.directory)) { try fixture.openSpool(boot: "boot-1") }
        let below = try #require(#expect(throws: SpoolError.self) {
            try Spool.open(SpoolConfiguration(directory: fixture.directory + "/spool", agentID: "a", bootID: "b", maxBytes: 16 << 20))
        })
        #expect(below.systemError?.errno == ENOTDIR)
        try FileSystem.removeFile(fixture.directory)
        _ = try fixture.openSpool(boot: "boot-1")
    }

    @Test("one process at a time: a second open of the directory is refused while the first holds it")
    func inUse() throws {
        let fixture = try SpoolFixture()
        do {
            let first = try fixture.openSpool(boot: "boot-1")
            #expect(throws: SpoolError.inUse(path: fixture.directory)) { try fixture.openSpool(boot: "boot-2") }
            _ = first
        }
        _ = try fixture.openSpool(boot: "boot-2")
    }

    @Test("a directory made unwritable under the spool: the append fails with the system error, reopen recovers",
          arguments: ["full", "read-only", "removed"])
    func unwritable(how: String) throws {
        if how != "removed" && Processes.effectiveUserID != 0 { return }  // tmpfs mounts need root
        let fixture = try SpoolFixture()
        let mount = fixture.temporary.file("mount")
        if how == "full" {
            try FileSystem.makeDirectory(mount, mode: 0o700)
            try run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mount])
        }
        let directory = how == "full" ? mount + "/spool" : fixture.directory
        defer {
            if how == "full" { try? run("/bin/umount", ["-l", mount]) }
            if how == "read-only" { try? run("/bin/umount", ["-l", directory]) }
            _ = fixture
        }

        let spool = try Spool.open(SpoolConfiguration(directory: directory, agentID: "a", bootID: "boot-1",
                                                      maxBytes: 1 << 20, segmentBytes: 16384, durability: .none))
        var next = try fixture.append(spool, from: 1, records: 5)
        let expected: Int32
        switch how {
        case "full": expected = ENOSPC
        case "read-only":
            // A read-only bind over the directory: what is open stays writable (as
            // a remount would not allow), the next segment cannot be made.
            try run("/bin/mount", ["--bind", directory, directory])
            try run("/bin/mount", ["-o", "remount,bind,ro", directory])
            expected = EROFS
        default:
            FileSystem.removeTree(directory)  // the open segment lives on unlinked: the next segment fails
            expected = ENOENT
        }
        var failure: SpoolError?
        for _ in 0..<200 {
            do throws(SpoolError) {
                next = try fixture.append(spool, from: next, records: 1)
            } catch {
                failure = error
                break
            }
        }
        guard case .unwritable(let system)? = failure else { Issue.record("no failure: \(String(describing: failure))"); return }
        #expect(system.errno == expected)
        #expect(!spool.isUsable && !spool.stats().usable && spool.stats().writeFailures == 1)
        #expect(throws: SpoolError.unusable(system)) { try fixture.append(spool, from: next, records: 1) }
        if how == "read-only" { #expect(throws: SpoolError.self) { try spool.reopen() } }

        switch how {
        case "full": try run("/bin/mount", ["-o", "remount,size=4m", mount])
        case "read-only": try run("/bin/umount", [directory])
        default: break
        }
        try spool.reopen()
        #expect(spool.isUsable)
        // The record that failed was not written: the caller appends it again.
        next = try fixture.append(spool, from: next, records: 3)
        let reads = try readAll(spool.reader(from: 1))
        if how == "removed" {
            #expect((reads.first?.first ?? 0) > 40)  // what was removed went with its directory
            #expect(reads.last?.last == next - 1)
        } else {
            checkCoverage(reads, from: 1, through: next - 1)
        }
        #expect(spool.stats().tornBytes == 0)
        #expect(spool.stats().corruptEvents == 0)
    }
}
