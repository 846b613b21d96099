import Testing

@testable import AuthRelay

@Suite("Policy")
struct PolicyTests {
    let policy = try! Policy(parsing: """
        # test policy
        default allow
        deny path /srv/secret
        allow path /srv/secret/public   # more specific wins
        deny exe /usr/bin/nc
        allow exe /usr/sbin/backup
        """)

    @Test("the longest path prefix wins, on whole components")
    func pathPrefixes() {
        #expect(policy.decide(executable: "/bin/cat", target: "/srv/secret") == .deny)
        #expect(policy.decide(executable: "/bin/cat", target: "/srv/secret/a/b") == .deny)
        #expect(policy.decide(executable: "/bin/cat", target: "/srv/secret/public/x") == .allow)
        #expect(policy.decide(executable: "/bin/cat", target: "/srv/secretive") == .allow)
        #expect(policy.decide(executable: "/bin/cat", target: "/etc/passwd") == .allow)
    }

    @Test("executable rules come first, deny before allow")
    func executables() {
        #expect(policy.decide(executable: "/usr/bin/nc", target: "/etc/hosts") == .deny)
        #expect(policy.decide(executable: "/usr/sbin/backup", target: "/srv/secret/key") == .allow)
    }

    @Test("default deny applies when nothing matches")
    func defaultDeny() throws {
        let closed = try Policy(parsing: "default deny\nallow path /tmp")
        #expect(closed.decide(executable: "/bin/sh", target: "/etc/shadow") == .deny)
        #expect(closed.decide(executable: "/bin/sh", target: "/tmp/x") == .allow)
    }

    @Test("a bad file names its line and what is wrong", arguments: [
        ("allow /tmp", "policy:1: expected 'allow path PREFIX' or 'allow exe PATH' (paths with spaces are not supported)"),
        ("deny path tmp", "policy:1: 'tmp' is not an absolute path"),
        ("\npermit path /tmp", "policy:2: expected 'allow', 'deny' or 'default', found 'permit'"),
        ("default maybe", "policy:1: expected 'default allow' or 'default deny'"),
        ("default allow\ndefault deny", "policy:2: a second 'default' line"),
        ("deny file /tmp", "policy:1: expected 'path' or 'exe' after 'deny', found 'file'"),
    ])
    func badFiles(text: String, message: String) {
        #expect(throws: PolicyError.self) { try Policy(parsing: text) }
        do {
            _ = try Policy(parsing: text)
        } catch {
            #expect(error.description == message)
        }
    }
}
