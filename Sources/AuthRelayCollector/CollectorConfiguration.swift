import AuthRelayProtocol

/// What a collector does with reports: where they go and who may send them.
public struct CollectorConfiguration: Sendable {
    public enum Sink: Sendable, Equatable, CustomStringConvertible {
        /// JSON Lines to a file, or to stdout when the path is "-".
        case jsonLines(path: String)
        /// Counted and acknowledged, stored nowhere: for benchmarks.
        case null
        /// PostgreSQL through libpq: a connection URL or conninfo (keep the password
        /// out of it), the password from `passwordFile` or libpq's PG* environment / .pgpass.
        case postgres(url: String, passwordFile: String?)

        /// The --sink name: "jsonl" or "null".
        public var description: String {
            switch self {
            case .jsonLines: "jsonl"
            case .null: "null"
            case .postgres: "postgres"
            }
        }
    }

    /// The program number served (a legacy deployment may use its own).
    public var program: UInt32 = AuthRelayProgram.program
    public var sink: Sink
    public var fsync: FsyncPolicy = .batch
    /// Rotate the output file before it passes this many bytes; 0 = never.
    public var rotateBytes: Int64 = 256 << 20
    /// Rotated files kept next to the output.
    public var keepFiles = 8
    /// Where the de-duplication state is kept across restarts.
    public var dataDirectory: String
    /// Reporters allowed on the unix socket, by the uid the kernel reports.
    /// Empty: anyone who can reach a listener. Not empty: reports over tcp and
    /// udp are refused, since nothing there proves a uid.
    public var allowedUIDs: Set<UInt32> = []
    /// (agent id, boot id) pairs remembered for de-duplication.
    public var maxAgents = 65_536
    /// Write a checkpoint after this many events even between ticks (bounds the replay at start).
    public var checkpointEveryEvents: UInt64 = 262_144
    /// Sleep this long in every report before answering: a slow collector on
    /// purpose, for `authrelay latency authpath` and fault drills. Never in production.
    public var injectedDelay: Duration?

    public init(sink: Sink, dataDirectory: String) {
        self.sink = sink
        self.dataDirectory = dataDirectory
    }
}
