import BamboProtocol
import Foundation
import GRDB

// State changes. Each public method is one transaction and records its events (kinds below, also
// listed in Protocol/README.md §9) in it.
//
//   study.created {name}                      study.state {state}
//   partition.saved {partition}               trial.added {trial, batch, origin, strategy, x, partition?, merge?}
//   trial.dispatched {trial, attempt, worker, leaseDeadline}
//   trial.completed {trial, attempt, worker, metrics, durations}
//   attempt.failed {trial, attempt, worker, code, reason, logTail}
//   attempt.expired / attempt.abandoned {trial, attempt, worker, reason}
//   trial.requeued {trial, attempt}           trial.failed {trial, reasons}
//   worker.joined {worker, host?, pid?, capabilities?}   worker.lost / worker.gone {worker, reason}
//   objectives.updated {trials}               and any kind given to appendEvent.

extension Archive {
    // MARK: study and partition

    /// Creates the archive's study. Throws `.studyExists` when it already holds one.
    @discardableResult
    public func createStudy<Config: Encodable>(name: String, config: Config, at time: Date) throws -> StudyRecord {
        guard !name.isEmpty else { throw ArchiveError.invalidArgument(field: "name", reason: "a study needs a name") }
        let configJSON = try encodeJSON(config)
        return try transaction { tx in
            if let existing = try String.fetchOne(tx.db, sql: "SELECT name FROM study") {
                throw ArchiveError.studyExists(path: path, name: existing)
            }
            try tx.db.execute(
                sql: "INSERT INTO study (id, name, config, created, state) VALUES (1, ?, ?, ?, ?)",
                arguments: [name, configJSON, time.timeIntervalSince1970, StudyState.running.rawValue])
            try tx.emit("study.created", ["name": .string(name)], at: time)
            return StudyRecord(name: name, config: Data(configJSON.utf8), created: time, state: .running)
        }
    }

    /// Sets the study's state (e.g. `finished` when its budget is spent).
    public func setStudyState(_ state: StudyState, at time: Date) throws {
        try transaction { tx in
            try tx.db.execute(sql: "UPDATE study SET state = ?", arguments: [state.rawValue])
            guard tx.db.changesCount == 1 else { throw ArchiveError.noStudy(path: path) }
            try tx.emit("study.state", ["state": .string(state.rawValue)], at: time)
        }
    }

