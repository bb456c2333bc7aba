import BamboProtocol
import Foundation
import GRDB
import Testing

@testable import Archive

/// A value shared between threads under a lock.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

private struct Boom: Error {}

@Suite("Transactions, crashes, concurrent readers")
struct DurabilityTests {
    @Test("a transaction that throws before its commit leaves the archive and the event file unchanged")
    func throwInsideTransaction() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 2, options: .init(role: .writer))
        _ = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(100), at: t(2))
        let before = try dump(archive.url)
        let logBefore = try Data(contentsOf: try #require(archive.eventLog).url)

        #expect(throws: Boom.self) {
            try archive.transaction { tx in
                try tx.db.execute(sql: "UPDATE trial SET state = 'completed' WHERE id = ?", arguments: [ids[0]])
                try tx.db.execute(sql: "INSERT INTO trial (strategy, x, origin, batch, state, created) VALUES ('s', '[0]', 'manual', 9, 'pending', 0)")
                try tx.emit("trial.added", ["trial": 99], at: t(3))
                throw Boom()
            }
        }
        #expect(try dump(archive.url) == before)
        #expect(try Data(contentsOf: archive.eventLog!.url) == logBefore)
        try archive.close()

        let reopened = try Archive.open(at: archive.url, options: .init(role: .writer))
        #expect(try dump(reopened.url) == before)
        #expect(try Data(contentsOf: reopened.eventLog!.url) == logBefore)
        // The next event reuses no number of the rolled-back one's.
        let next = try reopened.appendEvent(kind: "check", at: t(4))
        #expect(next.seq == (try EventLog.read(from: reopened.eventLog!.url).dropLast().last?.seq ?? 0) + 1)
    }

    @Test("a process killed with an open write transaction leaves the archive unchanged",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3"), "needs the sqlite3 command"))
    func killedWriter() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 3)
        _ = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(100), at: t(2))
        let before = try dump(archive.url)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [archive.url.path]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("""
            BEGIN IMMEDIATE;
            UPDATE trial SET state = 'completed';
            INSERT INTO event (time, kind, data) VALUES (0, 'bogus', '{}');
            DELETE FROM attempt;
            SELECT 'inside';

            """.utf8))
        // Wait until the statements ran inside the open transaction, then kill -9.
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("inside") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        #expect(String(decoding: seen, as: UTF8.self).contains("inside"))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        #expect(try dump(archive.url) == before)
        try archive.close()
        let reopened = try Archive.open(at: archive.url)
        #expect(try reopened.counts() == TrialCounts(pending: 2, dispatched: 1))
        #expect(try reopened.recordResult(trial: ids[0], attempt: 1, worker: "w1", metrics: metrics(0.5, 5), durations: someDurations, at: t(3)) == .accepted)
    }

    @Test("readers (in this and in a second connection pool) see consistent snapshots while a writer works")
    func concurrentReaders() throws {
        let dir = try TempDir()
        let (writer, _) = try makeArchive(in: dir)
        let other = try Archive.open(at: writer.url, options: .init(mode: .existing))
        let rounds = 60
        let done = Locked(false)
        let reads = Locked(0)
        let problems = Locked<[String]>([])
        let group = DispatchGroup()
        let started = DispatchSemaphore(value: 0)

        func reader(_ archive: Archive) {
            group.enter()
            Thread {
                defer { group.leave() }
                var lastCompleted = 0
                var first = true
                while first || !done.withLock({ $0 }) {
                    do {
                        let (completed, results, dispatched, dispatchedAttempts) = try archive.read { db in
                            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trial WHERE state = 'completed'") ?? -1,
                             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM result") ?? -1,
                             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trial WHERE state = 'dispatched'") ?? -1,
                             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attempt WHERE state = 'dispatched'") ?? -1)
                        }
                        if completed != results || dispatched != dispatchedAttempts || completed < lastCompleted {
                            problems.withLock { $0.append("completed \(completed), results \(results), dispatched \(dispatched)/\(dispatchedAttempts)") }
                        }
                        lastCompleted = completed
                        _ = try archive.completedTrials()
                        reads.withLock { $0 += 1 }
                    } catch {
                        problems.withLock { $0.append("reader: \(error)") }
                    }
                    if first {
                        first = false
                        started.signal()
                    }
                }
            }.start()
        }
        reader(writer)
        reader(other)
        started.wait()  // both readers are reading before the writer starts
        started.wait()

        for round in 0..<rounds {
            let now = t(Double(10 + round))
            let id = try writer.addTrials([[0.5, 0.5, 0.5]], origin: .sobol, strategy: "s", at: now)[0]
            let attempt = try writer.recordDispatch(trial: id, worker: "w", leaseDeadline: now + 100, at: now)
            #expect(try writer.recordResult(trial: id, attempt: attempt, worker: "w", metrics: metrics(0.5, 3), durations: someDurations, at: now) == .accepted)
        }
        done.withLock { $0 = true }
        group.wait()

        #expect(problems.withLock { $0 }.isEmpty)
        #expect(reads.withLock { $0 } >= 2)
        #expect(try other.counts() == TrialCounts(completed: rounds))
    }
}

