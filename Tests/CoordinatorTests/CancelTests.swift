import Archive
import BamboProtocol
import Coordinator
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// CANCEL and STALE_ATTEMPT from the built coordinator over real sockets (Protocol/README.md §4, §6):
/// a worker that was declared lost comes back holding its expired attempt; the coordinator cancels
/// it, keeps the slot taken until the FAILURE `CANCELLED` arrives, and then gives the worker work.
@Suite(.serialized) struct CancelTests {
    /// One hand-driven worker: a real DEALER that beats every 0.2 s while waiting.
    final class Driver {
        let peer: WorkerPeer
        var beating = true
        /// The attempts its heartbeats say it holds (a worker lists what it still runs).
        var holding: [AttemptRef] = []
        private var lastSent = ContinuousClock.now
        init(context: Context, name: String, endpoint: String) throws {
            peer = try WorkerPeer(context: context, name: name, endpoint: endpoint)
        }
        func send(_ message: Message) throws {
            try peer.send(message)
            lastSent = .now
        }
        /// Every message received for `seconds`, beating while `beating`.
        func collect(for seconds: Double) throws -> [Message] {
            var messages: [Message] = []
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while ContinuousClock.now < deadline {
                if beating, ContinuousClock.now - lastSent >= .milliseconds(200) { try send(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: holding))) }
                if let message = try peer.receive(timeout: .milliseconds(50)) { messages.append(message) }
            }
            return messages
        }
        /// The first message `match` accepts within `timeout` seconds (beating meanwhile).
        func await<T>(_ timeout: Double, _ match: (Message) -> T?) throws -> T? {
            let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
            while ContinuousClock.now < deadline {
                if beating, ContinuousClock.now - lastSent >= .milliseconds(200) { try send(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: holding))) }
                if let message = try peer.receive(timeout: .milliseconds(50)), let value = match(message) { return value }
            }
            return nil
        }
        func ready(activeTrials: [AttemptRef]? = nil) throws {
            try send(.ready(ReadyBody(
                worker: peer.name, pid: 4242, host: "cancel-test",
                capabilities: Capabilities(slots: 1, gpus: [], backends: [], evaluators: ["exec"], version: "test"),
                activeTrials: activeTrials)))
        }
    }

    @Test func aReturningWorkerHasItsExpiredAttemptCancelledBeforeItGetsWork() throws {
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 1)
        let coordinator = try CoordinatorProcess(fixture: fixture)
        let context = try Context()
        defer { context.close() }
        let worker = try Driver(context: context, name: "w-away", endpoint: coordinator.endpoint)
        defer { worker.peer.close() }
        try worker.ready()
        #expect(try worker.await(30) { if case .welcome = $0 { true } else { nil } } == true, "coordinator log:\n\(coordinator.log)")
        let first = try #require(try worker.await(30) { if case .task(let t) = $0 { AttemptRef(trial: t.trial, attempt: t.attempt) } else { nil } })

        // Silent past the lease (3 × 0.2 s): the coordinator declares it lost and the attempt expires.
        worker.beating = false
        let archiveURL = fixture.archive
        func attemptStates() throws -> [AttemptState] {
            let archive = try Archive.open(at: archiveURL, options: .init(role: .shared, mode: .existing))
            defer { try? archive.close() }
            return try archive.attempts(ofTrial: first.trial).map(\.state)
        }
        let deadline = Date().addingTimeInterval(30)
        while try attemptStates() != [.expired], Date() < deadline { _ = try worker.collect(for: 0.1) }
        #expect(try attemptStates() == [.expired], "coordinator log:\n\(coordinator.log)")

        // It comes back (same host and pid) still holding the attempt: WELCOME, then CANCEL for it.
        worker.beating = true
        worker.holding = [first]
        try worker.ready(activeTrials: [first])
        let afterReady = try worker.collect(for: 1.5)
        let cancels = afterReady.compactMap { if case .cancel(let c) = $0 { c } else { nil } }
        #expect(cancels.map { AttemptRef(trial: $0.trial, attempt: $0.attempt) } == [first], "got \(afterReady.map(\.type))")
        #expect(afterReady.firstIndex { $0.type == .welcome }.map { $0 < (afterReady.firstIndex { $0.type == .cancel } ?? -1) } == true)
        // Its one slot is held by the attempt being cancelled: no TASK yet, although trials wait.
        #expect(!afterReady.contains { $0.type == .task }, "got \(afterReady.map(\.type))")

        // PROGRESS for the attempt being cancelled is not an error; for an unknown attempt it is
        // STALE_ATTEMPT, naming that attempt.
        try worker.send(.progress(ProgressBody(trial: first.trial, attempt: first.attempt, phase: .merge, done: 1, total: 2)))
        try worker.send(.progress(ProgressBody(trial: first.trial, attempt: 9, phase: .merge, done: 1, total: 2)))
        let errors = try worker.collect(for: 1.0).compactMap { if case .error(let e) = $0 { e } else { nil } }
        #expect(errors.count == 1)
        #expect(errors.first?.code == .staleAttempt && errors.first?.attemptRef == AttemptRef(trial: first.trial, attempt: 9))

        // FAILURE CANCELLED: ACKed as stale (the attempt had expired) and the slot frees: a TASK comes.
        worker.holding = []
        try worker.send(.failure(FailureBody(trial: first.trial, attempt: first.attempt, code: .cancelled, reason: "cancelled by the coordinator")))
        let ack = try worker.await(30) { if case .ack(let a) = $0 { a } else { nil } }
        #expect(ack?.outcome == .stale)
        var next = try #require(try worker.await(30) { if case .task(let t) = $0 { t } else { nil } }, "coordinator log:\n\(coordinator.log)")

        // The worker finishes the study; the cancelled attempt never counts.
        var shutdown = false
        while !shutdown {
            try worker.send(.result(ResultBody(
                trial: next.trial, attempt: next.attempt, metrics: SimulatedWorker.metrics(for: next.weights),
                durations: Durations(merge: 0, evaluate: 0))))
            let reply = try #require(try worker.await(30) { message -> Message? in
                switch message {
                case .task, .shutdown: message
                default: nil
                }
            }, "coordinator log:\n\(coordinator.log)")
            if case .task(let task) = reply { next = task } else { shutdown = true }
        }
        #expect(coordinator.waitForExit(timeout: 30) == 0, "coordinator log:\n\(coordinator.log)")
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        #expect(try archive.counts() == TrialCounts(completed: fixture.budget))
        let attempts = try archive.attempts(ofTrial: first.trial)
        #expect(attempts.map(\.state) == [.expired, .completed])
    }
}
