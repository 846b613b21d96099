/// The database's tables, created or brought up to date when a store starts.
///
/// Versioned: `schema_version` holds one row per step applied. A step is
/// never edited once shipped; a change is a new step, and steps only add
/// (columns, tables, indexes), so an older collector keeps working against a
/// newer schema (its inserts name their columns). Safe when several
/// collectors start at once: the whole migration runs in one transaction
/// behind a transaction-scoped advisory lock, so the second waits for the
/// first and then finds nothing left to do.
package enum Schema {
    package struct Step: Sendable {
        package let version: Int
        package let description: String
        package let sql: String
    }

    /// What `migrate` found and left.
    package struct Migration: Sendable, Equatable {
        /// The version the database had (0: no schema yet).
        package var found: Int
        /// The version it has now.
        package var now: Int
        package var applied: [Int]

        package init(found: Int, now: Int, applied: [Int]) {
            self.found = found
            self.now = now
            self.applied = applied
        }
    }

    /// The advisory lock key (pg_advisory_xact_lock) every collector takes
    /// while migrating: "ARschema" in ASCII. Other users of advisory locks in
    /// the same database must not use it.
    package static let lockKey: Int64 = 0x4152_7363_6865_6D61

    package static var latestVersion: Int { steps.last?.version ?? 0 }

    package static let steps: [Step] = [
        Step(version: 1, description: "events, legacy events, losses, boot ends, the gap view", sql: version1),
    ]

    /// Brings the database to `latestVersion`; one transaction.
    static func migrate(_ connection: Connection) throws(StoreError) -> Migration {
        try connection.execute("BEGIN", operation: "migrate")
        do {
            try connection.execute("""
                SELECT pg_advisory_xact_lock(\(lockKey));
                CREATE TABLE IF NOT EXISTS schema_version (
                    version integer PRIMARY KEY,
                    description text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, operation: "migrate")
            let rows = try connection.query("SELECT coalesce(max(version), 0) FROM schema_version", operation: "migrate")
            let found = Int((rows.first?.first ?? nil) ?? "") ?? 0
            var applied: [Int] = []
            for step in steps where step.version > found {
                try connection.execute(step.sql, operation: "migrate to version \(step.version)")
                _ = try connection.query("INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                                         ["\(step.version)", step.description], operation: "migrate")
                applied.append(step.version)
            }
            try connection.execute("COMMIT", operation: "migrate")
            return Migration(found: found, now: max(found, latestVersion), applied: applied)
        } catch {
            if connection.isUsable { _ = try? connection.execute("ROLLBACK", operation: "migrate") }
            throw error
        }
    }

    /// The columns every event has, batch or legacy (part of version 1: never edited).
    private static let decisionColumns = """
            timestamp_ns bigint  NOT NULL,
            kind         text    NOT NULL,
            verdict      text    NOT NULL,
            decision_ns  bigint  NOT NULL,
            pid          integer NOT NULL,
            ppid         integer NOT NULL,
            uid          bigint  NOT NULL,
            gid          bigint  NOT NULL,
            flags        bigint  NOT NULL,
            exe_path     text    NOT NULL,
            target_path  text    NOT NULL,
            digest       bytea   NOT NULL,
            received_ns  bigint  NOT NULL,
            peer_uid     bigint,
            peer_gid     bigint,
            peer_pid     integer,
            collector_id text    NOT NULL
    """

    /// Times are CLOCK_REALTIME nanoseconds (bigint, exact, as the protocol
    /// carries them); uids, gids and flags are bigint so every UInt32 fits.
    static let version1 = """
        -- Batch events (protocol versions 2 and 3): the key is the de-duplication,
        -- exact across any number of collectors and restarts.
        CREATE TABLE events (
            agent_id     text    NOT NULL,
            boot_id      text    NOT NULL,
            seq          bigint  NOT NULL,
            \(decisionColumns),
            PRIMARY KEY (agent_id, boot_id, seq)
        );
        -- Indexes cost ingest (measured with psql \\copy on this 2-core machine: the
        -- key alone 134k rows/s, four B-trees 52k, these 67k), so each earns its place.
        -- Agent: the key's prefix (agent_id = ...). Time: BRIN, nearly free to keep
        -- since events arrive in about time order (a late spool replay only widens
        -- a range). Verdict: denials per host over time, the analyst's first
        -- question; partial, so allows cost nothing. Target: equality and prefix
        -- searches (target_path LIKE '/etc/%').
        CREATE INDEX events_time ON events USING brin (timestamp_ns);
        CREATE INDEX events_denied ON events (agent_id, timestamp_ns) WHERE verdict <> 'allow';
        CREATE INDEX events_target ON events (target_path text_pattern_ops);

        -- Version 1 REPORT_EVENT: no agent or boot id, so no key to de-duplicate
        -- by; a table of their own keeps the events key NOT NULL and exact.
        CREATE TABLE legacy_events (
            id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            seq          bigint  NOT NULL,
            \(decisionColumns)
        );
        CREATE INDEX legacy_events_time ON legacy_events (timestamp_ns);

        -- Events that will never arrive. A range (first_seq..last_seq) for every
        -- reason but version 2's agent_dropped, whose drops took no sequence
        -- numbers: a count before before_seq. A retried report is recorded once.
        CREATE TABLE losses (
            agent_id     text   NOT NULL,
            boot_id      text   NOT NULL,
            reason       text   NOT NULL CHECK (reason IN ('queue_full', 'spool_evicted', 'spool_corrupt', 'refused',
                                                           'sequence_gap', 'output_lost', 'agent_dropped')),
            first_seq    bigint,
            last_seq     bigint,
            before_seq   bigint,
            count        bigint NOT NULL CHECK (count > 0),
            received_ns  bigint NOT NULL,
            peer_uid     bigint,
            peer_gid     bigint,
            peer_pid     integer,
            collector_id text   NOT NULL,
            CHECK ((first_seq IS NOT NULL AND last_seq IS NOT NULL AND before_seq IS NULL
                    AND first_seq <= last_seq AND count = last_seq - first_seq + 1)
                OR (first_seq IS NULL AND last_seq IS NULL AND before_seq IS NOT NULL))
        );
        CREATE UNIQUE INDEX losses_range ON losses (agent_id, boot_id, first_seq, reason) WHERE first_seq IS NOT NULL;
        CREATE UNIQUE INDEX losses_before ON losses (agent_id, boot_id, before_seq, count, reason) WHERE before_seq IS NOT NULL;

        -- How each boot of an agent ended (AR3_REPORT_BOOT_END): the first report wins.
        CREATE TABLE boot_ends (
            agent_id     text   NOT NULL,
            boot_id      text   NOT NULL,
            ending       text   NOT NULL CHECK (ending IN ('clean', 'unclean')),
            last_seq     bigint NOT NULL,
            ended_ns     bigint NOT NULL,
            reported_by  text   NOT NULL,
            received_ns  bigint NOT NULL,
            peer_uid     bigint,
            peer_gid     bigint,
            peer_pid     integer,
            collector_id text   NOT NULL,
            PRIMARY KEY (agent_id, boot_id)
        );

        -- Every event, batch or legacy, with the JSON Lines' source field and a timestamptz.
        CREATE VIEW event_log AS
            SELECT 'batch' AS source, agent_id, boot_id, seq, timestamp_ns,
                   to_timestamp(timestamp_ns / 1e9) AS occurred_at, kind, verdict, decision_ns, pid, ppid, uid, gid,
                   flags, exe_path, target_path, digest, received_ns, peer_uid, peer_gid, peer_pid, collector_id
            FROM events
            UNION ALL
            SELECT 'legacy', NULL, NULL, seq, timestamp_ns,
                   to_timestamp(timestamp_ns / 1e9), kind, verdict, decision_ns, pid, ppid, uid, gid,
                   flags, exe_path, target_path, digest, received_ns, peer_uid, peer_gid, peer_pid, collector_id
            FROM legacy_events;

        -- Sequence gaps where all the events meet: per agent and boot, the
        -- ranges from 1 to the highest number seen (or the boot's reported
        -- last_seq) that no event and no loss range covers, whichever
        -- collector stored them. Events are first folded into runs of
        -- consecutive numbers (seq - row_number() is constant along a run, read
        -- in key order), so the window that finds the holes sorts runs, not events.
        -- A gap of a boot still running may yet be filled (a batch in flight).
        CREATE VIEW sequence_gaps AS
            WITH event_runs AS (
                SELECT agent_id, boot_id, min(seq) AS first_seq, max(seq) AS last_seq
                FROM (SELECT agent_id, boot_id, seq,
                             seq - row_number() OVER (PARTITION BY agent_id, boot_id ORDER BY seq) AS run
                      FROM events) numbered
                GROUP BY agent_id, boot_id, run
            ), covered AS (
                SELECT agent_id, boot_id, first_seq, last_seq FROM event_runs
                UNION ALL
                SELECT agent_id, boot_id, first_seq, last_seq FROM losses WHERE first_seq IS NOT NULL
                UNION ALL
                -- An empty range just past a boot's last number: what is missing before it is a gap.
                SELECT agent_id, boot_id, last_seq + 1, last_seq FROM boot_ends
            ), ordered AS (
                SELECT agent_id, boot_id, first_seq,
                       coalesce(max(last_seq) OVER (PARTITION BY agent_id, boot_id ORDER BY first_seq, last_seq
                                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS covered_to
                FROM covered
            )
            SELECT agent_id, boot_id, covered_to + 1 AS first_seq, first_seq - 1 AS last_seq,
                   first_seq - 1 - covered_to AS count
            FROM ordered
            WHERE first_seq > covered_to + 1;
        """
}
