import ArgumentParser
import AuthRelayCLI
import AuthRelayCollector
import AuthRelayProtocol
import ONCRPC
import Testing

/// Each flag value type accepts what its help says and refuses the rest at
/// parse time (nil: ArgumentParser then names the flag in its error).
@Suite("Flag value types")
struct ArgumentTypesTests {
    @Test("TransportList: names in order, unix and local alike, repeats dropped, case and spaces ignored")
    func transportList() {
        #expect(TransportList(argument: "tcp,udp,unix")?.transports == [.tcp, .udp, .local])
        #expect(TransportList(argument: "local")?.transports == [.local])
        #expect(TransportList(argument: "UDP, tcp,udp")?.transports == [.udp, .tcp])
        #expect(TransportList(argument: "tcp,unix")?.contains(.local) == true)
        #expect(TransportList(argument: "tcp")?.contains(.udp) == false)
        #expect(TransportList([.tcp, .local]).defaultValueDescription == "tcp,unix")
    }

    @Test("TransportList refuses", arguments: ["", ",", "sctp", "tcp,sctp", "tcp;udp"])
    func transportListRefuses(_ text: String) {
        #expect(TransportList(argument: text) == nil)
    }

    @Test("CommaList: every element through its own type")
    func commaList() {
        #expect(CommaList<Int>(argument: "1,8,64,512")?.values == [1, 8, 64, 512])
        #expect(CommaList<Int>(argument: "1, 8")?.values == [1, 8])
        #expect(CommaList<Int>(argument: "7")?.values == [7])
        #expect(CommaList<SinkKind>(argument: "null,jsonl")?.values == [.null, .jsonl])
        #expect(CommaList([1, 2]).defaultValueDescription == "1,2")
        #expect(CommaList<Int>(argument: "") == nil)
        #expect(CommaList<Int>(argument: "1,x") == nil)
        #expect(CommaList<SinkKind>(argument: "null,file") == nil)
    }

