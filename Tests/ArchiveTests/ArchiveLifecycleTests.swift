import BamboProtocol
import Foundation
import GRDB
import Testing

@testable import Archive

@Suite("Opening, migrating, reopening and refusing files")
struct ArchiveLifecycleTests {
    @Test("a new archive gets every migration, WAL mode and the BAMBO application id")
    func migrationsFromEmpty() throws {
        let dir = try TempDir()
        let url = dir.file("new.sqlite")
        let archive = try Archive.open(at: url)
        let (applied, journal, applicationID, tables) = try archive.read { db in
            (try Schema.migrator.appliedIdentifiers(db), try String.fetchOne(db, sql: "PRAGMA journal_mode"),
             try Int32.fetchOne(db, sql: "PRAGMA application_id"),
             try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name"))
        }
        #expect(applied == Set(Archive.schemaVersions))
        #expect(Archive.schemaVersions == ["v1", "v2"])
        #expect(journal == "wal")
        #expect(applicationID == 0x4241_4D42)
        #expect(tables == ["attempt", "event", "item", "partition", "result", "study", "trial", "worker"])
        #expect(try archive.loadStudy() == nil)
        #expect(try archive.counts() == TrialCounts())
        #expect(try archive.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)  // NORMAL
        try archive.close()

        let full = try Archive.open(at: dir.file("full.sqlite"), options: .init(durability: .full))
        #expect(try full.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)  // FULL

        // An existing empty file (e.g. from mktemp) becomes an archive too.
        let empty = dir.file("empty.sqlite")
        #expect(FileManager.default.createFile(atPath: empty.path, contents: nil))
        let second = try Archive.open(at: empty, options: .init(mode: .existing))
        #expect(try second.loadStudy() == nil)
    }

    @Test("reopening preserves the study, partition, trials, attempts, results, items, workers and events")
    func reopenPreservesEverything() throws {
        let dir = try TempDir()
        let url = dir.file("study.sqlite")
        var (archive, ids) = try makeArchive(in: dir, trials: 4)
        let capabilities = Capabilities(slots: 2, gpus: ["0"], backends: ["vllm"], evaluators: ["exec"], version: "0.1.0")
        try archive.recordWorkerSeen("w1", at: t(2), host: "h1", pid: 11, capabilities: capabilities)
        try archive.recordWorkerSeen("w2", at: t(2), host: "h2", pid: 22)
        let a1 = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(100), at: t(3))
        let items = [
            ItemRecord(benchmark: "mult", id: "q1", response: "<think>…</think> 42", extracted: "42", correct: true, tokens: 47),
            ItemRecord(benchmark: "mult", id: "q2", response: "no idea", extracted: nil, correct: false, tokens: 6),
        ]
        #expect(try archive.recordResult(trial: ids[0], attempt: a1, worker: "w1", metrics: metrics(0.5, 26.5), durations: someDurations, items: items, at: t(4)) == .accepted)
        let a2 = try archive.recordDispatch(trial: ids[1], worker: "w2", leaseDeadline: t(100), at: t(5))
        #expect(try archive.recordFailure(trial: ids[1], attempt: a2, worker: "w2", code: .evalFailed, reason: "exit 2", logTail: "boom", at: t(6)) == .requeued)
        _ = try archive.recordDispatch(trial: ids[2], worker: "w1", leaseDeadline: t(100), at: t(7))
        try archive.setObjectives([ids[0]: ["reasoning": 0.25, "efficiency": 0.75]], at: t(8))
        try archive.appendEvent(kind: "front.changed", data: ["size": 1], at: t(9))

        struct Snapshot: Equatable {
            var study: StudyRecord?
            var partition: DemoPartition?
            var trials: [TrialRecord]
            var attempts: [[AttemptRecord]]
            var completed: [CompletedTrial]
            var items: [ItemRecord]
            var counts: TrialCounts
            var workers: [WorkerRecord]
            var dispatched: [AttemptRecord]
            var events: [EventRecord]
        }
        func snapshot(_ archive: Archive) throws -> Snapshot {
            Snapshot(
                study: try archive.loadStudy(), partition: try archive.loadPartition(as: DemoPartition.self),
                trials: try archive.trials(), attempts: try ids.map { try archive.attempts(ofTrial: $0) },
                completed: try archive.completedTrials(), items: try archive.items(ofTrial: ids[0]), counts: try archive.counts(),
                workers: try archive.workers(), dispatched: try archive.dispatchedAttempts(), events: try archive.events())
        }
        let before = try snapshot(archive)
        let dumpBefore = try dump(url)
        try archive.close()

        archive = try Archive.open(at: url, options: .init(mode: .existing))
        #expect(try snapshot(archive) == before)
        #expect(before.events.count == 16)
        #expect(before.trials.map(\.state) == [.completed, .pending, .dispatched, .pending])
        #expect(try dump(url) == dumpBefore)
        #expect(try archive.items(ofTrial: ids[0]) == items)
        #expect(try archive.counts() == TrialCounts(pending: 2, dispatched: 1, completed: 1))
        #expect(try archive.result(ofTrial: ids[0])?.objectives == ["reasoning": 0.25, "efficiency": 0.75])
        #expect(try archive.loadStudy()?.decodeConfig(as: DemoConfig.self) == DemoConfig(study: "demo", blocks: 1, objectives: ["reasoning", "efficiency"]))
        #expect(try archive.workers().first?.capabilities == capabilities)
        // The numbering carries on where it stood.
        #expect(try archive.addTrials([[0.5, 0.5, 0.5]], origin: .qehvi, strategy: "hybrid", at: t(10)) == [ids[3] + 1])
        #expect(try archive.trial(ids[3] + 1)?.batch == 2)
    }

