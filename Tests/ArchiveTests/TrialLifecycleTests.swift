import BamboProtocol
import Foundation
import Testing

@testable import Archive

@Suite("Trials and attempts: dispatch, results, failures, leases")
struct TrialLifecycleTests {
    @Test("dispatch takes the oldest pending trial and numbers attempts per trial")
    func dispatch() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 3)
        #expect(try archive.nextPendingTrial()?.id == ids[0])
        let first = try #require(try archive.dispatchNextPending(worker: "w1", leaseDeadline: t(50), at: t(2)))
        #expect(first.trial.id == ids[0] && first.attempt == 1 && first.trial.state == .dispatched)
        #expect(try archive.recordDispatch(trial: ids[1], worker: "w2", leaseDeadline: t(50), at: t(2)) == 1)
        #expect(try archive.nextPendingTrial()?.id == ids[2])
        #expect(throws: ArchiveError.invalidTransition(trial: ids[0], state: .dispatched, operation: "dispatch it")) {
            try archive.recordDispatch(trial: ids[0], worker: "w3", leaseDeadline: t(50), at: t(2))
        }
        #expect(throws: ArchiveError.unknownTrial(999)) { try archive.recordDispatch(trial: 999, worker: "w3", leaseDeadline: t(50), at: t(2)) }
        // Requeued, the trial comes back first and gets attempt 2.
        #expect(try archive.recordFailure(trial: ids[0], attempt: 1, worker: "w1", code: .resource, reason: "OOM", at: t(3)) == .requeued)
        #expect(try archive.nextPendingTrial()?.id == ids[0])
        #expect(try archive.recordDispatch(trial: ids[0], worker: "w2", leaseDeadline: t(50), at: t(4)) == 2)
        #expect(try archive.attempts(ofTrial: ids[0]).map(\.state) == [.failed, .dispatched])
        #expect(try archive.dispatchedAttempts(worker: "w2").map(\.trial) == [ids[0], ids[1]])
    }

    @Test("results are idempotent by (trial, attempt): duplicates and stale attempts never count")
    func resultIdempotency() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 2)
        let trial = ids[0]
        let a1 = try archive.recordDispatch(trial: trial, worker: "w1", leaseDeadline: t(10), at: t(2))
        // Attempt 1's lease passes; attempt 2 goes to w2.
        #expect(try archive.requeueExpired(now: t(11)).map(\.trialState) == [.pending])
        let a2 = try archive.recordDispatch(trial: trial, worker: "w2", leaseDeadline: t(100), at: t(12))
        #expect(a2 == 2)

        // The late RESULT of attempt 1 is stale; a RESULT from the wrong worker is stale; unknown attempts are unknown.
        #expect(try archive.recordResult(trial: trial, attempt: a1, worker: "w1", metrics: metrics(0.1, 1), durations: someDurations, at: t(13)) == .stale)
        #expect(try archive.recordResult(trial: trial, attempt: a2, worker: "w1", metrics: metrics(0.1, 1), durations: someDurations, at: t(13)) == .stale)
        #expect(try archive.recordResult(trial: trial, attempt: 7, worker: "w2", metrics: metrics(0.1, 1), durations: someDurations, at: t(13)) == .unknownAttempt)
        #expect(try archive.recordResult(trial: 999, attempt: 1, worker: "w2", metrics: metrics(0.1, 1), durations: someDurations, at: t(13)) == .unknownAttempt)
        #expect(try archive.trial(trial)?.state == .dispatched)

        // The current attempt is accepted once; its repetition is a duplicate and changes nothing.
        #expect(try archive.recordResult(trial: trial, attempt: a2, worker: "w2", metrics: metrics(0.75, 30), durations: someDurations, at: t(14)) == .accepted)
        #expect(try archive.recordResult(trial: trial, attempt: a2, worker: "w2", metrics: metrics(0.99, 1), durations: someDurations, at: t(15)) == .duplicate)
        #expect(try archive.recordResult(trial: trial, attempt: a1, worker: "w1", metrics: metrics(0.99, 1), durations: someDurations, at: t(16)) == .stale)
        let completed = try archive.completedTrials()
        #expect(completed.count == 1)
        #expect(completed[0].result.metrics == metrics(0.75, 30))
        #expect(completed[0].result.attempt == a2)
        #expect(completed[0].result.received == t(14))
        #expect(try archive.counts() == TrialCounts(pending: 1, completed: 1))
        #expect(try archive.events().filter { $0.kind == "trial.completed" }.count == 1)
        // A FAILURE after the RESULT is stale too, and the trial stays completed.
        #expect(try archive.recordFailure(trial: trial, attempt: a2, worker: "w2", code: .internal, reason: "late", at: t(17)) == .stale)
        #expect(try archive.trial(trial)?.state == .completed)
        #expect(throws: ArchiveError.invalidTransition(trial: trial, state: .completed, operation: "dispatch it")) {
            try archive.recordDispatch(trial: trial, worker: "w3", leaseDeadline: t(50), at: t(18))
        }
        // The ACK outcomes the coordinator sends.
        #expect(ResultOutcome.unknownAttempt.ack == .stale && ResultOutcome.duplicate.ack == .duplicate)
    }

    @Test("failing on 2 different workers fails the trial with both reasons; it is never dispatched again")
    func failureOnTwoWorkers() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 1)
        let trial = ids[0]
        let a1 = try archive.recordDispatch(trial: trial, worker: "w1", leaseDeadline: t(100), at: t(2))
        #expect(try archive.recordFailure(trial: trial, attempt: a1, worker: "w1", code: .evalFailed, reason: "exit 1", at: t(3)) == .requeued)
        #expect(try archive.recordFailure(trial: trial, attempt: a1, worker: "w1", code: .evalFailed, reason: "exit 1", at: t(3)) == .duplicate)
        let a2 = try archive.recordDispatch(trial: trial, worker: "w2", leaseDeadline: t(100), at: t(4))
        #expect(try archive.recordFailure(trial: trial, attempt: a2, worker: "w2", code: .badOutput, reason: "NaN accuracy", at: t(5)) == .failed)
        let failed = try #require(try archive.trial(trial))
        #expect(failed.state == .failed)
        #expect(failed.finished == t(5))
        #expect(failed.failureReasons == [
            FailureReason(attempt: 1, worker: "w1", code: "EVAL_FAILED", reason: "exit 1"),
            FailureReason(attempt: 2, worker: "w2", code: "BAD_OUTPUT", reason: "NaN accuracy"),
        ])
        #expect(try archive.nextPendingTrial() == nil)
        #expect(try archive.dispatchNextPending(worker: "w3", leaseDeadline: t(100), at: t(6)) == nil)
        #expect(try archive.counts() == TrialCounts(failed: 1))
        #expect(try archive.events().last?.kind == "trial.failed")
    }

    @Test("failing twice on the same worker requeues; a failure on a second worker then fails it")
    func twiceOnSameWorker() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 1)
        let trial = ids[0]
        for at in [2.0, 4.0] {
            let attempt = try archive.recordDispatch(trial: trial, worker: "w1", leaseDeadline: t(100), at: t(at))
            #expect(try archive.recordFailure(trial: trial, attempt: attempt, worker: "w1", code: .mergeFailed, reason: "disk", at: t(at + 1)) == .requeued)
        }
        #expect(try archive.trial(trial)?.state == .pending)
        let third = try archive.recordDispatch(trial: trial, worker: "w2", leaseDeadline: t(100), at: t(6))
        #expect(third == 3)
        #expect(try archive.recordFailure(trial: trial, attempt: third, worker: "w2", code: .mergeFailed, reason: "disk", at: t(7)) == .failed)
        #expect(try archive.trial(trial)?.failureReasons.map(\.worker) == ["w1", "w1", "w2"])
    }

    @Test("with one worker, the fifth failed or expired attempt fails the trial (no retrying for ever)")
    func attemptLimitOnOneWorker() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 1)
        let trial = ids[0]
        for (index, at) in stride(from: 2.0, through: 8.0, by: 2).enumerated() {
            let attempt = try archive.recordDispatch(trial: trial, worker: "w1", leaseDeadline: t(100), at: t(at))
            #expect(attempt == index + 1)
            #expect(try archive.recordFailure(trial: trial, attempt: attempt, worker: "w1", code: .evalFailed, reason: "server", at: t(at + 1)) == .requeued)
        }
        let fifth = try archive.recordDispatch(trial: trial, worker: "w1", leaseDeadline: t(100), at: t(10))
        #expect(try archive.recordFailure(trial: trial, attempt: fifth, worker: "w1", code: .evalFailed, reason: "server", at: t(11)) == .failed)
        #expect(try archive.trial(trial)?.state == .failed)
        #expect(try archive.trial(trial)?.failureReasons.count == 5)
        // A limit below failureLimit makes no sense and is refused.
        #expect(throws: ArchiveError.self) { try Archive.open(at: dir.file("other.sqlite"), options: .init(failureLimit: 3, attemptLimit: 2)) }
    }

    @Test("cancelled and abandoned attempts never count against the trial")
    func notTheTrialsFault() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 1)
        let trial = ids[0]
        let a1 = try archive.recordDispatch(trial: trial, worker: "w1", leaseDeadline: t(100), at: t(2))
        #expect(try archive.recordFailure(trial: trial, attempt: a1, worker: "w1", code: .cancelled, reason: "study finished", at: t(3)) == .requeued)
        #expect(try archive.recordFailure(trial: trial, attempt: a1, worker: "w1", code: .cancelled, reason: "again", at: t(3)) == .duplicate)
        let a2 = try archive.recordDispatch(trial: trial, worker: "w2", leaseDeadline: t(100), at: t(4))
        #expect(try archive.recordFailure(trial: trial, attempt: a2, worker: "w2", code: .abandoned, reason: "SIGTERM", at: t(5)) == .requeued)
        _ = try archive.recordDispatch(trial: trial, worker: "w3", leaseDeadline: t(100), at: t(6))
        #expect(try archive.recordWorkerGone("w3", at: t(7)).map(\.state) == [.abandoned])
        #expect(try archive.trial(trial)?.state == .pending)
        #expect(try archive.attempts(ofTrial: trial).map(\.state) == [.abandoned, .abandoned, .abandoned])
        #expect(try archive.attempts(ofTrial: trial).map(\.code) == ["CANCELLED", "ABANDONED", "WORKER_GONE"])
        // FAILURE for an attempt that ended because its worker left is stale, not a duplicate.
        #expect(try archive.recordFailure(trial: trial, attempt: 3, worker: "w3", code: .abandoned, reason: "late", at: t(8)) == .stale)
    }

    @Test("expired leases requeue; renewed leases do not expire; expiry counts toward the failure limit")
    func leaseExpiry() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 2)
        _ = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(10), at: t(2))
        _ = try archive.recordDispatch(trial: ids[1], worker: "w2", leaseDeadline: t(10), at: t(2))
        #expect(try archive.requeueExpired(now: t(9)).isEmpty)
        #expect(try archive.renewLeases(worker: "w2", until: t(60)) == 1)
        #expect(try archive.requeueExpired(now: t(11)) == [EndedAttempt(trial: ids[0], attempt: 1, worker: "w1", state: .expired, trialState: .pending)])
        #expect(try archive.requeueExpired(now: t(11)).isEmpty)  // once only
        #expect(try archive.attempts(ofTrial: ids[0]).first?.code == "EXPIRED")
        #expect(try archive.trial(ids[1])?.state == .dispatched)

        // Expired on w1, then failed on w2: two different workers.
        let a2 = try archive.recordDispatch(trial: ids[0], worker: "w2", leaseDeadline: t(100), at: t(12))
        #expect(try archive.recordFailure(trial: ids[0], attempt: a2, worker: "w2", code: .evalTimeout, reason: "timeout", at: t(13)) == .failed)

        // A restarted coordinator renews every in-flight lease at once.
        #expect(try archive.renewLeases(until: t(500)) == 1)
        #expect(try archive.requeueExpired(now: t(400)).isEmpty)
        #expect(try archive.dispatchedAttempts().map(\.leaseDeadline) == [t(500)])
    }

    @Test("a lost worker's attempts expire; a gone worker's are abandoned; workers rejoin")
    func workers() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 3)
        #expect(try archive.recordWorkerSeen("w1", at: t(1), host: "h", pid: 7))
        #expect(try !archive.recordWorkerSeen("w1", at: t(2)))
        _ = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(100), at: t(2))
        _ = try archive.recordDispatch(trial: ids[1], worker: "w1", leaseDeadline: t(100), at: t(2))
        _ = try archive.recordDispatch(trial: ids[2], worker: "w2", leaseDeadline: t(100), at: t(2))
        let ended = try archive.recordWorkerLost("w1", at: t(5))
        #expect(ended.map(\.trial) == [ids[0], ids[1]])
        #expect(ended.allSatisfy { $0.state == .expired && $0.trialState == .pending })
        #expect(try archive.trial(ids[2])?.state == .dispatched)
        let w1 = try #require(try archive.workers().first)
        #expect(w1.state == .lost && w1.lastSeen == t(5) && w1.firstSeen == t(1) && w1.host == "h" && w1.pid == 7)
        #expect(try archive.recordWorkerSeen("w1", at: t(6)))
        #expect(try archive.workers().first?.state == .alive)
        #expect(try archive.workers().first?.host == "h")
        #expect(try archive.events().filter { $0.kind.hasPrefix("worker.") }.map(\.kind) == ["worker.joined", "worker.lost", "worker.joined"])
        // endAttempt for reconciliation after a reconnection.
        #expect(try archive.endAttempt(trial: ids[2], attempt: 1, as: .abandoned, reason: "not listed in READY", at: t(7))?.trialState == .pending)
        #expect(try archive.endAttempt(trial: ids[2], attempt: 1, as: .abandoned, reason: "again", at: t(7)) == nil)
        #expect(try archive.attempts(ofTrial: ids[2]).map(\.code) == ["DROPPED"])
        #expect(try archive.attempts(ofTrial: ids[0]).map(\.code) == ["EXPIRED"])
        #expect(throws: ArchiveError.self) { try archive.endAttempt(trial: ids[2], attempt: 1, as: .completed, reason: "", at: t(7)) }
    }

    @Test("objectives are set per trial in one transaction; a trial without a result rolls all back")
    func objectives() throws {
        let dir = try TempDir()
        let (archive, ids) = try makeArchive(in: dir, trials: 2)
        let a = try archive.recordDispatch(trial: ids[0], worker: "w1", leaseDeadline: t(100), at: t(2))
        _ = try archive.recordResult(trial: ids[0], attempt: a, worker: "w1", metrics: metrics(0.5, 10), durations: someDurations, at: t(3))
        #expect(try archive.result(ofTrial: ids[0])?.objectives == nil)
        #expect(throws: ArchiveError.invalidArgument(field: "objectives[\(ids[1])]", reason: "trial \(ids[1]) has no result")) {
            try archive.setObjectives([ids[0]: ["r": 1], ids[1]: ["r": 2]], at: t(4))
        }
        #expect(try archive.result(ofTrial: ids[0])?.objectives == nil)
        try archive.setObjectives([ids[0]: ["r": 1, "e": -0.5]], at: t(5))
        #expect(try archive.result(ofTrial: ids[0])?.objectives == ["r": 1, "e": -0.5])
        try archive.setObjectives([ids[0]: nil], at: t(6))
        #expect(try archive.result(ofTrial: ids[0])?.objectives == nil)
    }
}
