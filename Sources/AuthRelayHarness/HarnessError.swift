import SystemSupport

/// Why a harness step failed: one line that says what and why, with the
/// system call behind it when there is one.
package struct HarnessError: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var system: SystemError?

    package init(_ message: String, system: SystemError? = nil) {
        self.message = message
        self.system = system
    }

    package var description: String {
        system.map { "\(message): \($0)" } ?? message
    }
}
