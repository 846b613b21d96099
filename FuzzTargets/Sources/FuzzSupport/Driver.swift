import CFuzzerDriver
import Glibc

/// What libFuzzer calls: a C function pointer cannot capture, so the target's
/// test is held here. libFuzzer runs inputs one at a time, on one thread.
nonisolated(unsafe) private var currentTest: ((UnsafeRawBufferPointer) -> Void)?

/// A fuzz target's `main`: runs `test` on every input under libFuzzer (every
/// libFuzzer flag and corpus directory in the arguments), or, with
/// `--write-seeds DIRECTORY`, writes `seeds()` there (one file per seed, named
/// by its key) and exits. A test reports a bug by trapping (`check`,
/// `fatalError`, an overflow, an index out of range): libFuzzer saves the input.
public func runFuzzer(seeds: () -> [(name: String, bytes: [UInt8])], test: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    let arguments = CommandLine.arguments
    if arguments.count == 3, arguments[1] == "--write-seeds" {
        for (name, bytes) in seeds() {
            let path = arguments[2] + "/" + name
            guard bytes.withUnsafeBytes({ fuzz_write_file(path, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }) == 0 else {
                exit(1)  // fuzz_write_file said why
            }
        }
        exit(0)
    }
    currentTest = test
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        currentTest!(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    })
}

/// Traps with `message` when `condition` is false: the bug a fuzz target looks for.
/// (Not `precondition`: it must hold in the optimized builds the fuzzers run.)
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError(message()) }
}