    @Test("decision vectors come back bit for bit")
    func exactVectors() throws {
        let dir = try TempDir()
        let (archive, _) = try makeArchive(in: dir)
        let x = [0.1 + 0.2, 1.0 / 3.0, Double.leastNonzeroMagnitude, 0.9999999999999999, 0, 1, 0.123456789012345678]
        let id = try archive.addTrials([x], origin: .manual, strategy: "s", at: t(1))[0]
        #expect(try archive.trial(id)?.x == x)
    }

    @Test("a text file is refused with an error naming it, and left alone")
    func textFile() throws {
        let dir = try TempDir()
        let url = dir.file("notes.txt")
        try Data("study: demo\nthis is YAML, not an archive\n".utf8).write(to: url)
        let error = try #require(throws: ArchiveError.self) { try Archive.open(at: url) }
        #expect(error == .notAnArchive(path: url.path, reason: "not an SQLite database"))
        #expect(error.description.hasPrefix(url.path + ": not a BAMBO archive"))
        #expect(try String(contentsOf: url, encoding: .utf8) == "study: demo\nthis is YAML, not an archive\n")
        #expect(!FileManager.default.fileExists(atPath: url.path + "-wal"))
        #expect(!FileManager.default.fileExists(atPath: EventLog.url(besideArchive: url).path))
    }

    @Test("a damaged SQLite file and a directory are refused with an error naming them")
    func damagedFile() throws {
        let dir = try TempDir()
        let damaged = dir.file("damaged.sqlite")
        try (Data("SQLite format 3\0".utf8) + Data(repeating: 0xAB, count: 8192)).write(to: damaged)  // page size 0xABAB: invalid
        let error = try #require(throws: ArchiveError.self) { try Archive.open(at: damaged) }
        guard case .notAnArchive(let path, _) = error else {
            Issue.record("expected notAnArchive, got \(error)")
            return
        }
        #expect(path == damaged.path)
        #expect(throws: ArchiveError.notAnArchive(path: dir.url.path, reason: "not an SQLite database")) { try Archive.open(at: dir.url) }
    }

