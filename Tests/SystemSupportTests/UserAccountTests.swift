import Glibc
import SystemSupport
import Testing

/// What the temporary PostgreSQL cluster added to the seam: accounts, chown, a process's children.
@Suite struct UserAccountTests {
    @Test("root is uid 0 in the password database; an unknown name is nil, not an error")
    func lookup() throws {
        let root = try #require(try UserAccount.named("root"))
        #expect(root.uid == 0 && root.gid == 0 && root.home == "/root")
        #expect(try UserAccount.named("no-such-user-authrelay") == nil)
    }

    @Test("changeOwner gives a file to another user (as root) and names the path when it fails")
    func changeOwner() throws {
        let directory = try FileSystem.makeTemporaryDirectory(prefix: "systemsupport-chown")
        defer { FileSystem.removeTree(directory) }
        let path = directory + "/file"
        try FileSystem.writeFile(path, [1])
        if UserAccount.isRoot, let nobody = try UserAccount.named("nobody") {
            try FileSystem.changeOwner(path, uid: nobody.uid, gid: nobody.gid)
            #expect(try FileSystem.status(path)?.owner == nobody.uid)
        }
        let error = try #require(throws: SystemError.self) {
            try FileSystem.changeOwner(directory + "/missing", uid: 0, gid: 0)
        }
        #expect(error.function == "chown" && error.errno == ENOENT && error.path == directory + "/missing")
    }

    @Test("children lists a started child by pid until it is reaped")
    func children() throws {
        let child = try Processes.spawn("/bin/sleep", ["5"])
        defer { Processes.signal(child, SIGKILL); _ = Processes.reap(child, blocking: true) }
        #expect(Processes.children(of: Processes.currentID).contains(child))
        Processes.signal(child, SIGKILL)
        _ = Processes.reap(child, blocking: true)
        #expect(!Processes.children(of: Processes.currentID).contains(child))
    }
}
