import BamboProtocol
import Foundation
import GRDB
#if canImport(Glibc)
    import Glibc
#endif

/// A study's SQLite archive: the study, its partition, trials, attempts, results, per-item records,
/// workers and events. The archive alone is enough to resume a study.
///
/// - WAL mode through a `DatabasePool`: readers (`bambo status`, another process) never block the
///   writer. Schema changes are versioned migrations ("v1", …) applied at open.
/// - Every state change is one `IMMEDIATE` transaction that also inserts its events; after the
///   commit the events go to the JSONL `EventLog` beside the archive and to `Options.onEvents`.
/// - No clocks: every operation takes the time from its caller.
/// - One writer at a time: the coordinator opens the archive as `.writer`, which takes an exclusive
///   lock (released at `close` or when the process dies, even by `kill -9`) and keeps the JSONL event
///   log. Any number of `.shared` opens (`bambo status`, `bambo export`, tests) may read alongside.
public final class Archive: Sendable {
    /// How this process uses the archive.
    public enum Role: Sendable, Hashable {
        /// The study's one writer (the coordinator): takes the exclusive writer lock — a second writer
        /// gets `ArchiveError.inUse` — and mirrors every event to the JSONL file beside the archive,
        /// repairing that file at open.
        case writer
        /// A reader (or a test): no lock, no event file. Writes made this way reach the event file
        /// when the writer next appends or opens.
        case shared
    }

    /// Whether `open` may create a new archive.
    public enum OpenMode: Sendable, Hashable {
        /// Create the file (and its schema) when it does not exist.
        case createIfMissing
        /// Fail with `ArchiveError.missing` when the file does not exist.
        case existing
    }

    /// SQLite's `synchronous` setting for the archive.
    public enum Durability: Sendable, Hashable {
        /// `synchronous = NORMAL`: a commit survives a crash of the process (`kill -9`); a power
        /// loss may take the last commits. Default.
        case normal
        /// `synchronous = FULL`: each commit is fsync'd and survives a power loss too.
        case full
    }

    public struct Options: Sendable {
        public var role: Role
        public var mode: OpenMode
        /// A trial fails when its attempts failed or expired on this many different workers.
        public var failureLimit: Int
        /// … or when this many of its attempts failed or expired in all (so a study with one worker whose
        /// every attempt fails the same way ends instead of retrying for ever).
        public var attemptLimit: Int
        public var durability: Durability
        /// When the writer's event file is fsync'd.
        public var eventLogSync: EventLog.SyncPolicy
        /// Called after each commit with the events it inserted, in seq order (e.g. to publish them
        /// on the PUB socket). Runs on the writer: keep it short.
        public var onEvents: (@Sendable ([EventRecord]) -> Void)?

        public init(
            role: Role = .shared, mode: OpenMode = .createIfMissing, failureLimit: Int = 2, attemptLimit: Int = 5,
            durability: Durability = .normal, eventLogSync: EventLog.SyncPolicy = .kernelBuffered,
            onEvents: (@Sendable ([EventRecord]) -> Void)? = nil
        ) {
            self.role = role
            self.mode = mode
            self.failureLimit = failureLimit
            self.attemptLimit = attemptLimit
            self.durability = durability
            self.eventLogSync = eventLogSync
            self.onEvents = onEvents
        }
    }

    /// The archive file.
    public let url: URL
    /// The JSONL mirror of the event table, for the `.writer` role.
    public let eventLog: EventLog?
    let pool: DatabasePool
    let options: Options
    /// The writer's WAL checkpoints, off its commits.
    private let checkpointer: WALCheckpointer?
    /// The transaction `batch` holds open, if any.
    private let openBatch = OpenBatch()

    /// The schema migrations this version knows, oldest first.
    public static var schemaVersions: [String] { Schema.migrator.migrations }

    /// Opens the archive at `url`, creating it when allowed and missing, and brings its schema up to
    /// date. Throws `ArchiveError.notAnArchive` for a file that is not a BAMBO archive (text, another
    /// application's SQLite database), `.newerSchema` for one written by a newer BAMBO, `.missing`.
    public static func open(at url: URL, options: Options = Options()) throws -> Archive {
        try Archive(url: url, options: options)
    }

