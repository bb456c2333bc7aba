import BamboProtocol
import Foundation
import GRDB

// Reads. Each runs on its own snapshot (WAL), so it never blocks the writer nor sees half a change.

extension Archive {
    /// The study, or nil before `createStudy`.
    public func loadStudy() throws -> StudyRecord? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM study") else { return nil }
            let raw = try row.decode(String.self, forColumn: "state")
            guard let state = StudyState(rawValue: raw) else {
                throw ArchiveError.corrupt(path: path, reason: "study has state \"\(raw)\"")
            }
            return StudyRecord(
                name: try row.decode(String.self, forColumn: "name"),
                config: Data(try row.decode(String.self, forColumn: "config").utf8),
                created: try date(row, "created"), state: state)
        }
    }

    /// The stored partition decoded as `type`, or nil before `savePartition`.
    public func loadPartition<Partition: Decodable>(as type: Partition.Type) throws -> Partition? {
        let spec = try read { db in try String.fetchOne(db, sql: #"SELECT spec FROM "partition""#) }
        return try spec.map { try decodeJSON(type, $0, column: "partition.spec", path: path) }
    }

    /// One trial, or nil when there is no such id.
    public func trial(_ id: Int64) throws -> TrialRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM trial WHERE id = ?", arguments: [id]).map(trialRecord) }
    }

    /// The trials in `state` (all when nil), by id.
    public func trials(in state: TrialState? = nil) throws -> [TrialRecord] {
        try read { db in
            let rows = if let state {
                try Row.fetchAll(db, sql: "SELECT * FROM trial WHERE state = ? ORDER BY id", arguments: [state.rawValue])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM trial ORDER BY id")
            }
            return try rows.map(trialRecord)
        }
    }

    /// The oldest pending trial (requeued trials, being older, come before new ones), or nil.
    public func nextPendingTrial() throws -> TrialRecord? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM trial WHERE state = 'pending' ORDER BY id LIMIT 1").map(trialRecord)
        }
    }

    /// The attempts of a trial, by number.
    public func attempts(ofTrial trial: Int64) throws -> [AttemptRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE trial = ? ORDER BY number", arguments: [trial]).map(attemptRecord)
        }
    }

    /// The attempts out on workers (on `worker` only, when given), by trial.
    public func dispatchedAttempts(worker: String? = nil) throws -> [AttemptRecord] {
        try read { db in
            let rows = if let worker {
                try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE state = 'dispatched' AND worker = ? ORDER BY trial", arguments: [worker])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE state = 'dispatched' ORDER BY trial")
            }
            return try rows.map(attemptRecord)
        }
    }

    /// The accepted result of a trial, or nil.
    public func result(ofTrial trial: Int64) throws -> ResultRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM result WHERE trial = ?", arguments: [trial]).map(resultRecord) }
    }

    /// Every completed trial with its result, by trial id.
    public func completedTrials() throws -> [CompletedTrial] {
        try read { db in
            let trials = try Row.fetchAll(db, sql: "SELECT * FROM trial WHERE state = 'completed' ORDER BY id").map(trialRecord)
            let results = try Row.fetchAll(db, sql: "SELECT * FROM result").map(resultRecord)
            let byTrial = Dictionary(results.map { ($0.trial, $0) }, uniquingKeysWith: { first, _ in first })
            return try trials.map { trial in
                guard let result = byTrial[trial.id] else {
                    throw ArchiveError.corrupt(path: path, reason: "trial \(trial.id) is completed but has no result")
                }
                return CompletedTrial(trial: trial, result: result)
            }
        }
    }

    /// The per-item records of a trial's result (empty when none were sent), in the order received.
    public func items(ofTrial trial: Int64) throws -> [ItemRecord] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT item.* FROM item JOIN result ON item.result = result.id WHERE result.trial = ? ORDER BY item.id",
                arguments: [trial]
            ).map { row in
                ItemRecord(
                    benchmark: try row.decode(String.self, forColumn: "benchmark"), id: try row.decode(String.self, forColumn: "item_id"),
                    response: try row.decode(String.self, forColumn: "response"), extracted: try row.decode(String?.self, forColumn: "extracted"),
                    correct: try row.decode(Bool.self, forColumn: "correct"), tokens: try row.decode(Int.self, forColumn: "tokens"))
            }
        }
    }

    /// How many trials are in each state.
    public func counts() throws -> TrialCounts {
        try read { db in
            var counts = TrialCounts()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM trial GROUP BY state") {
                let n = try row.decode(Int.self, forColumn: "n")
                switch TrialState(rawValue: try row.decode(String.self, forColumn: "state")) {
                case .pending: counts.pending = n
                case .dispatched: counts.dispatched = n
                case .completed: counts.completed = n
                case .failed: counts.failed = n
                case nil: throw ArchiveError.corrupt(path: path, reason: "a trial has an unknown state")
                }
            }
            return counts
        }
    }

    /// Every worker seen, by name.
    public func workers() throws -> [WorkerRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM worker ORDER BY name").map { row in
                let raw = try row.decode(String.self, forColumn: "state")
                guard let state = WorkerState(rawValue: raw) else {
                    throw ArchiveError.corrupt(path: path, reason: "worker has state \"\(raw)\"")
                }
                let capabilities = try row.decode(String?.self, forColumn: "capabilities").map {
                    try decodeJSON(Capabilities.self, $0, column: "worker.capabilities", path: path)
                }
                return WorkerRecord(
                    name: try row.decode(String.self, forColumn: "name"), host: try row.decode(String?.self, forColumn: "host"),
                    pid: try row.decode(Int?.self, forColumn: "pid"), capabilities: capabilities,
                    firstSeen: try date(row, "first_seen"), lastSeen: try date(row, "last_seen"), state: state)
            }
        }
    }

    /// The events with seq > `since`, in order, at most `limit`.
    public func events(since: Int64 = 0, limit: Int? = nil) throws -> [EventRecord] {
        try read { db in try Archive.fetchEvents(db, after: since, limit: limit, path: path) }
    }

    /// The highest event seq (0 when there is none).
    public func lastEventSeq() throws -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM event") ?? 0 }
    }

    // MARK: rows → values

    static func fetchEvents(_ db: Database, after: Int64, limit: Int?, path: String) throws -> [EventRecord] {
        try Row.fetchAll(
            db, sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [after, limit ?? -1]
        ).map { row in
            let seq = try row.decode(Int64.self, forColumn: "seq")
            let text = try row.decode(String.self, forColumn: "data")
            guard case .object(let data)? = try? JSONValue(json: Data(text.utf8)) else {
                throw ArchiveError.corrupt(path: path, reason: "event \(seq) data is not a JSON object")
            }
            return EventRecord(
                seq: seq, time: Date(timeIntervalSince1970: try row.decode(Double.self, forColumn: "time")),
                kind: try row.decode(String.self, forColumn: "kind"), data: data)
        }
    }

    func trialRecord(_ row: Row) throws -> TrialRecord {
        let id = try row.decode(Int64.self, forColumn: "id")
        let raw = try row.decode(String.self, forColumn: "state")
        guard let state = TrialState(rawValue: raw) else {
            throw ArchiveError.corrupt(path: path, reason: "trial \(id) has state \"\(raw)\"")
        }
        return TrialRecord(
            id: id, strategy: try row.decode(String.self, forColumn: "strategy"),
            x: try decodeJSON([Double].self, try row.decode(String.self, forColumn: "x"), column: "trial.x", path: path),
            origin: TrialOrigin(try row.decode(String.self, forColumn: "origin")),
            batch: try row.decode(Int.self, forColumn: "batch"), state: state, created: try date(row, "created"),
            finished: try optionalDate(row, "finished"),
            failureReasons: try decodeJSON(
                [FailureReason].self, try row.decode(String.self, forColumn: "failure_reasons"), column: "trial.failure_reasons", path: path),
            partition: try row.decode(String?.self, forColumn: "partition").map {
                try decodeJSON(PartitionSpec.self, $0, column: "trial.partition", path: path)
            },
            merge: try row.decode(String?.self, forColumn: "merge").map { try decodeJSON(MergeSpec.self, $0, column: "trial.merge", path: path) })
    }

    func attemptRecord(_ row: Row) throws -> AttemptRecord {
        let raw = try row.decode(String.self, forColumn: "state")
        guard let state = AttemptState(rawValue: raw) else {
            throw ArchiveError.corrupt(path: path, reason: "an attempt has state \"\(raw)\"")
        }
        return AttemptRecord(
            trial: try row.decode(Int64.self, forColumn: "trial"), number: try row.decode(Int.self, forColumn: "number"),
            worker: try row.decode(String.self, forColumn: "worker"), dispatched: try date(row, "dispatched"),
            leaseDeadline: try date(row, "lease_deadline"), state: state, finished: try optionalDate(row, "finished"),
            code: try row.decode(String?.self, forColumn: "code"), reason: try row.decode(String?.self, forColumn: "reason"))
    }

    func resultRecord(_ row: Row) throws -> ResultRecord {
        ResultRecord(
            id: try row.decode(Int64.self, forColumn: "id"), trial: try row.decode(Int64.self, forColumn: "trial"),
            attempt: try row.decode(Int.self, forColumn: "attempt"),
            metrics: try decodeJSON(Metrics.self, try row.decode(String.self, forColumn: "metrics"), column: "result.metrics", path: path),
            objectives: try row.decode(String?.self, forColumn: "objectives").map {
                try decodeJSON([String: Double].self, $0, column: "result.objectives", path: path)
            },
            durations: Durations(
                merge: try row.decode(Double.self, forColumn: "merge_seconds"),
                evaluate: try row.decode(Double.self, forColumn: "evaluate_seconds")),
            received: try date(row, "received"))
    }

    private func date(_ row: Row, _ column: String) throws -> Date {
        Date(timeIntervalSince1970: try row.decode(Double.self, forColumn: column))
    }

    private func optionalDate(_ row: Row, _ column: String) throws -> Date? {
        try row.decode(Double?.self, forColumn: column).map { Date(timeIntervalSince1970: $0) }
    }
}
