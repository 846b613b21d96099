import Glibc  // O_RDONLY
import SystemSupport
import Testing

@testable import AuthRelayAgent

@Suite("ProcFS")
struct ProcFSTests {
    static func parse(_ text: String) -> ProcFS.Identity {
        Array(text.utf8).withUnsafeBufferPointer { ProcFS.parseStatus($0) }
    }

    @Test("reads PPid and the effective Uid and Gid of a /proc/PID/status")
    func status() {
        let text = """
            Name:\tcat
            Umask:\t0022
            State:\tS (sleeping)
            Tgid:\t123
            Pid:\t123
            PPid:\t45
            TracerPid:\t0
            Uid:\t1000\t1001\t1002\t1003
            Gid:\t2000\t2001\t2002\t2003
            FDSize:\t64

            """
        #expect(Self.parse(text) == ProcFS.Identity(ppid: 45, uid: 1001, gid: 2001))
    }

    @Test("what is missing stays zero; a key must match up to its colon")
    func partial() {
        #expect(Self.parse("") == ProcFS.Identity())
        #expect(Self.parse("Name:\tx\nPPid:\t7\n") == ProcFS.Identity(ppid: 7))
        #expect(Self.parse("PPidX:\t9\nUidY:\t1\t2\nPPid:\t3") == ProcFS.Identity(ppid: 3))
        // One number only: it is both the real and the effective id.
        #expect(Self.parse("Uid:\t5\nGid:\t6") == ProcFS.Identity(uid: 5, gid: 6))
    }

    @Test("stops at Gid: what follows it is not read")
    func stopsAtGid() {
        #expect(Self.parse("Gid:\t1\t2\nPPid:\t9\nUid:\t3\t4\n") == ProcFS.Identity(gid: 2))
    }

    @Test("this process: its parent, its ids, its executable and an open file's path")
    func ownProcess() throws {
        let identity = ProcFS.identity(of: Processes.currentID)
        #expect(identity == ProcFS.Identity(ppid: Processes.parentID, uid: Processes.effectiveUserID, gid: Processes.groupID))
        #expect(ProcFS.executable(of: Processes.currentID) == Processes.currentExecutable())

        let directory = try FileSystem.makeTemporaryDirectory(prefix: "authrelay-procfs")
        defer { FileSystem.removeTree(directory) }
        try FileSystem.writeFile(directory + "/file", [1, 2, 3])
        let file = try FileDescriptor.open(directory + "/file", O_RDONLY)
        #expect(ProcFS.path(ofDescriptor: file.rawValue) == directory + "/file")
    }

    @Test("a process that is gone yields zeros and empty strings")
    func gone() {
        #expect(ProcFS.identity(of: .max) == ProcFS.Identity())
        #expect(ProcFS.executable(of: .max) == "")
    }
}