    private init(url: URL, options: Options) throws {
        guard options.failureLimit >= 1 else {
            throw ArchiveError.invalidArgument(field: "failureLimit", reason: "expected at least 1, got \(options.failureLimit)")
        }
        guard options.attemptLimit >= options.failureLimit else {
            throw ArchiveError.invalidArgument(
                field: "attemptLimit", reason: "expected at least failureLimit (\(options.failureLimit)), got \(options.attemptLimit)")
        }
        let path = url.path
        if FileManager.default.fileExists(atPath: path) {
            try Archive.inspect(path: path)
        } else if options.mode == .existing {
            throw ArchiveError.missing(path: path)
        }

        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        let synchronous = options.durability == .full ? "FULL" : "NORMAL"
        let writer = options.role == .writer
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            // The writer's commits never checkpoint: `WALCheckpointer` does, on its own thread.
            if writer { try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        }
        do {
            pool = try Archive.openPool(path: path, configuration: configuration)
        } catch let error as DatabaseError {
            throw Archive.openError(path: path, error)
        }
        self.url = url
        self.options = options

        if options.role == .writer {
            let pool = self.pool
            let stored = try pool.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM event") ?? 0 }
            eventLog = try EventLog(
                url: EventLog.url(besideArchive: url), archivePath: path, syncPolicy: options.eventLogSync, storedCount: stored,
                fetch: { after in try pool.read { db in try Archive.fetchEvents(db, after: after, limit: nil, path: path) } })
            checkpointer = WALCheckpointer(path: path)
            checkpointer?.start()
        } else {
            eventLog = nil
            checkpointer = nil
        }
    }

    /// Checks, without writing, that an existing file is a BAMBO archive this version can open.
    private static func inspect(path: String) throws {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        if size == 0 { return }  // an empty file becomes a new archive
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw ArchiveError.notAnArchive(path: path, reason: "cannot read the file")
        }
        let header = (try? file.read(upToCount: 16)) ?? Data()
        try? file.close()
        guard header == Data("SQLite format 3\0".utf8) else {
            throw ArchiveError.notAnArchive(path: path, reason: "not an SQLite database")
        }
        var configuration = Configuration()
        configuration.readonly = true
        // Another process may be opening the archive at the same moment (making its WAL file again):
        // wait for it as the pool does, instead of failing with "database is locked".
        configuration.busyMode = .timeout(10)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read { db in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                if applicationID == Schema.applicationID {
                    let known = Set(Schema.migrator.migrations)
                    let applied = try Schema.migrator.appliedIdentifiers(db)
                    let unknown = applied.subtracting(known).sorted()
                    if !unknown.isEmpty {
                        throw ArchiveError.newerSchema(path: path, unknownMigrations: unknown)
                    }
                } else if !tables.isEmpty {
                    let listed = tables.prefix(8).joined(separator: ", ") + (tables.count > 8 ? ", …" : "")
                    throw ArchiveError.notAnArchive(
                        path: path, reason: "an SQLite database of another application (application_id \(applicationID); tables: \(listed))")
                }
            }
        } catch let error as DatabaseError {
            throw Archive.openError(path: path, error)
        }
    }

    /// Opens the pool and brings the schema up to date. Opening can write (SQLite's WAL file is made
    /// again once the last connection has removed it; migrations), and two processes opening the same
    /// archive at once (`bambo export` beside `bambo status`) can meet at a lock SQLite refuses at once,
    /// without waiting on the busy timeout (a read upgrading to a write). So the migrator runs only
    /// when a migration is missing, and a refused open is retried after a short pause, for up to
    /// about 10 s.
    private static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        var pause = 0.02
        let deadline = Date().addingTimeInterval(10)
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                if try !pool.read({ try Schema.migrator.hasCompletedMigrations($0) }) {
                    try Schema.migrator.migrate(pool)
                }
                return pool
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.5))
                pause = min(pause * 2, 0.5)
            }
        }
    }

    /// A damaged or foreign file is "not an archive"; anything else (permissions, a full disk) is
    /// reported as the SQLite error it is.
    private static func openError(path: String, _ error: DatabaseError) -> ArchiveError {
        let message = error.message ?? error.description
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return .notAnArchive(path: path, reason: "SQLite cannot read it: \(message)")
        default:
            return .sqlite(path: path, message: "\(message) (SQLite code \(error.resultCode.rawValue))")
        }
    }

    deinit { checkpointer?.stop() }

    /// Closes the database and the event log (releasing the writer's lock); the archive must not be
    /// used afterwards.
    public func close() throws {
        checkpointer?.stop()
        try pool.close()
        try eventLog?.close()
    }

    // MARK: transactions

    /// Runs `body` as one IMMEDIATE transaction; after the commit, mirrors the events it inserted.
    /// Inside `batch` (on its thread) it joins the batch's transaction instead.
    func transaction<T>(_ body: (inout Transaction) throws -> T) throws -> T {
        if let db = openBatch.database {
            // A savepoint: a change that fails is undone alone, even if the caller carries on.
            var result: T?
            try db.inSavepoint {
                var transaction = Transaction(db: db)
                result = try body(&transaction)
                openBatch.add(transaction.events)
                return .commit
            }
            return result!
        }
        return try pool.writeWithoutTransaction { db in
            var result: T?
            var events: [EventRecord] = []
            try db.inTransaction(.immediate) {
                var transaction = Transaction(db: db)
                result = try body(&transaction)
                events = transaction.events
                return .commit
            }
            mirror(events, db: db)
            return result!
        }
    }

    /// Runs `body` with every state change it makes (any of the public transitions) in one IMMEDIATE
    /// transaction: all of them commit together, or none when `body` throws. Reads inside see the
    /// batch's own changes. The events are mirrored after the commit. Nested calls join the outer
    /// batch. Use it from one thread at a time (the coordinator's loop), e.g. to record a RESULT
    /// and the next dispatch with one commit.
    public func batch<T>(_ body: () throws -> T) throws -> T {
        if openBatch.database != nil { return try body() }
        return try pool.writeWithoutTransaction { db in
            var result: T?
            var events: [EventRecord] = []
            try db.inTransaction(.immediate) {
                openBatch.open(db)
                defer { events = openBatch.close() }
                result = try body()
                return .commit
            }
            mirror(events, db: db)
            return result!
        }
    }

    /// Hands committed events to the JSONL file and `onEvents`.
    private func mirror(_ events: [EventRecord], db: Database) {
        guard !events.isEmpty else { return }
        // The commit is the truth: a failure to mirror is repaired at the next append or open.
        try? eventLog?.append(events, fetch: { after in try Archive.fetchEvents(db, after: after, limit: nil, path: path) })
        options.onEvents?(events)
    }

    /// Runs a read on a snapshot of the archive (inside `batch`: on the batch's transaction).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        if let db = openBatch.database { return try body(db) }
        return try pool.read(body)
    }

    /// The path for error messages.
    var path: String { url.path }
}