@Suite("The JSONL event log beside the archive")
struct EventLogTests {
    /// Runs a small study and returns the archive (event log on).
    private func busyArchive(_ dir: TempDir, sync: EventLog.SyncPolicy = .kernelBuffered,
                             onEvents: (@Sendable ([EventRecord]) -> Void)? = nil) throws -> Archive {
        let (archive, ids) = try makeArchive(in: dir, trials: 3, options: .init(role: .writer, eventLogSync: sync, onEvents: onEvents))
        try archive.recordWorkerSeen("w1", at: t(2), host: "h", pid: 1)
        let a = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(5), at: t(2.25))
        _ = try archive.recordResult(trial: ids[0], attempt: a, worker: "w1", metrics: metrics(0.5, 12), durations: someDurations, at: t(3.5))
        _ = try archive.recordDispatch(trial: ids[1], worker: "w1", leaseDeadline: t(5), at: t(4))
        try archive.requeueExpired(now: t(6))
        try archive.appendEvent(kind: "front.changed", data: ["points": [[0.5, 12]]], at: t(7))
        return archive
    }

    private func assertSame(_ archive: Archive, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let table = try archive.events()
        let file = try EventLog.read(from: try #require(archive.eventLog).url)
        #expect(file.map(\.seq) == Array(1...Int64(table.count)), sourceLocation: sourceLocation)
        #expect(file.map(\.kind) == table.map(\.kind), sourceLocation: sourceLocation)
        #expect(file.map(\.data) == table.map(\.data), sourceLocation: sourceLocation)
        #expect(file.map { EventRecord.format($0.time) } == table.map { EventRecord.format($0.time) }, sourceLocation: sourceLocation)
    }

    @Test("the file holds exactly the table's events, one JSON line each", arguments: [EventLog.SyncPolicy.kernelBuffered, .fsyncEachWrite])
    func sameEvents(_ sync: EventLog.SyncPolicy) throws {
        let dir = try TempDir()
        let archive = try busyArchive(dir, sync: sync)
        try assertSame(archive)
        let kinds = try archive.events().map(\.kind)
        #expect(kinds == [
            "study.created", "partition.saved", "trial.added", "trial.added", "trial.added", "worker.joined",
            "trial.dispatched", "trial.completed", "trial.dispatched", "attempt.expired", "trial.requeued", "front.changed",
        ])
        #expect(archive.eventLog?.url == dir.file("study.events.jsonl"))
        let text = try String(contentsOf: archive.eventLog!.url, encoding: .utf8)
        #expect(text.split(separator: "\n").count == kinds.count)
        #expect(text.hasPrefix(#"{"data":{"name":"demo"},"kind":"study.created","seq":1,"time":""#))
    }

    @Test("every kind of event the archive records is listed in Protocol/README.md")
    func kindsAreDocumented() throws {
        let dir = try TempDir()
        let archive = try busyArchive(dir)
        let id = try archive.addTrials([[1, 1, 1]], origin: .warmStart, strategy: "s", at: t(10))[0]
        for (attempt, worker) in [(1, "w1"), (2, "w2")] {
            _ = try archive.recordDispatch(trial: id, worker: worker, leaseDeadline: t(20), at: t(11))
            _ = try archive.recordFailure(trial: id, attempt: attempt, worker: worker, code: .evalFailed, reason: "x", at: t(12))
        }
        _ = try archive.recordDispatch(trial: 2, worker: "w3", leaseDeadline: t(20), at: t(13))
        try archive.recordWorkerGone("w3", at: t(14))
        try archive.recordWorkerLost("w1", at: t(14))
        try archive.setObjectives([1: ["r": 1]], at: t(15))
        try archive.setStudyState(.finished, at: t(16))
        let kinds = Set(try archive.events().map(\.kind)).subtracting(["front.changed"])
        #expect(kinds.count == 15)
        let spec = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Protocol/README.md"), encoding: .utf8)
        for kind in kinds.sorted() {
            #expect(spec.contains("`\(kind)`"), "event kind \(kind) is not documented in Protocol/README.md §9")
        }
    }

    @Test("onEvents receives each committed transaction's events in order")
    func observer() throws {
        let dir = try TempDir()
        let received = Locked<[EventRecord]>([])
        let archive = try busyArchive(dir, onEvents: { events in received.withLock { $0 += events } })
        #expect(received.withLock { $0 } == (try archive.events()).map { event in
            // The table stores the exact time; the observer got the same Date.
            event
        })
    }

    @Test("events written through a shared open reach the writer's file at its next append")
    func sharedWritesCatchUp() throws {
        let dir = try TempDir()
        let writer = try busyArchive(dir)
        let shared = try Archive.open(at: writer.url)
        try shared.appendEvent(kind: "from.shared", at: t(8))
        try writer.appendEvent(kind: "from.writer", at: t(9))
        try assertSame(writer)
        #expect(try EventLog.read(from: writer.eventLog!.url).suffix(2).map(\.kind) == ["from.shared", "from.writer"])
    }

    @Test("at open the file is repaired: torn line, missing lines, lines the table lacks, garbage")
    func repairAtOpen() throws {
        let dir = try TempDir()
        let archive = try busyArchive(dir)
        let url = try #require(archive.eventLog).url
        let good = try Data(contentsOf: url)
        let lines = good.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        try archive.close()

        func reopenAndCheck(_ contents: Data) throws {
            try contents.write(to: url)
            let reopened = try Archive.open(at: dir.file("study.sqlite"), options: .init(role: .writer))
            #expect(try Data(contentsOf: url) == good)
            try assertSame(reopened)
            try reopened.close()
        }
        try reopenAndCheck(good + Data(#"{"data":{},"kind":"x","se"#.utf8))           // torn last line
        try reopenAndCheck(Data(lines.prefix(3).joined(separator: [UInt8(ascii: "\n")])) + Data("\n".utf8))  // lost tail
        try reopenAndCheck(Data())                                                         // lost file contents
        let extra = try EventRecord(seq: Int64(lines.count), time: t(99), kind: "ghost").jsonLine()
        try reopenAndCheck(good + extra + Data("\n".utf8))                                  // an event the table lacks
        try reopenAndCheck(Data(lines.prefix(2).joined(separator: [UInt8(ascii: "\n")])) + Data("\nnot json\n".utf8) + good)  // garbage
        try FileManager.default.removeItem(at: url)
        try reopenAndCheck(good.prefix(0))                                                // file deleted
    }
}

/// The writer's WAL is checkpointed by its own thread, not inside its commits.
@Suite struct WALCheckpointTests {
    /// The trials a copy of the database file alone holds (its WAL left behind); 0 while even the
    /// schema is only in the WAL.
    func trialsInMainFile(_ url: URL, copyTo copy: URL) throws -> Int {
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: url, to: copy)
        let queue = try DatabaseQueue(path: copy.path)
        defer { try? queue.close() }
        return try queue.read { db in
            guard try db.tableExists("trial") else { return 0 }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trial") ?? 0
        }
    }

    @Test("Commits reach the database file within seconds without any commit checkpointing (autocheckpoint off)")
    func backgroundCheckpoint() throws {
        let dir = try TempDir()
        let (archive, _) = try makeArchive(in: dir, trials: 5, options: .init(role: .writer))
        let url = dir.file("study.sqlite")
        let autocheckpoint = try archive.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
        #expect(autocheckpoint == 0)
        // Far below SQLite's 1,000-page threshold, so only the background thread can move these pages.
        _ = try archive.addTrials([[0.5, 0.5, 0.5]], origin: .sobol, strategy: "hybrid", at: t(2))
        var seen = 0
        let deadline = Date().addingTimeInterval(20)
        while seen < 6, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            seen = try trialsInMainFile(url, copyTo: dir.file("copy.sqlite"))
        }
        #expect(seen == 6, "the database file alone holds \(seen) of 6 trials")
        try archive.close()
    }

    @Test("A reader's archive runs no checkpointer and keeps SQLite's automatic checkpoints")
    func readersKeepDefaults() throws {
        let dir = try TempDir()
        let (archive, _) = try makeArchive(in: dir, trials: 1)
        let autocheckpoint = try archive.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
        #expect(autocheckpoint == 1000)
        try archive.close()
    }
}
