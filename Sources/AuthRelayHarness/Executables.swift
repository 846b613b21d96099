import SystemSupport

/// The package's programs in one folder: next to the running `authrelay`, or
/// the build folder that holds `authrelayd` above a test binary.
public struct Executables: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The folder of the running executable, from /proc/self/exe.
    public static func besideRunningProgram() throws(HarnessError) -> Executables {
        guard let path = Processes.currentExecutable() else {
            throw HarnessError("cannot read /proc/self/exe")
        }
        return Executables(directory: FileSystem.directoryName(of: path))
    }

    /// The nearest folder at or above the running executable (a test bundle
    /// in .build/debug, say) that holds `program`.
    package static func holding(_ program: String) -> Executables {
        var directory = FileSystem.directoryName(of: Processes.currentExecutable() ?? ".build/debug/x")
        while directory != "/" && directory != "." {
            if FileSystem.isExecutable("\(directory)/\(program)") { return Executables(directory: directory) }
            directory = FileSystem.directoryName(of: directory)
        }
        return Executables(directory: ".build/debug")
    }

    public func path(_ name: String) -> String { "\(directory)/\(name)" }

    public func has(_ name: String) -> Bool { FileSystem.isExecutable(path(name)) }
}
