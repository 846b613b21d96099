import AuthRelayHarness

/// Makes file accesses from child processes: the agent allows its own process
/// without asking the policy, so every access it should judge must come from
/// another process. `/bin/cat FILE` opens a file; running a copied binary execs it.
enum Accessor {
    enum Outcome {
        case allowed
        case denied
    }

    /// Runs `arguments` with everything on /dev/null and waits (bounded) for it.
    /// An exec the kernel refuses (EPERM/EACCES) or a non-zero exit counts as denied.
    static func run(_ arguments: [String]) -> Outcome {
        guard let child = try? ChildProcess(discardingOutputOf: arguments[0], Array(arguments.dropFirst()))
        else { return .denied }
        return child.wait(timeout: .seconds(30)) == .exited(0) ? .allowed : .denied
    }
}
