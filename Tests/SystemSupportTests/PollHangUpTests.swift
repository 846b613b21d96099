import Glibc
import SystemSupport
import Testing

@Suite struct PollHangUpTests {
    @Test("readHangUp alone reports a peer that closed, not data waiting to be read")
    func peerClosed() throws {
        let path = "/tmp/pollhangup-\(Processes.currentID)-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { try? FileSystem.removeFile(path) }
        let listener = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        try listener.bind(to: .unix(path: path))
        try listener.listen()
        var client: FileDescriptor? = try FileDescriptor.socket(family: AF_LOCAL, .stream)
        _ = try client?.connect(to: .unix(path: path))
        guard let accepted = try listener.accept(nonBlocking: false) else {
            Issue.record("no connection to accept")
            return
        }
        _ = try [UInt8](repeating: 1, count: 8).withUnsafeBytes { bytes throws(SystemError) in try client?.send(bytes) }
        let withData: PollEvents = try accepted.wait(for: PollEvents.readHangUp, timeout: Duration.milliseconds(50))
        #expect(withData.isEmpty, "data is not a hang-up")
        client = nil
        let closed: PollEvents = try accepted.wait(for: PollEvents.readHangUp, timeout: Duration.seconds(2))
        #expect(closed.contains(PollEvents.readHangUp))
    }
}
