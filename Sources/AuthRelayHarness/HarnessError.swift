import SystemSupport

/// Why a harness step failed: one line that says what and why, with the
/// system call behind it when there is one.
public struct HarnessError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var system: SystemError?

    public init(_ message: String, system: SystemError? = nil) {
        self.message = message
        self.system = system
    }

    public var description: String {
        system.map { "\(message): \($0)" } ?? message
    }
}
