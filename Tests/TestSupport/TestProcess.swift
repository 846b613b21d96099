import SystemSupport

/// Process-wide settings the test process needs, made once: tests kill servers mid-call, and libtirpc writes with write(2).
package enum TestProcess { private static let once: Void = ProcessSettings.ignoreBrokenPipe(); package static func prepare() { once } }
