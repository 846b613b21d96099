import SystemSupport

/// The package's programs in one folder: next to the running `authrelay`, or
/// the build folder that holds `authrelayd` above a test binary.
package struct Executables: Sendable {
    package let directory: String

    package init(directory: String) {
        self.directory = directory
    }

    /// The folder of the running executable, from /proc/self/exe.
    package static func besideRunningProgram() throws(HarnessError) -> Executables {
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

    package func path(_ name: String) -> String { "\(directory)/\(name)" }

    package func has(_ name: String) -> Bool { FileSystem.isExecutable(path(name)) }
}
