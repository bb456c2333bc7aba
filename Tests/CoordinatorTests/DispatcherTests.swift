import Archive
import BamboProtocol
import Foundation
import Testing

@testable import Coordinator

/// Runs the dispatcher against a real archive (SQLite in a temporary directory), executing its
/// actions the way the service does, but with messages captured instead of sent and time given.
final class Driver {
    var core: Dispatcher
    let archive: Archive
    let directory: URL
    var sent: [(worker: String, message: Message)] = []
    var actions: [Dispatcher.Action] = []
    var proposals: [(count: Int, pending: [Int64], warmStart: Bool)] = []
    var proposedStrategies: [StudyStrategy] = []
    /// Hold proposals back (as the service's background threads do) until `finishProposals`.
    var deferProposals = false
    /// Proposals asked for and not stored yet (with `deferProposals`).
    var inFlight: [(strategy: StudyStrategy, count: Int, warmStart: Bool)] = []
    var finished = false
    var halted = false
    var now = 0.0
    let dimension = 3

    init(_ settings: Dispatcher.Settings, archiveDirectory: URL? = nil) throws {
        directory = try archiveDirectory ?? {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("dispatcher-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            return url
        }()
        archive = try Archive.open(at: directory.appendingPathComponent("study.sqlite"))
        if try archive.loadStudy() == nil { try archive.createStudy(name: settings.study, config: ["test": 1], at: Date(timeIntervalSince1970: 0)) }
        core = Dispatcher(settings: settings)
    }

    deinit {
        try? archive.close()
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    var date: Date { Date(timeIntervalSince1970: 1_000_000 + now) }

    /// Starts from what the archive holds.
    func start() throws {
        let counts = try archive.counts()
        let snapshot = Dispatcher.Snapshot(
            total: counts.total, pending: try archive.trials(in: .pending).map(\.id),
            dispatched: try archive.dispatchedAttempts().map { .init(trial: $0.trial, attempt: $0.number, worker: $0.worker) },
            finished: counts.completed + counts.failed,
            created: try archive.trials().reduce(into: [:]) { $0[StudyStrategy(rawValue: $1.strategy)!, default: 0] += 1 })
        try feed(.started(snapshot, now: now))
    }

    func feed(_ event: Dispatcher.Event) throws { try run(core.event(event)) }

    /// Executes actions and the core's reactions to them, in order.
    private func run(_ first: [Dispatcher.Action]) throws {
        var queue = first
        var index = 0
        while index < queue.count {
            let action = queue[index]
            index += 1
            actions.append(action)
            queue += try execute(action)
        }
    }

    func receive(_ message: Message, from worker: String) throws { try feed(.received(message, from: worker, now: now)) }

    func ready(_ worker: String, slots: Int = 1, pid: Int = 1, active: [AttemptRef]? = nil, evaluators: [String] = ["exec"]) throws {
        try receive(.ready(ReadyBody(
            worker: worker, pid: pid, host: "host-\(worker)",
            capabilities: Capabilities(slots: slots, gpus: [], backends: [], evaluators: evaluators, version: "0.1.0"),
            activeTrials: active)), from: worker)
    }

    func result(_ worker: String, _ ref: AttemptRef, accuracy: Double = 0.5) throws {
        try receive(.result(ResultBody(
            trial: ref.trial, attempt: ref.attempt,
            metrics: Metrics(benchmarks: ["b": .init(accuracy: accuracy, tokens: 10)]), durations: .init(merge: 0, evaluate: 0))), from: worker)
    }

    private func execute(_ action: Dispatcher.Action) throws -> [Dispatcher.Action] {
        switch action {
        case .send(let message, let worker):
            sent.append((worker, message))
            return []
        case .dispatch(let trial, let worker, let leaseDeadline):
            let attempt = try archive.recordDispatch(trial: trial, worker: worker, leaseDeadline: Date(timeIntervalSince1970: 1_000_000 + leaseDeadline), at: date)
            let follow = core.event(.attemptDispatched(trial: trial, attempt: attempt, worker: worker))
            let x = try archive.trial(trial)!.x
            sent.append((worker, .task(TaskBody(
                trial: trial, attempt: attempt, weights: x, partition: PartitionSpec(blocks: [[0, 0]], layers: 1),
                models: [ModelRef(name: "a", path: "/a"), ModelRef(name: "b", path: "/b")], merge: MergeSpec(method: "linear", dtype: .bfloat16),
                evaluator: ["kind": "exec"]))))
            return follow
        case .propose(let strategy, let count, let pending, let warmStart):
            proposals.append((count, pending, warmStart))
            proposedStrategies.append(strategy)
            if deferProposals {
                inFlight.append((strategy, count, warmStart))
                return []
            }
            return try store(strategy: strategy, count: count, warmStart: warmStart)
        case .recordResult(let body, let worker):
            let outcome = try archive.recordResult(body, worker: worker, at: date)
            sent.append((worker, .ack(AckBody(trial: body.trial, attempt: body.attempt, outcome: outcome.ack))))
            guard outcome == .accepted else { return [] }
            return core.event(.trialsChanged([.init(trial: body.trial, attempt: body.attempt, state: .completed)], now: now))
        case .recordFailure(let body, let worker):
            let outcome = try archive.recordFailure(body, worker: worker, at: date)
            sent.append((worker, .ack(AckBody(trial: body.trial, attempt: body.attempt, outcome: outcome.ack))))
            switch outcome {
            case .requeued: return core.event(.trialsChanged([.init(trial: body.trial, attempt: body.attempt, state: .pending)], now: now))
            case .failed: return core.event(.trialsChanged([.init(trial: body.trial, attempt: body.attempt, state: .failed)], now: now))
            default: return []
            }
        case .recordProgress, .recordWorkerJoined, .logProblem:
            return []
        case .recordWorkerLost(let worker):
            return core.event(.trialsChanged(try archive.recordWorkerLost(worker, at: date).map(change), now: now))
        case .recordWorkerGone(let worker, let reason):
            return core.event(.trialsChanged(try archive.recordWorkerGone(worker, reason: reason, at: date).map(change), now: now))
        case .expireAttempt(let trial, let attempt, let reason):
            guard let ended = try archive.endAttempt(trial: trial, attempt: attempt, as: .expired, reason: reason, at: date) else { return [] }
            return core.event(.trialsChanged([change(ended)], now: now))
        case .renewLeases(let until):
            try archive.renewLeases(until: Date(timeIntervalSince1970: 1_000_000 + until))
            return []
        case .finish:
            finished = true
            return []
        case .halt:
            halted = true
            return []
        }
    }

    private func store(strategy: StudyStrategy, count: Int, warmStart: Bool) throws -> [Dispatcher.Action] {
        let points = (0..<count).map { i in Array(repeating: Double(i % 10) / 10, count: dimension) }
        let ids = try archive.addTrials(points, origin: warmStart ? .warmStart : .sobol, strategy: strategy.rawValue, at: date)
        return core.event(.trialsAdded(ids, strategy: strategy, now: now))
    }

    /// Stores the proposals in flight (oldest first, or only `strategy`'s) and feeds them back.
    func finishProposals(of strategy: StudyStrategy? = nil) throws {
        let finishing = inFlight.filter { strategy == nil || $0.strategy == strategy }
        inFlight.removeAll { strategy == nil || $0.strategy == strategy }
        for proposal in finishing {
            try run(try store(strategy: proposal.strategy, count: proposal.count, warmStart: proposal.warmStart))
        }
    }

    private func change(_ ended: EndedAttempt) -> Dispatcher.TrialChange {
        .init(trial: ended.trial, attempt: ended.attempt, state: ended.trialState)
    }

    /// TASKs sent to `worker` so far, as attempts.
    func tasks(to worker: String) -> [AttemptRef] {
        sent.compactMap { entry in
            guard entry.worker == worker, case .task(let body) = entry.message else { return nil }
            return AttemptRef(trial: body.trial, attempt: body.attempt)
        }
    }

    func errors(to worker: String) -> [ErrorBody] {
        sent.compactMap { entry in
            guard entry.worker == worker, case .error(let body) = entry.message else { return nil }
            return body
        }
    }

    func count(_ type: MessageType, to worker: String) -> Int { sent.filter { $0.worker == worker && $0.message.type == type }.count }
}

private func settings(initial: Int = 4, batch: Int = 2, iterations: Int = 2) -> Dispatcher.Settings {
    Dispatcher.Settings(
        study: "demo", heartbeatInterval: 1, leaseBeats: 3, initial: initial, batch: batch, budget: initial + iterations * batch,
        evaluatorKind: "exec", resumeGrace: 2)
}

@Suite struct DispatcherTests {
    @Test func aWorkerGetsWelcomeTheWarmStartAndNoMoreThanItsSlots() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        #expect(driver.proposals.isEmpty)  // nobody to evaluate yet
        try driver.ready("w1", slots: 2)
        #expect(driver.sent.first?.message == .welcome(WelcomeBody(study: "demo", heartbeatInterval: 1, leaseBeats: 3)))
        #expect(driver.proposals.count == 1)
        #expect(driver.proposals[0].count == 4 && driver.proposals[0].warmStart)
        #expect(driver.tasks(to: "w1") == [AttemptRef(trial: 1, attempt: 1), AttemptRef(trial: 2, attempt: 1)])
        #expect(driver.core.pendingTrials == [3, 4])
        try driver.ready("w2", slots: 1)
        #expect(driver.tasks(to: "w2") == [AttemptRef(trial: 3, attempt: 1)])
        // A result frees one slot: the next pending trial goes there.
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        #expect(driver.sent.contains { $0.worker == "w1" && $0.message == .ack(AckBody(trial: 1, attempt: 1, outcome: .accepted)) })
        #expect(driver.tasks(to: "w1").last == AttemptRef(trial: 4, attempt: 1))
        #expect(driver.core.trials(on: "w1") == [2, 4])
    }

    @Test func proposesABatchWithTheOutstandingTrialsAsPendingAndNeverBeyondTheBudget() throws {
        let driver = try Driver(settings(initial: 2, batch: 3, iterations: 2))  // budget 8
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 2)
        try driver.ready("w2", slots: 1)
        // warm start 2 → w1 takes both; w2 free, nothing pending → batch of 3 with pending [1, 2].
        #expect(driver.proposals.map(\.count) == [2, 3])
        #expect(driver.proposals[1].pending == [1, 2] && !driver.proposals[1].warmStart)
        #expect(driver.tasks(to: "w2") == [AttemptRef(trial: 3, attempt: 1)])
        // Finish everything as it comes; the total stays at the budget.
        var guardCount = 0
        while !driver.finished && guardCount < 100 {
            guardCount += 1
            for worker in ["w1", "w2"] {
                for trial in driver.core.trials(on: worker).sorted() {
                    let attempt = driver.tasks(to: worker).last { $0.trial == trial }!
                    try driver.result(worker, attempt)
                }
            }
        }
        #expect(driver.finished)
        #expect(driver.proposals.map(\.count) == [2, 3, 3])
        #expect(try driver.archive.counts() == TrialCounts(completed: 8))
        #expect(driver.count(.shutdown, to: "w1") == 1 && driver.count(.shutdown, to: "w2") == 1)
    }