/// The connection and events of the transaction `Archive.batch` holds open, visible only to the
/// thread that opened it (other threads use the pool as usual).
private final class OpenBatch: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var owner: pthread_t?
    private var db: Database?
    private var events: [EventRecord] = []

    /// The batch's connection when called on the batch's thread.
    var database: Database? {
        lock.lock()
        defer { lock.unlock() }
        guard let owner, pthread_equal(owner, pthread_self()) != 0 else { return nil }
        return db
    }

    func open(_ db: Database) {
        lock.lock()
        owner = pthread_self()
        self.db = db
        events = []
        lock.unlock()
    }

    func add(_ more: [EventRecord]) {
        lock.lock()
        events += more
        lock.unlock()
    }

    /// Ends the batch; returns its events.
    func close() -> [EventRecord] {
        lock.lock()
        defer { lock.unlock() }
        owner = nil
        db = nil
        defer { events = [] }
        return events
    }
}

/// A write transaction in progress: the database and the events inserted so far.
struct Transaction {
    let db: Database
    private(set) var events: [EventRecord] = []

    init(db: Database) { self.db = db }

    /// Inserts an event and remembers it for the mirrors.
    @discardableResult
    mutating func emit(_ kind: String, _ data: [String: JSONValue], at time: Date) throws -> EventRecord {
        try db.cachedStatement(sql: "INSERT INTO event (time, kind, data) VALUES (?, ?, ?)")
            .execute(arguments: [time.timeIntervalSince1970, kind, try encodeJSON(data)])
        let event = EventRecord(seq: db.lastInsertedRowID, time: time, kind: kind, data: data)
        events.append(event)
        return event
    }
}

// MARK: JSON helpers

/// JSON text with sorted keys.
func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    do {
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    } catch {
        throw ArchiveError.invalidArgument(field: String(describing: T.self), reason: "cannot be stored as JSON: \(error)")
    }
}

/// Decodes JSON text stored in column `column`.
func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String, column: String, path: String) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: Data(text.utf8))
    } catch {
        throw ArchiveError.corrupt(path: path, reason: "column \(column) does not hold a \(T.self) as JSON: \(error)")
    }
}

/// Any Encodable value as a `JSONValue`, for event data.
func jsonValue<T: Encodable>(_ value: T) throws -> JSONValue {
    let text = try encodeJSON(value)
    return try JSONValue(json: Data(text.utf8))
}
