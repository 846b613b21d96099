import Glibc

/// The package's programs next to the running `authrelay` binary (the build
/// folder, or wherever they were installed together).
public struct Executables: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The folder of the running executable, from /proc/self/exe.
    public static func besideRunningProgram() throws(LatencyError) -> Executables {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { throw LatencyError("cannot read /proc/self/exe: \(errnoText())") }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return Executables(directory: directory.isEmpty ? "/" : directory)
    }

    public func path(_ name: String) -> String { "\(directory)/\(name)" }

    public func has(_ name: String) -> Bool { Files.isExecutable(path(name)) }
}
