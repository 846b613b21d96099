import Glibc
import SystemSupport
import Testing

@Suite struct DuplicateTests {
    @Test("a duplicate writes to the same file and closing it leaves the original open")
    func duplicate() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "duplicate")
        defer { FileSystem.removeTree(directory) }
        let path = directory + "/file"
        let original = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_APPEND)
        let copy = try FileDescriptor.duplicate(original.rawValue)
        #expect(copy.rawValue != original.rawValue)
        try copy.writeAll(Array("one\n".utf8))
        try copy.close()
        try original.writeAll(Array("two\n".utf8))
        #expect(FileSystem.readText(path) == "one\ntwo\n")
    }

    @Test("duplicating a descriptor that is not open names fcntl and EBADF")
    func notOpen() {
        let error = #expect(throws: SystemError.self) { _ = try FileDescriptor.duplicate(-1) }
        #expect(error?.errno == EBADF)
        #expect(error?.function == "fcntl(F_DUPFD_CLOEXEC)")
    }
}