    /// Stores the study's partition. Saving an equal partition again does nothing; a different one
    /// throws `.partitionDiffers` (a study's partition never changes).
    public func savePartition<Partition: Encodable>(_ partition: Partition, at time: Date) throws {
        let spec = try encodeJSON(partition)
        try transaction { tx in
            if let stored = try String.fetchOne(tx.db, sql: #"SELECT spec FROM "partition""#) {
                guard stored == spec else { throw ArchiveError.partitionDiffers(path: path) }
                return
            }
            try tx.db.execute(sql: #"INSERT INTO "partition" (id, spec, saved) VALUES (1, ?, ?)"#, arguments: [spec, time.timeIntervalSince1970])
            try tx.emit("partition.saved", ["partition": try JSONValue(json: Data(spec.utf8))], at: time)
        }
    }

    // MARK: trials

    /// Adds trials, one per decision vector, as one proposal batch; returns their ids in order.
    /// Every x must have the same, non-zero length and values in [0, 1]. `partition` (shared by the
    /// batch) and `merges` (one per trial, or nil) are stored when the trials do not use the study's
    /// own; with a partition, every x must have its dimension (K + 2).
    @discardableResult
    public func addTrials(
        _ xs: [[Double]], origin: TrialOrigin, strategy: String, partition: PartitionSpec? = nil, merges: [MergeSpec?]? = nil,
        at time: Date
    ) throws -> [Int64] {
        guard let dimension = xs.first?.count, dimension > 0 else {
            throw ArchiveError.invalidArgument(field: "xs", reason: "expected at least one non-empty decision vector")
        }
        for (index, x) in xs.enumerated() {
            guard x.count == dimension else {
                throw ArchiveError.invalidArgument(field: "xs[\(index)]", reason: "expected \(dimension) numbers like xs[0], got \(x.count)")
            }
            if let bad = x.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
                throw ArchiveError.invalidArgument(field: "xs[\(index)][\(bad)]", reason: "expected a number in [0, 1], got \(x[bad])")
            }
        }
        if let partition, partition.dimension != dimension {
            throw ArchiveError.invalidArgument(
                field: "partition", reason: "has \(partition.blocks.count) blocks, so x needs \(partition.dimension) numbers; got \(dimension)")
        }
        if let merges, merges.count != xs.count {
            throw ArchiveError.invalidArgument(field: "merges", reason: "expected one merge spec (or nil) per trial: \(xs.count), got \(merges.count)")
        }
        let partitionJSON = try partition.map { try encodeJSON($0) }
        let mergeJSON = try (merges ?? []).map { try $0.map { try encodeJSON($0) } }
        return try transaction { tx in
            let batch = (try Int.fetchOne(tx.db, sql: "SELECT COALESCE(MAX(batch), 0) + 1 FROM trial")) ?? 1
            var ids: [Int64] = []
            for (index, x) in xs.enumerated() {
                let merge = index < mergeJSON.count ? mergeJSON[index] : nil
                try tx.db.execute(
                    sql: #"INSERT INTO trial (strategy, x, origin, batch, state, created, "partition", merge) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)"#,
                    arguments: [strategy, try encodeJSON(x), origin.rawValue, batch, time.timeIntervalSince1970, partitionJSON, merge])
                let id = tx.db.lastInsertedRowID
                ids.append(id)
                var data: [String: JSONValue] = [
                    "trial": .number(Double(id)), "batch": .number(Double(batch)), "origin": .string(origin.rawValue),
                    "strategy": .string(strategy), "x": .array(x.map(JSONValue.number)),
                ]
                if let partition { data["partition"] = try jsonValue(partition) }
                if let spec = merges?[index] { data["merge"] = try jsonValue(spec) }
                try tx.emit("trial.added", data, at: time)
            }
            return ids
        }
    }

    /// Records that `trial` (pending) is sent to `worker` under a lease; returns the attempt number
    /// (1, 2, … per trial). Record it before sending the TASK.
    public func recordDispatch(trial: Int64, worker: String, leaseDeadline: Date, at time: Date) throws -> Int {
        try transaction { tx in
            try dispatch(&tx, trial: trial, worker: worker, leaseDeadline: leaseDeadline, at: time)
        }
    }

    /// Dispatches the oldest pending trial to `worker` in one transaction; nil when none is pending.
    public func dispatchNextPending(worker: String, leaseDeadline: Date, at time: Date) throws -> (trial: TrialRecord, attempt: Int)? {
        try transaction { tx in
            guard let row = try Row.fetchOne(tx.db, sql: "SELECT * FROM trial WHERE state = 'pending' ORDER BY id LIMIT 1") else {
                return nil
            }
            var trial = try trialRecord(row)
            let attempt = try dispatch(&tx, trial: trial.id, worker: worker, leaseDeadline: leaseDeadline, at: time)
            trial.state = .dispatched
            return (trial, attempt)
        }
    }

