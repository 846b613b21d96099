/// Where the store connects and how long it waits.
package struct ConnectionSettings: Sendable, Equatable {
    /// A libpq connection string: a URL (`postgresql://collector@db.example:5432/authrelay?sslmode=verify-full`)
    /// or `key=value` pairs. Keep the password out of it (a command line is
    /// readable by every user through /proc): give `passwordFile`, or use
    /// libpq's own PGPASSWORD, PGPASSFILE or ~/.pgpass; every other PG*
    /// variable (PGHOST, PGSSLMODE, ...) applies as libpq documents.
    package var conninfo: String
    /// A file that holds the password and nothing else (a trailing newline
    /// is ignored), e.g. a mounted secret; read at every connect.
    package var passwordFile: String?
    /// libpq's connect_timeout when the conninfo has none (whole seconds, at least 2).
    package var connectTimeout: Duration
    /// The longest one call may wait on the server (sending, a result); past
    /// it the connection is closed and the call fails as `connectionLost`:
    /// a server that hangs is a server that is gone.
    package var operationTimeout: Duration
    /// Shown in pg_stat_activity when the conninfo names none.
    package var applicationName: String

    package init(conninfo: String, passwordFile: String? = nil, connectTimeout: Duration = .seconds(10),
                 operationTimeout: Duration = .seconds(30), applicationName: String = "authrelayd") {
        self.conninfo = conninfo
        self.passwordFile = passwordFile
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.applicationName = applicationName
    }
}
