import GRDB

/// The archive's schema as a list of migrations. A migration never changes once shipped: a new
/// schema version is a new migration appended here ("v2", …).
enum Schema {
    /// `PRAGMA application_id` of a BAMBO archive: "BAMB" in ASCII.
    static let applicationID: Int32 = 0x4241_4D42

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1", migrate: v1)
        migrator.registerMigration("v2", migrate: v2)
        return migrator
    }

    /// v1: study, partition, trials, attempts, results, items, workers, events. Times are Unix seconds
    /// (REAL); JSON columns hold UTF-8 JSON text with sorted keys.
    private static func v1(_ db: Database) throws {
        try db.execute(sql: "PRAGMA application_id = \(applicationID)")
        try db.execute(
            sql: """
                CREATE TABLE study (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    name TEXT NOT NULL,
                    config TEXT NOT NULL,
                    created REAL NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('running', 'finished'))
                );
                CREATE TABLE "partition" (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    spec TEXT NOT NULL,
                    saved REAL NOT NULL
                );
                CREATE TABLE trial (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    strategy TEXT NOT NULL,
                    x TEXT NOT NULL,
                    origin TEXT NOT NULL,
                    batch INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'dispatched', 'completed', 'failed')),
                    created REAL NOT NULL,
                    finished REAL,
                    failure_reasons TEXT NOT NULL DEFAULT '[]'
                );
                CREATE INDEX trial_by_state ON trial (state, id);
                CREATE TABLE attempt (
                    trial INTEGER NOT NULL REFERENCES trial (id),
                    number INTEGER NOT NULL CHECK (number >= 1),
                    worker TEXT NOT NULL,
                    dispatched REAL NOT NULL,
                    lease_deadline REAL NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('dispatched', 'completed', 'failed', 'expired', 'abandoned')),
                    finished REAL,
                    code TEXT,
                    reason TEXT,
                    PRIMARY KEY (trial, number)
                );
                CREATE INDEX attempt_by_state ON attempt (state, lease_deadline);
                CREATE INDEX attempt_by_worker ON attempt (worker, state);
                CREATE UNIQUE INDEX one_dispatched_attempt_per_trial ON attempt (trial) WHERE state = 'dispatched';
                CREATE TABLE result (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    trial INTEGER NOT NULL UNIQUE,
                    attempt INTEGER NOT NULL,
                    metrics TEXT NOT NULL,
                    objectives TEXT,
                    merge_seconds REAL NOT NULL,
                    evaluate_seconds REAL NOT NULL,
                    received REAL NOT NULL,
                    FOREIGN KEY (trial, attempt) REFERENCES attempt (trial, number)
                );
                CREATE TABLE item (
                    id INTEGER PRIMARY KEY,
                    result INTEGER NOT NULL REFERENCES result (id),
                    benchmark TEXT NOT NULL,
                    item_id TEXT NOT NULL,
                    response TEXT NOT NULL,
                    extracted TEXT,
                    correct INTEGER NOT NULL,
                    tokens INTEGER NOT NULL
                );
                CREATE INDEX item_by_result ON item (result, benchmark);
                CREATE TABLE worker (
                    name TEXT PRIMARY KEY,
                    host TEXT,
                    pid INTEGER,
                    capabilities TEXT,
                    first_seen REAL NOT NULL,
                    last_seen REAL NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('alive', 'lost', 'gone'))
                );
                CREATE TABLE event (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    time REAL NOT NULL,
                    kind TEXT NOT NULL,
                    data TEXT NOT NULL
                );
                """)
    }

    /// v2: a trial's own partition and merge spec (JSON, NULL: the study's) so that strategies with
    /// other partitions (layer-wise) or merge methods (the model-level grid) share one archive.
    private static func v2(_ db: Database) throws {
        try db.execute(
            sql: """
                ALTER TABLE trial ADD COLUMN "partition" TEXT;
                ALTER TABLE trial ADD COLUMN merge TEXT;
                """)
    }
}
