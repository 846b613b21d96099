import Glibc

/// Makes file accesses from child processes: the agent allows its own process
/// without asking the policy, so every access it should judge must come from
/// another process. `/bin/cat FILE` opens a file; running a copied binary execs it.
enum Accessor {
    enum Outcome {
        case allowed
        case denied
    }

    /// Runs `arguments` with stdin, stdout and stderr on /dev/null and waits for it.
    /// An exec the kernel refuses (EPERM/EACCES) or a non-zero exit counts as denied.
    static func run(_ arguments: [String]) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for descriptor in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] {
            posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
        }
        var cArguments = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid = pid_t()
        let status = posix_spawn(&pid, arguments[0], &actions, nil, &cArguments, environ)
        guard status == 0 else { return .denied }
        var exitStatus: Int32 = 0
        while waitpid(pid, &exitStatus, 0) < 0 && errno == EINTR {}
        // WIFEXITED && WEXITSTATUS == 0, spelled out: the macros do not import.
        return (exitStatus & 0x7f) == 0 && ((exitStatus >> 8) & 0xff) == 0 ? .allowed : .denied
    }
}