    @Test("another application's SQLite database is refused and not modified")
    func foreignDatabase() throws {
        let dir = try TempDir()
        let url = dir.file("other.db")
        let queue = try DatabaseQueue(path: url.path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'Ada')")
        }
        try queue.close()
        let bytes = try Data(contentsOf: url)
        let error = try #require(throws: ArchiveError.self) { try Archive.open(at: url) }
        guard case .notAnArchive(let path, let reason) = error else {
            Issue.record("expected notAnArchive, got \(error)")
            return
        }
        #expect(path == url.path)
        #expect(reason.contains("another application") && reason.contains("customers"))
        #expect(try Data(contentsOf: url) == bytes)
    }

    @Test("an archive written by a newer BAMBO is refused, naming the unknown migrations")
    func newerSchema() throws {
        let dir = try TempDir()
        let url = dir.file("study.sqlite")
        try Archive.open(at: url).close()
        let queue = try DatabaseQueue(path: url.path)
        try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v3'), ('v99')") }
        try queue.close()
        #expect(throws: ArchiveError.newerSchema(path: url.path, unknownMigrations: ["v3", "v99"])) { try Archive.open(at: url) }
    }

    @Test("one writer at a time, readers alongside; closing releases the writer's lock")
    func oneWriter() throws {
        let dir = try TempDir()
        let url = dir.file("study.sqlite")
        let first = try Archive.open(at: url, options: .init(role: .writer))
        let error = try #require(throws: ArchiveError.self) { try Archive.open(at: url, options: .init(role: .writer)) }
        #expect(error == .inUse(path: url.path, lockFile: dir.file("study.events.jsonl").path))
        #expect(error.description.contains("already open for writing"))
        let reader = try Archive.open(at: url, options: .init(mode: .existing))
        #expect(reader.eventLog == nil)
        try first.createStudy(name: "demo", config: ["k": 1], at: t(0))
        #expect(try reader.loadStudy()?.name == "demo")
        try first.close()
        let second = try Archive.open(at: url, options: .init(role: .writer))
        #expect(try second.loadStudy()?.name == "demo")
    }

    @Test("a missing file is an error when the archive must exist, and is not created")
    func missing() throws {
        let dir = try TempDir()
        let url = dir.file("nope.sqlite")
        #expect(throws: ArchiveError.missing(path: url.path)) { try Archive.open(at: url, options: .init(mode: .existing)) }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    @Test("one study per archive; one partition per study")
    func studyAndPartition() throws {
        let dir = try TempDir()
        let (archive, _) = try makeArchive(in: dir)
        #expect(throws: ArchiveError.studyExists(path: archive.url.path, name: "demo")) {
            try archive.createStudy(name: "other", config: ["k": 1], at: t(1))
        }
        try archive.savePartition(DemoPartition(blocks: [[0, 5]], layers: 6), at: t(2))  // same: fine
        #expect(throws: ArchiveError.partitionDiffers(path: archive.url.path)) {
            try archive.savePartition(DemoPartition(blocks: [[0, 2], [3, 5]], layers: 6), at: t(2))
        }
        #expect(try archive.loadPartition(as: DemoPartition.self) == DemoPartition(blocks: [[0, 5]], layers: 6))
        try archive.setStudyState(.finished, at: t(3))
        #expect(try archive.loadStudy()?.state == .finished)
        #expect(try archive.events().map(\.kind) == ["study.created", "partition.saved", "study.state"])
    }

    @Test("bad trial vectors are refused naming the element", arguments: [
        ([] as [[Double]], "xs"), ([[]], "xs"), ([[0.5, 0.5], [0.5]], "xs[1]"), ([[0.5, .nan]], "xs[0][1]"),
        ([[0.5, 1.5]], "xs[0][1]"), ([[-0.1, 0.5]], "xs[0][0]"),
    ])
    func badVectors(_ xs: [[Double]], _ field: String) throws {
        let dir = try TempDir()
        let (archive, _) = try makeArchive(in: dir)
        let error = try #require(throws: ArchiveError.self) { try archive.addTrials(xs, origin: .sobol, strategy: "s", at: t(1)) }
        guard case .invalidArgument(let reported, _) = error else {
            Issue.record("expected invalidArgument, got \(error)")
            return
        }
        #expect(reported == field)
        #expect(try archive.counts().total == 0)
    }
}
