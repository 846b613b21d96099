import SystemSupport

/// What the test process sets once, as the executables do at start.
package enum TestProcess {
    /// Ignores SIGPIPE for the whole test process, once: tests kill servers
    /// mid-call, and libtirpc writes with plain write(2), so the client would
    /// otherwise take the test process down. The libraries no longer do it
    /// (a process-wide setting is the program's). Call it from each suite's `init()`.
    package static func prepare() {
        _ = prepared
    }

    private static let prepared: Void = ProcessSettings.ignoreBrokenPipe()
}