    @Test("CollectorList: endpoints in order of preference, rpcbind on several hosts, repeats dropped")
    func collectorList() {
        #expect(CollectorList(argument: "local")?.endpoints == [.rpcbind(host: "localhost", transport: .local)])
        #expect(CollectorList(argument: "tcp://10.0.0.5:7700,tcp://10.0.0.6:7700")?.endpoints
            == [.tcp(host: "10.0.0.5", port: 7700), .tcp(host: "10.0.0.6", port: 7700)])
        #expect(CollectorList(argument: "unix:///run/a.sock, udp://[::1]:9,tcp")?.endpoints
            == [.unix(path: "/run/a.sock"), .udp(host: "::1", port: 9), .rpcbind(host: "localhost", transport: .tcp)])
        #expect(CollectorList(argument: "rpcbind://c1,c2,c3/tcp")?.endpoints
            == ["c1", "c2", "c3"].map { .rpcbind(host: $0, transport: .tcp) })
        #expect(CollectorList(argument: "rpcbind://c1,c2/udp,unix:///run/a.sock,rpcbind://c2/udp")?.endpoints
            == [.rpcbind(host: "c1", transport: .udp), .rpcbind(host: "c2", transport: .udp), .unix(path: "/run/a.sock")])
        #expect(CollectorList(argument: "rpcbind://c1/tcp")?.endpoints == [.rpcbind(host: "c1", transport: .tcp)])
        let list = CollectorList([.tcp(host: "10.0.0.5", port: 7700), .rpcbind(host: "localhost", transport: .local)])
        #expect(list.defaultValueDescription == "tcp://10.0.0.5:7700,local")
        #expect(CollectorList(argument: list.defaultValueDescription) == list)
    }

    @Test("PostgresURL: postgresql:// and postgres:// URLs, a user, several hosts, parameters; kept as written",
          arguments: ["postgresql://collector@db.example:5432/authrelay", "postgres://db/authrelay",
                      "postgresql://collector@db1:5432,db2:5432/authrelay?target_session_attrs=read-write",
                      "postgresql://collector@db/authrelay?sslmode=verify-full&password_hint=x:y"])
    func postgresURL(_ text: String) {
        #expect(PostgresURL(argument: text)?.url == text)
    }

    @Test("PostgresURL refuses a password in the URL, other schemes and key=value strings",
          arguments: ["postgresql://collector:secret@db/authrelay", "postgres://:secret@db/authrelay",
                      "postgresql://collector@db/authrelay?sslmode=require&password=secret", "mysql://db/x",
                      "host=db dbname=authrelay", "postgresql://", ""])
    func postgresURLRefuses(_ text: String) {
        #expect(PostgresURL(argument: text) == nil)
    }

    @Test("CollectorList refuses",
          arguments: ["", ",", "tcp://a:1,", "ftp://x:1", "tcp://a:1,ftp://x:1", "rpcbind://c1,c2", "rpcbind://c1,,c2/tcp",
                      "rpcbind://c1,c2/sctp", "rpcbind://c1,tcp://b:1"])
    func collectorListRefuses(_ text: String) {
        #expect(CollectorList(argument: text) == nil)
    }

    @Test("ProtocolVersion: 1, 2, 3 (or v1, v2, v3)")
    func protocolVersion() {
        #expect(ProtocolVersion(argument: "2") == .v2)
        #expect(ProtocolVersion(argument: "v3") == .v3)
        #expect(ProtocolVersion(argument: "4") == nil)
        #expect(ProtocolVersion(argument: "x") == nil)
        #expect(ProtocolVersion.v1.defaultValueDescription == "1")
    }

    @Test("ByteCount: bytes, or K, M, G (either case)")
    func byteCount() {
        #expect(ByteCount(argument: "268435456")?.bytes == 268_435_456)
        #expect(ByteCount(argument: "256K")?.bytes == 256 << 10)
        #expect(ByteCount(argument: "256m")?.bytes == 256 << 20)
        #expect(ByteCount(argument: "1G")?.bytes == 1 << 30)
        #expect(ByteCount(argument: "0")?.bytes == 0)
        #expect(ByteCount(256 << 20).defaultValueDescription == "256M")
        #expect(ByteCount(1 << 30).defaultValueDescription == "1G")
        #expect(ByteCount(1000).defaultValueDescription == "1000")
        #expect(ByteCount(0).defaultValueDescription == "0")
    }

    @Test("ByteCount refuses", arguments: ["", "K", "-1", "1.5M", "12T", "ten", "9223372036854775807K"])
    func byteCountRefuses(_ text: String) {
        #expect(ByteCount(argument: text) == nil)
    }

    @Test("FileMode: octal permission bits")
    func fileMode() {
        #expect(FileMode(argument: "0660")?.bits == 0o660)
        #expect(FileMode(argument: "600")?.bits == 0o600)
        #expect(FileMode(argument: "7777")?.bits == 0o7777)
        #expect(FileMode(0o660).defaultValueDescription == "0660")
        #expect(FileMode(0o4755).defaultValueDescription == "4755")
    }

    @Test("FileMode refuses", arguments: ["", "8", "0698", "10000", "-1", "rw-r--r--"])
    func fileModeRefuses(_ text: String) {
        #expect(FileMode(argument: text) == nil)
    }

    @Test("Seconds: a bare number is seconds, whole or not; a unit may be given")
    func seconds() {
        #expect(Seconds(argument: "5.0")?.duration == .seconds(5))
        #expect(Seconds(argument: "10")?.duration == .seconds(10))
        #expect(Seconds(argument: "2.5")?.duration == .milliseconds(2500))
        #expect(Seconds(argument: "0")?.duration == .zero)
        #expect(Seconds(argument: "500ms")?.duration == .milliseconds(500))
        #expect(Seconds(argument: "5m")?.duration == .seconds(300))
        #expect(Seconds(.seconds(5)).defaultValueDescription == "5")
        #expect(Seconds(.milliseconds(2500)).defaultValueDescription == "2500ms")
    }

    @Test("Seconds refuses", arguments: ["", "-1", "nan", "inf", "1e9", "five", "5h", "-5ms"])
    func secondsRefuses(_ text: String) {
        #expect(Seconds(argument: text) == nil)
    }

    @Test("Duration: a unit, or a bare number of milliseconds")
    func duration() {
        #expect(Duration(argument: "20ms") == .milliseconds(20))
        #expect(Duration(argument: "1.5s") == .milliseconds(1500))
        #expect(Duration(argument: "250us") == .microseconds(250))
        #expect(Duration(argument: "250µs") == .microseconds(250))
        #expect(Duration(argument: "500ns") == .nanoseconds(500))
        #expect(Duration(argument: "2m") == .seconds(120))
        #expect(Duration(argument: "100") == .milliseconds(100))
        #expect(Duration.milliseconds(100).defaultValueDescription == "100ms")
        for bad in ["", "-1ms", "fast", "1e30s", "nans"] {
            #expect(Duration(argument: bad) == nil, "\(bad)")
        }
    }

    @Test("SinkKind and FsyncPolicy: their names only")
    func enums() {
        #expect(SinkKind(argument: "jsonl") == .jsonl)
        #expect(SinkKind(argument: "null") == .null)
        #expect(SinkKind(argument: "file") == nil)
        #expect(FsyncPolicy(argument: "always") == .always)
        #expect(FsyncPolicy(argument: "batch") == .batch)
        #expect(FsyncPolicy(argument: "never") == .never)
        #expect(FsyncPolicy(argument: "sometimes") == nil)
    }

    @Test("ProgramNumber: decimal or 0x hex, 32 bits")
    func programNumber() {
        #expect(ProgramNumber(argument: "536873598")?.value == 0x2000_0A7E)
        #expect(ProgramNumber(argument: "0x20000A7E")?.value == 0x2000_0A7E)
        #expect(ProgramNumber(argument: "0X3f0a7e10")?.value == 0x3F0A_7E10)
        #expect(ProgramNumber(0x3F0A_7E10).defaultValueDescription == "0x3F0A7E10")
        for bad in ["", "0x", "-1", "4294967296", "0x1G", "prog"] {
            #expect(ProgramNumber(argument: bad) == nil, "\(bad)")
        }
    }

    @Test("RPCEndpoint: every documented form, and its default text reads back")
    func endpoint() {
        #expect(RPCEndpoint(argument: "tcp://127.0.0.1:4000") == .tcp(host: "127.0.0.1", port: 4000))
        #expect(RPCEndpoint(argument: "udp://localhost:53") == .udp(host: "localhost", port: 53))
        #expect(RPCEndpoint(argument: "unix:///run/authrelayd.sock") == .unix(path: "/run/authrelayd.sock"))
        #expect(RPCEndpoint(argument: "/run/authrelayd.sock") == .unix(path: "/run/authrelayd.sock"))
        #expect(RPCEndpoint(argument: "rpcbind://collector.example/tcp") == .rpcbind(host: "collector.example", transport: .tcp))
        #expect(RPCEndpoint(argument: "local") == .rpcbind(host: "localhost", transport: .local))
        for endpoint in [RPCEndpoint.tcp(host: "127.0.0.1", port: 4000), .udp(host: "h", port: 1), .unix(path: "/x.sock"),
                         .rpcbind(host: "localhost", transport: .udp), .rpcbind(host: "far", transport: .tcp)] {
            #expect(RPCEndpoint(argument: endpoint.defaultValueDescription) == endpoint, "\(endpoint)")
        }
        for bad in ["", "tcp://127.0.0.1", "tcp://host:99999", "ftp://x:1", "unix://relative", "rpcbind://host"] {
            #expect(RPCEndpoint(argument: bad) == nil, "\(bad)")
        }
    }
}