    private func dispatch(_ tx: inout Transaction, trial: Int64, worker: String, leaseDeadline: Date, at time: Date) throws -> Int {
        guard !worker.isEmpty else { throw ArchiveError.invalidArgument(field: "worker", reason: "a worker needs a name") }
        let state = try trialState(tx.db, trial)
        guard state == .pending else { throw ArchiveError.invalidTransition(trial: trial, state: state, operation: "dispatch it") }
        // Cached statements on the hot path (one dispatch per result): compiled once per connection.
        let number = (try Int.fetchOne(tx.db.cachedStatement(sql: "SELECT COALESCE(MAX(number), 0) + 1 FROM attempt WHERE trial = ?"), arguments: [trial])) ?? 1
        try tx.db.cachedStatement(
            sql: "INSERT INTO attempt (trial, number, worker, dispatched, lease_deadline, state) VALUES (?, ?, ?, ?, ?, 'dispatched')"
        ).execute(arguments: [trial, number, worker, time.timeIntervalSince1970, leaseDeadline.timeIntervalSince1970])
        try tx.db.cachedStatement(sql: "UPDATE trial SET state = 'dispatched' WHERE id = ?").execute(arguments: [trial])
        try tx.emit("trial.dispatched", [
            "trial": .number(Double(trial)), "attempt": .number(Double(number)), "worker": .string(worker),
            "leaseDeadline": .string(EventRecord.format(leaseDeadline)),
        ], at: time)
        return number
    }

    // MARK: results and failures

