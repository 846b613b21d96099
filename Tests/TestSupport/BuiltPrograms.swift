import AuthRelayHarness

/// The package's programs as `swift build` made them (authrelayd, authrelay,
/// legacy-collector, legacy-reporter): the build folder at or above the test
/// bundle that holds authrelayd. The one place tests look them up.
package enum BuiltPrograms {
    package static let executables = Executables.holding("authrelayd")

    /// The path of the built program `name`.
    package static func path(_ name: String) -> String { executables.path(name) }
}
