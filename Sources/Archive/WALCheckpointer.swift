import Foundation
import GRDB

/// Moves the WAL's committed pages into the database file on a thread of its own, so the writer's
/// commits never wait for a checkpoint's fsyncs (SQLite's automatic checkpoint runs inside the commit
/// that crosses 1,000 WAL pages and, with two fsyncs, held the coordinator's loop for 4–27 ms about twice
/// a second at 100 results/s). The writer's connection has `wal_autocheckpoint = 0`; this thread runs a
/// PASSIVE checkpoint (it never blocks the writer or readers) from its own connection every `interval`
/// seconds. Durability is unchanged: a commit is as durable as its WAL frames (`synchronous` decides).
final class WALCheckpointer: @unchecked Sendable {
    private let path: String
    private let interval: Double
    private let condition = NSCondition()
    private var stopping = false
    private var thread: Thread?
    private var failure: String?

    /// The last checkpoint failure, if any (the next success clears it).
    var lastError: String? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    init(path: String, interval: Double = 1) {
        self.path = path
        self.interval = interval
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "bambo-wal-checkpoint"
        self.thread = thread
        thread.start()
    }

    /// Stops the thread (waits for a checkpoint in progress to end). Idempotent.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.005) }
    }

    private func run() {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let queue = try? DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue?.close() }
        while true {
            condition.lock()
            if !stopping { _ = condition.wait(until: Date().addingTimeInterval(interval)) }
            let done = stopping
            condition.unlock()
            if done { return }
            var outcome: String?
            if let queue {
                do {
                    try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") }
                } catch {
                    outcome = "\(error)"
                }
            } else {
                outcome = "cannot open \(path) for checkpoints"
            }
            condition.lock()
            failure = outcome
            condition.unlock()
        }
    }
}