    /// Records the RESULT of (trial, attempt) sent by `worker`. Idempotent: only the trial's current
    /// attempt, on the worker it was sent to, is accepted, once; anything else changes nothing.
    public func recordResult(
        trial: Int64, attempt: Int, worker: String, metrics: Metrics, durations: Durations,
        items: [ItemRecord]? = nil, at time: Date
    ) throws -> ResultOutcome {
        let metricsJSON = try encodeJSON(metrics)
        return try transaction { tx in
            guard let current = try attemptRow(tx.db, trial: trial, number: attempt) else { return .unknownAttempt }
            if try Bool.fetchOne(tx.db.cachedStatement(sql: "SELECT 1 FROM result WHERE trial = ? AND attempt = ?"), arguments: [trial, attempt]) != nil {
                return .duplicate
            }
            guard current.state == .dispatched, current.worker == worker else { return .stale }

            try tx.db.cachedStatement(
                sql: """
                    INSERT INTO result (trial, attempt, metrics, merge_seconds, evaluate_seconds, received)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [trial, attempt, metricsJSON, durations.merge, durations.evaluate, time.timeIntervalSince1970])
            let resultID = tx.db.lastInsertedRowID
            let insertItem = try tx.db.cachedStatement(
                sql: "INSERT INTO item (result, benchmark, item_id, response, extracted, correct, tokens) VALUES (?, ?, ?, ?, ?, ?, ?)")
            for item in items ?? [] {
                try insertItem.execute(arguments: [resultID, item.benchmark, item.id, item.response, item.extracted, item.correct, item.tokens])
            }
            try tx.db.cachedStatement(sql: "UPDATE attempt SET state = 'completed', finished = ? WHERE trial = ? AND number = ?")
                .execute(arguments: [time.timeIntervalSince1970, trial, attempt])
            try tx.db.cachedStatement(sql: "UPDATE trial SET state = 'completed', finished = ? WHERE id = ?")
                .execute(arguments: [time.timeIntervalSince1970, trial])
            try tx.emit("trial.completed", [
                "trial": .number(Double(trial)), "attempt": .number(Double(attempt)), "worker": .string(worker),
                "metrics": try jsonValue(metrics), "durations": try jsonValue(durations),
            ], at: time)
            return .accepted
        }
    }

    /// Records a RESULT message from `worker`.
    public func recordResult(_ body: ResultBody, worker: String, at time: Date) throws -> ResultOutcome {
        try recordResult(
            trial: body.trial, attempt: body.attempt, worker: worker, metrics: body.metrics, durations: body.durations,
            items: body.items, at: time)
    }

    /// Records the FAILURE of (trial, attempt) sent by `worker`. The trial is requeued, or failed once
    /// its failed/expired attempts span `failureLimit` different workers or number `attemptLimit`. Codes that are not the
    /// trial's fault (`CANCELLED`, `ABANDONED`) end the attempt as abandoned and always requeue.
    public func recordFailure(
        trial: Int64, attempt: Int, worker: String, code: FailureCode, reason: String, logTail: String = "", at time: Date
    ) throws -> FailureOutcome {
        try transaction { tx in
            guard let current = try attemptRow(tx.db, trial: trial, number: attempt) else { return .unknownAttempt }
            guard current.worker == worker else { return .stale }
            switch current.state {
            case .dispatched: break
            case .failed: return .duplicate
            case .abandoned where current.code.map { !FailureCode($0).countsAgainstTrial } ?? false: return .duplicate
            default: return .stale
            }
            let state: AttemptState = code.countsAgainstTrial ? .failed : .abandoned
            try tx.emit("attempt.failed", [
                "trial": .number(Double(trial)), "attempt": .number(Double(attempt)), "worker": .string(worker),
                "code": .string(code.rawValue), "reason": .string(reason), "logTail": .string(logTail),
            ], at: time)
            let trialState = try endAttempt(&tx, current, as: state, code: code.rawValue, reason: reason, at: time)
            return trialState == .failed ? .failed : .requeued
        }
    }

    /// Records a FAILURE message from `worker`.
    public func recordFailure(_ body: FailureBody, worker: String, at time: Date) throws -> FailureOutcome {
        try recordFailure(
            trial: body.trial, attempt: body.attempt, worker: worker, code: body.code, reason: body.reason,
            logTail: body.logTail, at: time)
    }

    // MARK: leases and workers

    /// Ends every dispatched attempt whose lease deadline is before `now` as expired; their trials are
    /// requeued or failed. Returns what happened, oldest trial first.
    @discardableResult
    public func requeueExpired(now: Date) throws -> [EndedAttempt] {
        try transaction { tx in
            let rows = try Row.fetchAll(
                tx.db, sql: "SELECT * FROM attempt WHERE state = 'dispatched' AND lease_deadline < ? ORDER BY trial",
                arguments: [now.timeIntervalSince1970])
            return try rows.map { row in
                try end(&tx, try attemptRecord(row), as: .expired, reason: "lease expired", at: now)
            }
        }
    }

    /// Moves the lease deadline of the dispatched attempts of `worker` (of every worker when nil) to
    /// `until`; returns how many. Use it when a restarted coordinator gives in-flight attempts a fresh
    /// lease, or to extend leases of long tasks. Records no event.
    @discardableResult
    public func renewLeases(worker: String? = nil, until: Date) throws -> Int {
        try transaction { tx in
            if let worker {
                try tx.db.execute(
                    sql: "UPDATE attempt SET lease_deadline = ? WHERE state = 'dispatched' AND worker = ?",
                    arguments: [until.timeIntervalSince1970, worker])
            } else {
                try tx.db.execute(sql: "UPDATE attempt SET lease_deadline = ? WHERE state = 'dispatched'", arguments: [until.timeIntervalSince1970])
            }
            return tx.db.changesCount
        }
    }

    /// Ends one dispatched attempt without a result: `.expired` (counts against the trial) or
    /// `.abandoned` (does not). Returns nil when the attempt is not dispatched.
    @discardableResult
    public func endAttempt(trial: Int64, attempt: Int, as state: AttemptState, reason: String, at time: Date) throws -> EndedAttempt? {
        guard state == .expired || state == .abandoned else {
            throw ArchiveError.invalidArgument(field: "state", reason: "expected expired or abandoned, got \(state.rawValue)")
        }
        return try transaction { tx in
            guard let current = try attemptRow(tx.db, trial: trial, number: attempt), current.state == .dispatched else { return nil }
            return try end(&tx, current, as: state, reason: reason, at: time)
        }
    }

    /// Records that a worker sent READY (with what it told) or was heard from. Returns true when it
    /// joined: first seen, or seen again after it was lost or gone (a `worker.joined` event).
    /// Call it on READY and sparingly afterwards (it is a write), not on every heartbeat.
    @discardableResult
    public func recordWorkerSeen(
        _ name: String, at time: Date, host: String? = nil, pid: Int? = nil, capabilities: Capabilities? = nil
    ) throws -> Bool {
        guard !name.isEmpty else { throw ArchiveError.invalidArgument(field: "worker", reason: "a worker needs a name") }
        let capabilitiesJSON = try capabilities.map { try encodeJSON($0) }
        return try transaction { tx in
            let previous = try String.fetchOne(tx.db, sql: "SELECT state FROM worker WHERE name = ?", arguments: [name])
            try tx.db.execute(
                sql: """
                    INSERT INTO worker (name, host, pid, capabilities, first_seen, last_seen, state)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'alive')
                    ON CONFLICT (name) DO UPDATE SET
                        host = COALESCE(?2, host), pid = COALESCE(?3, pid), capabilities = COALESCE(?4, capabilities),
                        last_seen = ?5, state = 'alive'
                    """,
                arguments: [name, host, pid, capabilitiesJSON, time.timeIntervalSince1970])
            let joined = previous != WorkerState.alive.rawValue
            if joined {
                var data: [String: JSONValue] = ["worker": .string(name)]
                if let host { data["host"] = .string(host) }
                if let pid { data["pid"] = .number(Double(pid)) }
                if let capabilities { data["capabilities"] = try jsonValue(capabilities) }
                try tx.emit("worker.joined", data, at: time)
            }
            return joined
        }
    }

    /// Records that a worker was silent past its lease: it becomes `lost` and its dispatched attempts
    /// expire (they count against their trials).
    @discardableResult
    public func recordWorkerLost(_ name: String, at time: Date) throws -> [EndedAttempt] {
        try departure(of: name, as: .lost, attempts: .expired, reason: "worker lost", at: time)
    }

    /// Records that a worker left with BYE: it becomes `gone` and its dispatched attempts are
    /// abandoned (not the trials' fault).
    @discardableResult
    public func recordWorkerGone(_ name: String, reason: String = "worker left", at time: Date) throws -> [EndedAttempt] {
        try departure(of: name, as: .gone, attempts: .abandoned, reason: reason, at: time)
    }

    private func departure(of name: String, as workerState: WorkerState, attempts state: AttemptState, reason: String, at time: Date) throws -> [EndedAttempt] {
        try transaction { tx in
            try tx.db.execute(
                sql: "UPDATE worker SET state = ?, last_seen = MAX(last_seen, ?) WHERE name = ?",
                arguments: [workerState.rawValue, time.timeIntervalSince1970, name])
            try tx.emit("worker.\(workerState.rawValue)", ["worker": .string(name), "reason": .string(reason)], at: time)
            let rows = try Row.fetchAll(
                tx.db, sql: "SELECT * FROM attempt WHERE state = 'dispatched' AND worker = ? ORDER BY trial", arguments: [name])
            let code = workerState == .gone ? "WORKER_GONE" : nil
            return try rows.map { row in try end(&tx, try attemptRecord(row), as: state, code: code, reason: reason, at: time) }
        }
    }

    // MARK: objectives and events

    /// Sets (or clears, with nil) the normalized objectives of completed trials, in one transaction.
    public func setObjectives(_ objectives: [Int64: [String: Double]?], at time: Date) throws {
        try transaction { tx in
            for (trial, values) in objectives.sorted(by: { $0.key < $1.key }) {
                let json = try values.map { try encodeJSON($0) }
                try tx.db.execute(sql: "UPDATE result SET objectives = ? WHERE trial = ?", arguments: [json, trial])
                guard tx.db.changesCount == 1 else {
                    throw ArchiveError.invalidArgument(field: "objectives[\(trial)]", reason: "trial \(trial) has no result")
                }
            }
            try tx.emit("objectives.updated", ["trials": .array(objectives.keys.sorted().map { .number(Double($0)) })], at: time)
        }
    }

    /// Appends an event of the caller's (progress, front changed, …) in its own transaction.
    @discardableResult
    public func appendEvent(kind: String, data: [String: JSONValue] = [:], at time: Date) throws -> EventRecord {
        guard !kind.isEmpty else { throw ArchiveError.invalidArgument(field: "kind", reason: "an event needs a kind") }
        return try transaction { tx in try tx.emit(kind, data, at: time) }
    }

    // MARK: shared steps

    /// Ends a dispatched attempt without a result and requeues or fails its trial.
    /// `code` defaults to `EXPIRED` for expired attempts and `DROPPED` for abandoned ones.
    private func end(_ tx: inout Transaction, _ attempt: AttemptRecord, as state: AttemptState, code: String? = nil, reason: String, at time: Date) throws -> EndedAttempt {
        let code = code ?? (state == .expired ? "EXPIRED" : "DROPPED")
        try tx.emit("attempt.\(state.rawValue)", [
            "trial": .number(Double(attempt.trial)), "attempt": .number(Double(attempt.number)),
            "worker": .string(attempt.worker), "reason": .string(reason),
        ], at: time)
        let trialState = try endAttempt(&tx, attempt, as: state, code: code, reason: reason, at: time)
        return EndedAttempt(trial: attempt.trial, attempt: attempt.number, worker: attempt.worker, state: state, trialState: trialState)
    }

    /// Sets the attempt's final state, then the trial's: failed when its failed/expired attempts span
    /// `failureLimit` different workers or number `attemptLimit`, pending otherwise. Returns the trial's new state.
    private func endAttempt(_ tx: inout Transaction, _ attempt: AttemptRecord, as state: AttemptState, code: String, reason: String, at time: Date) throws -> TrialState {
        try tx.db.execute(
            sql: "UPDATE attempt SET state = ?, finished = ?, code = ?, reason = ? WHERE trial = ? AND number = ?",
            arguments: [state.rawValue, time.timeIntervalSince1970, code, reason, attempt.trial, attempt.number])
        let counted = try Row.fetchAll(
            tx.db, sql: "SELECT number, worker, code, reason FROM attempt WHERE trial = ? AND state IN ('failed', 'expired') ORDER BY number",
            arguments: [attempt.trial])
        let reasons = try counted.map { row in
            FailureReason(
                attempt: try row.decode(Int.self, forColumn: "number"), worker: try row.decode(String.self, forColumn: "worker"),
                code: try row.decode(String?.self, forColumn: "code") ?? "", reason: try row.decode(String?.self, forColumn: "reason") ?? "")
        }
        let trialRef: JSONValue = .number(Double(attempt.trial))
        if Set(reasons.map(\.worker)).count >= options.failureLimit || reasons.count >= options.attemptLimit {
            try tx.db.execute(
                sql: "UPDATE trial SET state = 'failed', finished = ?, failure_reasons = ? WHERE id = ?",
                arguments: [time.timeIntervalSince1970, try encodeJSON(reasons), attempt.trial])
            try tx.emit("trial.failed", ["trial": trialRef, "reasons": try jsonValue(reasons)], at: time)
            return .failed
        }
        try tx.db.execute(sql: "UPDATE trial SET state = 'pending' WHERE id = ?", arguments: [attempt.trial])
        try tx.emit("trial.requeued", ["trial": trialRef, "attempt": .number(Double(attempt.number))], at: time)
        return .pending
    }

    private func trialState(_ db: Database, _ trial: Int64) throws -> TrialState {
        guard let raw = try String.fetchOne(db.cachedStatement(sql: "SELECT state FROM trial WHERE id = ?"), arguments: [trial]) else {
            throw ArchiveError.unknownTrial(trial)
        }
        guard let state = TrialState(rawValue: raw) else {
            throw ArchiveError.corrupt(path: path, reason: "trial \(trial) has state \"\(raw)\"")
        }
        return state
    }

    private func attemptRow(_ db: Database, trial: Int64, number: Int) throws -> AttemptRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM attempt WHERE trial = ? AND number = ?"), arguments: [trial, number]).map(attemptRecord)
    }
}
