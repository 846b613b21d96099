import Glibc  // EMFILE, ENOENT
import SystemSupport
import Testing

/// What the sender runtime, the agent and the CLI added to the seam.
@Suite struct RuntimeAdditionsTests {
    /// The numbers after `key` in /proc/self/status ("Uid:\treal\teffective\tsaved\tfs").
    static func statusNumbers(_ key: String) -> [UInt32] {
        let text = FileSystem.readText("/proc/self/status") ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { UInt32($0) }
    }

    @Test("the parent pid and the real user and group ids are the ones /proc reports")
    func identity() {
        #expect(Processes.parentID > 0)
        #expect(Self.statusNumbers("PPid") == [UInt32(Processes.parentID)])
        #expect(Self.statusNumbers("Uid").first == Processes.userID)
        #expect(Self.statusNumbers("Gid").first == Processes.groupID)
    }

    @Test("errnoReason is strerror's text alone")
    func reason() {
        #expect(errnoReason(EMFILE) == "Too many open files")
        #expect(errnoReason(ENOENT) == "No such file or directory")
        #expect(errnoDescription(EMFILE) == errnoReason(EMFILE) + " (errno \(EMFILE))")
    }

    @Test("NamedThread.yield returns at once")
    func yield() {
        let start = SystemClock.monotonicNanoseconds()
        for _ in 0..<1000 { NamedThread.yield() }
        #expect(SystemClock.monotonicNanoseconds() - start < 5_000_000_000)
    }
}
