import Archive
import BamboProtocol
import Coordinator
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// The built `bambo coordinator` on loopback with a worker played by the test on a real DEALER
/// socket, message by message, where a real worker's timing is too hard to force.
@Suite(.serialized) struct ReconnectionTests {
    private static func readyBody(pid: Int, active: [AttemptRef]?) -> ReadyBody {
        ReadyBody(
            worker: "w1", pid: pid, host: "sim-w1",
            capabilities: Capabilities(slots: 1, gpus: [], backends: ["sim"], evaluators: ["exec"], version: "test"), activeTrials: active)
    }

    /// The reported bug: a TASK crossed the worker's reconnection (READY sent, then the TASK arrived
    /// and was accepted, as `WorkerCore` does while awaiting WELCOME). The coordinator expired that
    /// attempt (READY did not list it) and sent the trial again; the worker, its one slot taken,
    /// answered BUSY, and the coordinator re-sent at once, in a tight loop (a new attempt each time).
    /// Now: after BUSY the worker gets no TASK until it speaks again after a back-off, and its
    /// HEARTBEAT listing the stray attempt gets ERROR STALE_ATTEMPT, so it drops it and takes work.
    @Test func busyAfterAReconnectionIsNotAnsweredWithATightLoopOfTasks() throws {
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 1)
        let coordinator = try CoordinatorProcess(fixture: fixture)  // heartbeat 0.2 s
        let context = try Context()
        defer { context.close() }
        let peer = try WorkerPeer(context: context, name: "w1", endpoint: coordinator.endpoint)
        defer { peer.close() }
        try peer.send(.ready(Self.readyBody(pid: 4242, active: nil)))
        let stray = try #require(try peer.receive(timeout: .seconds(30)) { message -> AttemptRef? in
            if case .task(let body) = message { return AttemptRef(trial: body.trial, attempt: body.attempt) }
            return nil
        }, "no first TASK; coordinator log:\n\(coordinator.log)")
        // The READY of a reconnection, sent before that TASK arrived: it lists nothing.
        try peer.send(.ready(Self.readyBody(pid: 4242, active: nil)))

        // From here on, behave like WorkerCore with `stray` in its one slot.
        var holding = true
        var busyAnswers = 0
        var staleNamed: [AttemptRef] = []
        var accepted: AttemptRef?
        var lastBeat = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(20)
        while accepted == nil, ContinuousClock.now < deadline, busyAnswers < 200 {
            if let message = try peer.receive(timeout: .milliseconds(20)) {
                switch message {
                case .task(let body):
                    let ref = AttemptRef(trial: body.trial, attempt: body.attempt)
                    if holding {
                        busyAnswers += 1
                        try peer.send(.failure(FailureBody(trial: ref.trial, attempt: ref.attempt, code: .busy, reason: "all 1 slots are taken")))
                    } else {
                        accepted = ref
                    }
                case .error(let body) where body.code == .staleAttempt:
                    if let ref = body.attemptRef { staleNamed.append(ref) }
                    if body.attemptRef == stray { holding = false }  // dropStale
                default:
                    break
                }
            }
            if ContinuousClock.now - lastBeat >= .milliseconds(200) {
                try peer.send(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: holding ? [stray] : [])))
                lastBeat = ContinuousClock.now
            }
        }
        #expect(busyAnswers <= 5, "TASKs answered BUSY: \(busyAnswers); coordinator log:\n\(coordinator.log)")
        #expect(staleNamed.contains(stray))
        let taken = try #require(accepted, "no TASK after the stray attempt was dropped; coordinator log:\n\(coordinator.log)")
        // BUSY is not the trial's fault: the trials are still to be done, with few attempts spent.
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        #expect(try archive.trial(taken.trial)?.state == .dispatched)
        let attempts = try archive.trials().map { try archive.attempts(ofTrial: $0.id).count }.reduce(0, +)
        #expect(attempts == 1 + busyAnswers + 1, "the stray, one per TASK answered BUSY, the one taken")
        coordinator.signal(SIGTERM)
        #expect(coordinator.waitForExit(timeout: 30) == 0)
    }

    @Test func leaseBeatsReachesTheWorkersAndIsValidated() throws {
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 1)
        let refused = try Bambo.run(
            ["coordinator", "--study", fixture.studyFile.path, "--bind", "tcp://127.0.0.1:*", "--events", "none", "--lease-beats", "1"],
            in: fixture.directory)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--lease-beats must be an integer ≥ 2 (got 1)"), "stderr: \(refused.stderr)")
        #expect(try Bambo.run(["coordinator", "--help"], in: fixture.directory).stdout.contains("--lease-beats"))

        let coordinator = try CoordinatorProcess(fixture: fixture, extra: ["--lease-beats", "7"])
        let context = try Context()
        defer { context.close() }
        let peer = try WorkerPeer(context: context, name: "w1", endpoint: coordinator.endpoint)
        defer { peer.close() }
        try peer.send(.ready(Self.readyBody(pid: 1, active: nil)))
        let welcome = try peer.receive(timeout: .seconds(30)) { message -> WelcomeBody? in
            if case .welcome(let body) = message { return body }
            return nil
        }
        #expect(welcome?.leaseBeats == 7 && welcome?.heartbeatInterval == 0.2)
        coordinator.signal(SIGTERM)
        #expect(coordinator.waitForExit(timeout: 30) == 0)
    }
}
