import CSystemSupport
import Glibc
import Synchronization

/// A file mapped MAP_SHARED: memory that every process mapping the same file
/// sees, with no system call per access. A file (in /dev/shm, a tmpfs, when
/// there is one) rather than a memfd, so a second process opens it by path,
/// with no descriptor to pass. The mapping lives as long as the object.
///
/// `@unchecked Sendable`: every field is set once; what the memory holds is
/// the caller's to synchronize (the atomics `atomic(_:at:)` hands out).
package final class SharedMemory: @unchecked Sendable {
    package let path: String
    package let size: Int
    package let base: UnsafeMutableRawPointer

    private init(path: String, size: Int, base: UnsafeMutableRawPointer) {
        self.path = path
        self.size = size
        self.base = base
    }

    deinit { munmap(base, size) }

    /// Creates `path` (O_EXCL, mode 0600: never a file someone else made or
    /// can read), sizes it to `size` bytes of zeros and maps it.
    package static func create(_ path: String, size: Int) throws(SystemError) -> SharedMemory {
        precondition(size > 0, "an empty mapping")
        let file = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
        do {
            try file.truncate(to: Int64(size))
            return SharedMemory(path: path, size: size, base: try map(file, size: size, path: path))
        } catch {
            try? FileSystem.removeFile(path)
            throw error
        }
    }

    /// Maps the whole of the existing file `path` (made by `create`, in another process).
    package static func open(_ path: String) throws(SystemError) -> SharedMemory {
        let file = try FileDescriptor.open(path, O_RDWR)
        let size = Int(try file.status().size)
        guard size > 0 else { throw SystemError(function: "mmap", errno: EINVAL, path: path, detail: "the file is empty") }
        return SharedMemory(path: path, size: size, base: try map(file, size: size, path: path))
    }

    /// The descriptor can be closed once mapped: the mapping keeps the file.
    private static func map(_ file: borrowing FileDescriptor, size: Int, path: String) throws(SystemError) -> UnsafeMutableRawPointer {
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, file.rawValue, 0)
        // MAP_FAILED is ((void *) -1), a macro Swift does not import.
        guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SystemError(function: "mmap", errno: Glibc.errno, path: path)
        }
        return pointer
    }

    /// Where shared-memory files go: /dev/shm when it is a writable directory
    /// (a tmpfs on Linux: no disk behind the pages), else nil.
    package static var standardDirectory: String? {
        FileSystem.isWritableDirectory("/dev/shm") ? "/dev/shm" : nil
    }

    /// The atomic `Value` at byte `offset`, which must be aligned for it and
    /// inside the mapping. Zero bytes read as 0 (a fresh file is all zeros).
    package func atomic<Value: AtomicRepresentable>(_ type: Value.Type, at offset: Int) -> UnsafeMutablePointer<Atomic<Value>> {
        precondition(offset >= 0 && offset + MemoryLayout<Atomic<Value>>.size <= size, "offset \(offset) outside the mapping")
        precondition(offset % MemoryLayout<Atomic<Value>>.alignment == 0, "offset \(offset) not aligned")
        return (base + offset).assumingMemoryBound(to: Atomic<Value>.self)
    }

    /// The bytes at `offset..<offset + count`.
    package func bytes(at offset: Int, count: Int) -> UnsafeMutableRawBufferPointer {
        precondition(offset >= 0 && count >= 0 && offset + count <= size, "bytes \(offset)+\(count) outside the mapping")
        return UnsafeMutableRawBufferPointer(start: base + offset, count: count)
    }
}

/// futex(2) on a 32-bit atomic word, shared between processes when the word
/// lives in a `SharedMemory`: a thread sleeps in the kernel until another (in
/// any process) changes the word and wakes it. The caller's protocol decides
/// what the word means; `wait` returns on any wake, so it rechecks.
package enum Futex {
    package enum WaitResult: Sendable, Equatable {
        /// Woken, by `wake`, a signal or spuriously: check the condition again.
        case woken
        /// The word did not hold `expected` when the call began: no sleep.
        case valueDiffered
        case timedOut
    }

    /// Sleeps while `word` holds `expected`, for at most `timeout` (nil: no limit).
    package static func wait(_ word: UnsafeMutablePointer<Atomic<UInt32>>, whileEqualTo expected: UInt32,
                             timeout: Duration?) throws(SystemError) -> WaitResult {
        let nanoseconds = timeout.map { max(0, $0.nanoseconds) } ?? -1
        if CSystemSupport_futex_wait(address(word), expected, nanoseconds) == 0 { return .woken }
        let code = Glibc.errno
        switch code {
        case EAGAIN: return .valueDiffered
        case ETIMEDOUT: return .timedOut
        case EINTR: return .woken
        default: throw SystemError(function: "futex", errno: code, detail: "FUTEX_WAIT")
        }
    }

    /// Wakes up to `count` threads sleeping on `word`; how many woke.
    @discardableResult
    package static func wake(_ word: UnsafeMutablePointer<Atomic<UInt32>>, count: Int32 = 1) -> Int {
        Int(max(0, CSystemSupport_futex_wake(address(word), count)))
    }

    /// Atomic<UInt32> has the layout of a UInt32: the word futex(2) takes.
    private static func address(_ word: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
    }
}