    @Test func aSilentWorkerIsLostAndItsTrialGoesElsewhereFirst() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        try driver.ready("w2", slots: 1)
        #expect(driver.tasks(to: "w1") == [AttemptRef(trial: 1, attempt: 1)])
        #expect(driver.tasks(to: "w2") == [AttemptRef(trial: 2, attempt: 1)])
        // w2 keeps beating, w1 is silent. Heartbeats go out after each interval of silence.
        for step in 1...7 {
            driver.now = Double(step) * 0.5
            try driver.receive(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: [AttemptRef(trial: 2, attempt: 1)])), from: "w2")
            try driver.feed(.tick(now: driver.now))
        }
        #expect(driver.count(.heartbeat, to: "w1") >= 2)
        #expect(driver.actions.contains(.recordWorkerLost("w1")))
        #expect(driver.core.workerNames == ["w2"])
        #expect(try driver.archive.attempts(ofTrial: 1).map(\.state) == [.expired])
        // Requeued trial 1 goes before 3 and 4 to the next free slot.
        #expect(driver.core.pendingTrials == [1, 3, 4])
        try driver.result("w2", AttemptRef(trial: 2, attempt: 1))
        #expect(driver.tasks(to: "w2").last == AttemptRef(trial: 1, attempt: 2))
        // Anything but READY from the lost worker: UNKNOWN_WORKER.
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        #expect(driver.errors(to: "w1").map(\.code) == [.unknownWorker])
    }

    @Test func byeAbandonsAttemptsAndLaterMessagesAreOutOfOrder() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 2)
        try driver.receive(.bye(ByeBody(reason: "SIGTERM")), from: "w1")
        #expect(try driver.archive.attempts(ofTrial: 1).map(\.state) == [.abandoned])
        #expect(driver.core.pendingTrials.prefix(2).sorted() == [1, 2])
        try driver.receive(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: [])), from: "w1")
        #expect(driver.errors(to: "w1").map(\.code) == [.outOfOrder])
        try driver.ready("w1", slots: 1, pid: 2)
        #expect(driver.tasks(to: "w1").last?.attempt == 2)
    }

    @Test func readyIsCheckedForNameAndEvaluator() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.receive(.ready(ReadyBody(
            worker: "other", pid: 1, host: "h", capabilities: Capabilities(slots: 1, gpus: [], backends: [], evaluators: ["exec"], version: "1"))), from: "w1")
        try driver.ready("w2", evaluators: ["harness"])
        #expect(driver.errors(to: "w1").map(\.code) == [.outOfOrder])
        #expect(driver.errors(to: "w2").map(\.code) == [.unsupported])
        #expect(driver.core.workerNames.isEmpty)
        #expect(driver.tasks(to: "w1").isEmpty && driver.tasks(to: "w2").isEmpty)
        // A message before READY: UNKNOWN_WORKER.
        try driver.receive(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: [])), from: "w3")
        #expect(driver.errors(to: "w3").map(\.code) == [.unknownWorker])
    }

    @Test func staleProgressAndResultsAreAnsweredWithoutCounting() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        try driver.receive(.progress(ProgressBody(trial: 1, attempt: 9, phase: .merge, done: 1, total: 2)), from: "w1")
        #expect(driver.errors(to: "w1").map(\.code) == [.staleAttempt])
        try driver.receive(.progress(ProgressBody(trial: 1, attempt: 1, phase: .merge, done: 1, total: 2)), from: "w1")
        #expect(driver.actions.contains(.recordProgress(ProgressBody(trial: 1, attempt: 1, phase: .merge, done: 1, total: 2), worker: "w1")))
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        let outcomes: [AckOutcome] = driver.sent.compactMap { entry -> AckOutcome? in
            guard case .ack(let body) = entry.message else { return nil }
            return body.outcome
        }
        #expect(outcomes == [.accepted, .duplicate])
        #expect(driver.core.finishedCount == 1)
        #expect(driver.core.trials(on: "w1") == [2])
    }

    @Test func failuresRequeueThenFailOnTwoWorkers() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        try driver.ready("w2", slots: 1)
        let failure = { (trial: Int64, attempt: Int) in
            Message.failure(FailureBody(trial: trial, attempt: attempt, code: .evalFailed, reason: "exit 1"))
        }
        // The failed slot is refilled at once; the requeued trial waits first in line.
        try driver.receive(failure(1, 1), from: "w1")
        #expect(driver.tasks(to: "w1").last == AttemptRef(trial: 3, attempt: 1))
        #expect(driver.core.pendingTrials == [1, 4])
        try driver.result("w2", AttemptRef(trial: 2, attempt: 1))
        #expect(driver.tasks(to: "w2").last == AttemptRef(trial: 1, attempt: 2))
        // Failing on a second worker fails the trial for good.
        try driver.receive(failure(1, 2), from: "w2")
        #expect(try driver.archive.trial(1)?.state == .failed)
        #expect(driver.core.finishedCount == 2)
        // Failing twice on the same worker only requeues.
        try driver.receive(failure(3, 1), from: "w1")
        let retry = try #require(driver.sent.compactMap { entry -> AttemptRef? in
            guard case .task(let body) = entry.message, body.trial == 3, body.attempt == 2 else { return nil }
            return AttemptRef(trial: 3, attempt: 2)
        }.first)
        let holder = driver.tasks(to: "w1").contains(retry) ? "w1" : "w2"
        if holder == "w1" {
            try driver.receive(failure(3, 2), from: "w1")
            #expect(try driver.archive.trial(3)?.state == .pending)
        }
        #expect(!driver.core.pendingTrials.contains(1))
    }

    @Test func aRestartKeepsAttemptsTheirWorkersStillHoldAndExpiresTheRest() throws {
        let first = try Driver(settings())
        try first.start()
        try first.ready("w1", slots: 2)
        try first.ready("w2", slots: 1)
        try first.ready("w3", slots: 1)
        #expect(first.tasks(to: "w1").count == 2 && first.tasks(to: "w2").count == 1 && first.tasks(to: "w3").count == 1)
        try first.archive.close()

        // The coordinator restarts on the same archive.
        let second = try Driver(settings(), archiveDirectory: first.directory)
        defer { second.remove() }
        second.now = 100
        try second.start()
        #expect(second.actions.first == .renewLeases(until: 105))
        #expect(second.core.orphanTrials == [1, 2, 3, 4])
        // w1 reconnects holding trial 1 only; w2 reconnects holding its trial; w3 never comes back.
        try second.ready("w1", slots: 2, active: [AttemptRef(trial: 1, attempt: 1)])
        #expect(second.actions.contains(.expireAttempt(trial: 2, attempt: 1, reason: "worker reconnected without it")))
        #expect(second.core.trials(on: "w1").contains(1))
        try second.ready("w2", slots: 1, active: [AttemptRef(trial: 3, attempt: 1)])
        #expect(second.core.trials(on: "w2") == [3])
        second.now = 106
        try second.receive(.workerHeartbeat(.init(activeTrials: [])), from: "w1")
        try second.receive(.workerHeartbeat(.init(activeTrials: [])), from: "w2")
        try second.feed(.tick(now: 106))
        #expect(try second.archive.attempts(ofTrial: 4).map(\.state) == [.expired])
        // A result of a kept attempt counts; trial 2 was redispatched as attempt 2.
        try second.result("w1", AttemptRef(trial: 1, attempt: 1))
        #expect(try second.archive.trial(1)?.state == .completed)
        #expect(try second.archive.attempts(ofTrial: 2).map(\.state).first == .expired)
    }

    @Test func aReconnectionHoldingOnlyAnUnacknowledgedResultGetsWorkAgain() throws {
        // Seen under load: w1's RESULT for trial 1 was recorded but its ACK went to the connection w1
        // had just dropped; w1 reconnects listing trial 1 (its report is unacknowledged). That is no
        // stale attempt to cancel and wait for: w1's slot is free and trial 2 goes out at once.
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1, pid: 10)
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        #expect(driver.core.trials(on: "w1") == [2])
        try driver.ready("w1", slots: 1, pid: 10, active: [AttemptRef(trial: 1, attempt: 1)])
        #expect(driver.core.cancelling(on: "w1").isEmpty)
        #expect(driver.core.trials(on: "w1").count == 1, "pending \(driver.core.pendingTrials)")
        #expect(!driver.sent.contains { if case .cancel = $0.message { true } else { false } })
    }

    @Test func aCancelledAttemptMissingFromAHeartbeatFreesItsSlot() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1, pid: 10)
        #expect(driver.core.trials(on: "w1") == [1])
        // A restart (new pid) still running trial 1's old attempt: CANCEL, and the slot waits for it.
        try driver.ready("w1", slots: 1, pid: 11, active: [AttemptRef(trial: 1, attempt: 1)])
        #expect(driver.core.cancelling(on: "w1") == [AttemptRef(trial: 1, attempt: 1)])
        #expect(driver.core.trials(on: "w1").isEmpty)
        // Its FAILURE is lost, but a heartbeat says the attempt is gone: the slot is free again.
        try driver.receive(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: [AttemptRef(trial: 1, attempt: 1)])), from: "w1")
        #expect(driver.core.cancelling(on: "w1") == [AttemptRef(trial: 1, attempt: 1)])
        try driver.receive(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: [])), from: "w1")
        #expect(driver.core.cancelling(on: "w1").isEmpty)
        #expect(driver.core.trials(on: "w1").count == 1)
    }

    @Test func aReconnectionKeepsHeldAttemptsAndARestartDropsThem() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 2, pid: 10)
        #expect(driver.core.trials(on: "w1") == [1, 2])
        try driver.ready("w1", slots: 2, pid: 10, active: [AttemptRef(trial: 2, attempt: 1)])  // same pid: reconnection
        #expect(try driver.archive.attempts(ofTrial: 1).map(\.state) == [.expired])
        #expect(driver.core.trials(on: "w1").contains(2))
        try driver.ready("w1", slots: 2, pid: 11, active: [AttemptRef(trial: 2, attempt: 1)])  // new pid: restart
        #expect(try driver.archive.attempts(ofTrial: 2).map(\.state) == [.expired])
    }

    @Test func whileMessagesWaitUnreadNobodyIsJudgedSilentButHeartbeatsGoOut() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        // Far past the lease (3 s), but the service is behind (`beat`): w1's messages may be waiting.
        driver.now = 10
        try driver.feed(.beat(now: driver.now))
        #expect(driver.core.workerNames == ["w1"])
        #expect(!driver.actions.contains(.recordWorkerLost("w1")))
        #expect(driver.count(.heartbeat, to: "w1") == 1)
        // Its heartbeat was among them: read, it proves w1 alive; the next tick finds nothing silent.
        try driver.receive(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: [AttemptRef(trial: 1, attempt: 1)])), from: "w1")
        try driver.feed(.tick(now: driver.now))
        #expect(driver.core.workerNames == ["w1"])
        // Once drained, real silence is judged as usual.
        driver.now = 20
        try driver.feed(.tick(now: driver.now))
        #expect(driver.actions.contains(.recordWorkerLost("w1")))
        #expect(driver.core.workerNames.isEmpty)
    }

    @Test func attemptsAReturningWorkerNoLongerOwnsAreCancelledAndHoldASlotUntilAnswered() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1, pid: 10)
        let first = AttemptRef(trial: 1, attempt: 1)
        #expect(driver.tasks(to: "w1") == [first])
        driver.now = 10  // silent past the lease (3 s): lost, its attempt expires and the trial is requeued
        try driver.feed(.tick(now: driver.now))
        #expect(try driver.archive.attempts(ofTrial: 1).map(\.state) == [.expired])
        let before = driver.sent.count
        try driver.ready("w1", slots: 1, pid: 10, active: [first])
        let after = driver.sent[before...].map(\.message)
        #expect(after.map(\.type) == [.welcome, .cancel])
        if case .cancel(let body) = after.last { #expect(AttemptRef(trial: body.trial, attempt: body.attempt) == first) }
        #expect(driver.core.cancelling(on: "w1") == [first])
        #expect(driver.tasks(to: "w1") == [first])  // its one slot is taken until the answer
        // PROGRESS for it is no error (the CANCEL is on its way); for another attempt it is, named.
        try driver.receive(.progress(ProgressBody(trial: 1, attempt: 1, phase: .merge, done: 1, total: 2)), from: "w1")
        #expect(driver.errors(to: "w1").isEmpty)
        try driver.receive(.progress(ProgressBody(trial: 3, attempt: 5, phase: .merge, done: 1, total: 2)), from: "w1")
        #expect(driver.errors(to: "w1").map(\.attemptRef) == [AttemptRef(trial: 3, attempt: 5)])
        // FAILURE CANCELLED: ACKed stale, the slot frees and the requeued trial goes out again.
        try driver.receive(.failure(FailureBody(trial: 1, attempt: 1, code: .cancelled, reason: "cancelled")), from: "w1")
        #expect(driver.core.cancelling(on: "w1").isEmpty)
        #expect(driver.tasks(to: "w1") == [first, AttemptRef(trial: 1, attempt: 2)])
        #expect(try driver.archive.attempts(ofTrial: 1).map(\.state) == [.expired, .dispatched])
    }

    @Test func whileAProposalIsInFlightItIsNotAskedAgainFreeWorkersWaitAndHeartbeatsGoOn() throws {
        let driver = try Driver(settings(initial: 2, batch: 2, iterations: 2))  // budget 6
        defer { driver.remove() }
        driver.deferProposals = true
        try driver.start()
        try driver.ready("w1", slots: 1)
        #expect(driver.proposals.count == 1 && driver.core.proposingStrategies == [.bambo])
        try driver.ready("w2", slots: 1)
        #expect(driver.proposals.count == 1)  // in flight: not asked again
        #expect(driver.tasks(to: "w1").isEmpty && driver.tasks(to: "w2").isEmpty)
        // The proposal takes 10 s (lease 3 s): both workers keep beating, are kept and beaten to.
        for step in 1...20 {
            driver.now = Double(step) * 0.5
            for worker in ["w1", "w2"] { try driver.receive(.workerHeartbeat(.init(activeTrials: [])), from: worker) }
            try driver.feed(.tick(now: driver.now))
        }
        #expect(driver.core.workerNames == ["w1", "w2"])
        #expect(!driver.actions.contains { if case .recordWorkerLost = $0 { true } else { false } })
        #expect(driver.count(.heartbeat, to: "w1") >= 5 && driver.count(.heartbeat, to: "w2") >= 5)
        #expect(driver.proposals.count == 1)
        try driver.finishProposals()
        #expect(driver.core.proposingStrategies.isEmpty)
        #expect(driver.tasks(to: "w1") == [AttemptRef(trial: 1, attempt: 1)] && driver.tasks(to: "w2") == [AttemptRef(trial: 2, attempt: 1)])
        // A result frees w1 with nothing pending: the next batch is asked for, with trial 2 pending.
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        #expect(driver.proposals.count == 2 && !driver.proposals[1].warmStart && driver.proposals[1].pending == [2])
        // w2 finishes too while that proposal runs: no second one; both wait.
        try driver.result("w2", AttemptRef(trial: 2, attempt: 1))
        try driver.feed(.tick(now: driver.now + 0.5))
        #expect(driver.proposals.count == 2)
        #expect(driver.tasks(to: "w1").count == 1 && driver.tasks(to: "w2").count == 1)
        try driver.finishProposals()
        #expect(driver.tasks(to: "w1").last == AttemptRef(trial: 3, attempt: 1) && driver.tasks(to: "w2").last == AttemptRef(trial: 4, attempt: 1))
        #expect(driver.core.trialCount == 4 && driver.core.trialCount(of: .bambo) == 4)
    }

    @Test func anotherStrategyIsAskedOnlyForSlotsBeyondTheProposalsInFlight() throws {
        let driver = try Driver(Dispatcher.Settings(
            study: "demo", heartbeatInterval: 1, leaseBeats: 3,
            plans: [StrategyPlan(strategy: .bambo, initial: 2, batch: 2, budget: 4), StrategyPlan(strategy: .grid, initial: 0, batch: 2, budget: 4)],
            evaluatorKind: "exec", resumeGrace: 2))
        defer { driver.remove() }
        driver.deferProposals = true
        try driver.start()
        try driver.ready("w1", slots: 1)
        #expect(driver.proposedStrategies == [.bambo])  // 2 trials coming for 1 free slot
        try driver.ready("w2", slots: 2)
        #expect(driver.proposedStrategies == [.bambo, .grid])  // 3 free slots > 2 coming
        try driver.ready("w3", slots: 1)
        #expect(driver.proposedStrategies == [.bambo, .grid])  // 4 free = 4 coming; both in flight anyway
        #expect(driver.core.proposingStrategies == [.bambo, .grid])
        // The grid's proposal finishes first: its trials go out, bambo's is still awaited.
        try driver.finishProposals(of: .grid)
        #expect(driver.core.proposingStrategies == [.bambo])
        let first = ["w1", "w2", "w3"].map { driver.tasks(to: $0).count }.reduce(0, +)
        #expect(first == 2)
        try driver.finishProposals(of: .bambo)
        #expect(["w1", "w2", "w3"].map { driver.tasks(to: $0).count }.reduce(0, +) == 4)
        #expect(driver.core.trialCount(of: .bambo) == 2 && driver.core.trialCount(of: .grid) == 2)
    }

    @Test func stopDuringAProposalDiscardsItAndARestartProposesAgain() throws {
        let first = try Driver(settings())
        first.deferProposals = true
        try first.start()
        try first.ready("w1", slots: 1)
        #expect(first.core.proposingStrategies == [.bambo])
        try first.feed(.stop(now: 1))
        #expect(first.halted)
        #expect(try first.archive.counts().total == 0)  // nothing was stored for it
        try first.archive.close()
        let second = try Driver(settings(), archiveDirectory: first.directory)
        defer { second.remove() }
        try second.start()
        try second.ready("w1", slots: 1)
        #expect(second.proposals.count == 1 && second.proposals[0].warmStart && second.proposals[0].count == 4)
        #expect(second.tasks(to: "w1") == [AttemptRef(trial: 1, attempt: 1)])
    }

    @Test func busyHoldsTheWorkerBackWithBackoffAndHeartbeatsNameStrayAttempts() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        try driver.ready("w2", slots: 1)
        #expect(driver.tasks(to: "w1") == [AttemptRef(trial: 1, attempt: 1)])
        let busy = { (ref: AttemptRef) in
            Message.failure(FailureBody(trial: ref.trial, attempt: ref.attempt, code: .busy, reason: "all 1 slots are taken"))
        }
        // w1 holds something the dispatcher does not count: BUSY. Not the trial's fault; no TASK to
        // w1 (no tight loop) until it speaks again one heartbeat interval later.
        try driver.receive(busy(AttemptRef(trial: 1, attempt: 1)), from: "w1")
        #expect(try driver.archive.trial(1)?.state == .pending)
        #expect(driver.core.isBackingOff("w1"))
        #expect(driver.tasks(to: "w1").count == 1)
        driver.now = 0.5
        try driver.receive(.workerHeartbeat(.init(activeTrials: [AttemptRef(trial: 9, attempt: 2)])), from: "w1")
        try driver.feed(.tick(now: driver.now))
        #expect(driver.tasks(to: "w1").count == 1)
        // Its heartbeat names the stray attempt: ERROR STALE_ATTEMPT for it (the worker drops it).
        #expect(driver.errors(to: "w1").map(\.attemptRef) == [AttemptRef(trial: 9, attempt: 2)])
        driver.now = 1
        try driver.receive(.workerHeartbeat(.init(activeTrials: [])), from: "w1")
        #expect(!driver.core.isBackingOff("w1"))
        #expect(driver.tasks(to: "w1").last == AttemptRef(trial: 1, attempt: 2))
        // BUSY again: two intervals this time.
        try driver.receive(busy(AttemptRef(trial: 1, attempt: 2)), from: "w1")
        driver.now = 2
        try driver.receive(.workerHeartbeat(.init(activeTrials: [])), from: "w1")
        #expect(driver.core.isBackingOff("w1") && driver.tasks(to: "w1").count == 2)
        driver.now = 3
        try driver.receive(.workerHeartbeat(.init(activeTrials: [])), from: "w1")
        #expect(driver.tasks(to: "w1").last == AttemptRef(trial: 1, attempt: 3))
        try driver.result("w1", AttemptRef(trial: 1, attempt: 3))
        #expect(try driver.archive.trial(1)?.state == .completed)
        // Attempts a worker answered may be listed until it has the ACK; once dropped, they are stale.
        try driver.result("w2", AttemptRef(trial: 2, attempt: 1))
        let answered = AttemptRef(trial: 2, attempt: 1)
        try driver.receive(.workerHeartbeat(.init(activeTrials: [answered] + driver.core.trials(on: "w2").map { trial in
            driver.tasks(to: "w2").last { $0.trial == trial }!
        })), from: "w2")
        #expect(driver.errors(to: "w2").isEmpty)
        try driver.receive(.workerHeartbeat(.init(activeTrials: [])), from: "w2")
        try driver.receive(.workerHeartbeat(.init(activeTrials: [answered])), from: "w2")
        #expect(driver.errors(to: "w2").map(\.attemptRef) == [answered])
    }

    @Test func stopHaltsDispatching() throws {
        let driver = try Driver(settings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        try driver.feed(.stop(now: 1))
        #expect(driver.halted)
        try driver.result("w1", AttemptRef(trial: 1, attempt: 1))
        #expect(driver.tasks(to: "w1").count == 1)
        try driver.ready("w2")
        #expect(driver.errors(to: "w2").map(\.code) == [.shuttingDown])
    }

    /// Random workers joining, evaluating, failing, going silent and leaving: the slots are never
    /// exceeded, the budget never passed, and the study always finishes with every trial done.
    @Test(arguments: 0..<6)
    func randomScheduleInvariants(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let config = settings(initial: 5, batch: 3, iterations: 4)  // budget 17
        let driver = try Driver(config)
        defer { driver.remove() }
        try driver.start()
        var alive: [String: Int] = [:]  // name → slots
        var pid = 100
        var steps = 0
        while !driver.finished && steps < 3000 {
            steps += 1
            driver.now += 0.25
            let roll = rng.next() % 100
            if alive.count < 2 || roll < 5 {
                let name = "w\(rng.next() % 5)"
                pid += 1
                let slots = Int(rng.next() % 3) + 1
                try driver.ready(name, slots: slots, pid: pid)
                alive[name] = slots
            } else if roll < 8, let name = alive.keys.sorted().randomElement(using: &rng) {
                alive[name] = nil  // goes silent
            } else if roll < 10, let name = alive.keys.sorted().randomElement(using: &rng) {
                try driver.receive(.bye(ByeBody(reason: "bye")), from: name)
                alive[name] = nil
            } else {
                for name in alive.keys.sorted() {
                    let held = driver.core.trials(on: name)
                    #expect(held.count <= alive[name]!)
                    if let trial = held.sorted().first, rng.next() % 3 == 0 {
                        let attempt = driver.tasks(to: name).last { $0.trial == trial }!
                        if rng.next() % 10 == 0 {
                            try driver.receive(.failure(FailureBody(trial: trial, attempt: attempt.attempt, code: .evalFailed, reason: "x")), from: name)
                        } else {
                            try driver.result(name, attempt)
                        }
                    } else {
                        try driver.receive(.workerHeartbeat(.init(activeTrials: [])), from: name)
                    }
                }
            }
            try driver.feed(.tick(now: driver.now))
            #expect(driver.core.trialCount <= config.budget)
        }
        #expect(driver.finished)
        let counts = try driver.archive.counts()
        #expect(counts.total == config.budget)
        #expect(counts.completed + counts.failed == config.budget)
        // No trial has two results, and no attempt was dispatched to a worker beyond its slots.
        let results = try driver.archive.completedTrials().map(\.trial.id)
        #expect(Set(results).count == results.count)
    }
}

/// A small deterministic generator (SplitMix64) for the random schedules.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
