import Glibc
import Synchronization
import SystemSupport
import Testing

/// SharedMemory and Futex, what the shared-memory latency floor is built on:
/// two mappings of one file see each other's writes, and a futex sleeper in
/// one wakes on a change made through the other.
@Suite struct SharedMemoryTests {
    private func regionPath() throws -> (directory: String, path: String) {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-shm")
        return (directory, directory + "/region")
    }

    @Test("create sizes a private 0600 file of zeros; open maps the same pages")
    func twoMappings() throws {
        let (directory, path) = try regionPath()
        defer { FileSystem.removeTree(directory) }
        let created = try SharedMemory.create(path, size: 8192)
        #expect(try FileSystem.status(path)?.size == 8192)
        #expect(try FileSystem.status(path)?.mode == 0o600)
        #expect(created.bytes(at: 0, count: 8192).allSatisfy { $0 == 0 })
        let opened = try SharedMemory.open(path)
        #expect(opened.size == 8192)
        #expect(opened.base != created.base, "two mappings, not one pointer")
        created.atomic(UInt64.self, at: 64).pointee.store(0x1234_5678_9abc, ordering: .releasing)
        #expect(opened.atomic(UInt64.self, at: 64).pointee.load(ordering: .acquiring) == 0x1234_5678_9abc)
        opened.bytes(at: 4096, count: 3).copyBytes(from: [7, 8, 9])
        #expect(Array(created.bytes(at: 4096, count: 3)) == [7, 8, 9])
    }

    @Test("create refuses an existing file (O_EXCL) and leaves it alone; open refuses an empty one")
    func refusals() throws {
        let (directory, path) = try regionPath()
        defer { FileSystem.removeTree(directory) }
        try FileSystem.writeFile(path, [])
        let existing = try #require(throws: SystemError.self) { try SharedMemory.create(path, size: 4096) }
        #expect(existing.errno == EEXIST)
        #expect(FileSystem.exists(path))
        let empty = try #require(throws: SystemError.self) { try SharedMemory.open(path) }
        #expect(empty.function == "mmap")
        let missing = try #require(throws: SystemError.self) { try SharedMemory.open(directory + "/none") }
        #expect(missing.errno == ENOENT)
    }

    @Test("futex: a word that differs returns at once, an unchanged one times out, wake ends a sleep")
    func futex() throws {
        let (directory, path) = try regionPath()
        defer { FileSystem.removeTree(directory) }
        let memory = try SharedMemory.create(path, size: 4096)
        let other = try SharedMemory.open(path)
        let word = memory.atomic(UInt32.self, at: 128)
        #expect(try Futex.wait(word, whileEqualTo: 1, timeout: .seconds(5)) == .valueDiffered)
        let before = SystemClock.monotonicNanoseconds()
        #expect(try Futex.wait(word, whileEqualTo: 0, timeout: .milliseconds(20)) == .timedOut)
        #expect(SystemClock.monotonicNanoseconds() - before >= 15_000_000)

        // A sleeper on one mapping, woken through the other.
        let sleeping = Atomic<Bool>(false)
        let results = Locked<[Futex.WaitResult]>([])
        word.pointee.store(1, ordering: .sequentiallyConsistent)
        let thread = NamedThread(name: "test-futex") {
            let word = memory.atomic(UInt32.self, at: 128)
            sleeping.store(true, ordering: .sequentiallyConsistent)
            while word.pointee.load(ordering: .sequentiallyConsistent) == 1 {
                let result = (try? Futex.wait(word, whileEqualTo: 1, timeout: .seconds(10))) ?? .timedOut
                results.withLock { $0.append(result) }
            }
        }
        while !sleeping.load(ordering: .sequentiallyConsistent) { SystemClock.sleep(.milliseconds(1)) }
        SystemClock.sleep(.milliseconds(20))  // let it reach FUTEX_WAIT
        let started = SystemClock.monotonicNanoseconds()
        let otherWord = other.atomic(UInt32.self, at: 128)
        otherWord.pointee.store(0, ordering: .sequentiallyConsistent)
        Futex.wake(otherWord)
        thread.join()
        #expect(SystemClock.monotonicNanoseconds() - started < 5_000_000_000, "the wake did not end the sleep")
        #expect(!results.withLock { $0 }.contains(.timedOut))
    }
}
