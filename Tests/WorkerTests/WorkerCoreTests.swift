import BamboProtocol
import Foundation
import Testing
@testable import Worker

/// A core driven by hand: events in, actions recorded; every message it sends must encode.
struct Harness {
    var core: WorkerCore
    var now: Double = 0

    init(slots: Int = 2, jitter: Double = 0, persist: Bool = false) {
        let capabilities = Capabilities(slots: slots, gpus: ["0"], backends: [], evaluators: ["exec"], version: "0.1.0")
        core = WorkerCore(configuration: WorkerConfiguration(
            name: "w1", host: "host", pid: 42, capabilities: capabilities, backoffJitter: jitter, persist: persist))
    }

    @discardableResult
    mutating func on(_ event: WorkerEvent, at time: Double? = nil) -> [WorkerAction] {
        if let time { now = time }
        let actions = core.handle(event, now: now)
        for case .send(let message) in actions {
            #expect((try? WireCodec.encode(message)) != nil, "not encodable: \(message)")
        }
        return actions
    }

    mutating func welcome(at time: Double? = nil, interval: Double = 1, beats: Int = 3) -> [WorkerAction] {
        on(.received(.welcome(WelcomeBody(study: "s", heartbeatInterval: interval, leaseBeats: beats))), at: time)
    }

    /// Registered with a long heartbeat interval, so that no lease runs out in the test.
    mutating func register() {
        on(.start)
        _ = welcome(interval: 100)
    }
}

func task(_ trial: Int64, attempt: Int = 1, deadline: Double? = nil, kind: String = "exec") -> TaskBody {
    TaskBody(
        trial: trial, attempt: attempt, weights: [0.25, 0.5, 0.75], partition: PartitionSpec(blocks: [[0, 1]], layers: 2),
        models: [ModelRef(name: "a", path: "/a"), ModelRef(name: "b", path: "/b")],
        merge: MergeSpec(method: "linear", dtype: .bfloat16), evaluator: ["kind": .string(kind), "command": ["true"]],
        deadline: deadline)
}

func ref(_ trial: Int64, _ attempt: Int = 1) -> AttemptRef { AttemptRef(trial: trial, attempt: attempt) }

extension Array where Element == WorkerAction {
    var sent: [Message] { compactMap { if case .send(let message) = $0 { message } else { nil } } }
    var sentTypes: [MessageType] { sent.map(\.type) }
    var failures: [FailureBody] { sent.compactMap { if case .failure(let body) = $0 { body } else { nil } } }
    var results: [ResultBody] { sent.compactMap { if case .result(let body) = $0 { body } else { nil } } }
    var progress: [ProgressBody] { sent.compactMap { if case .progress(let body) = $0 { body } else { nil } } }
    var merges: [AttemptRef] { compactMap { if case .startMerge(let task) = $0 { ref(task.trial, task.attempt) } else { nil } } }
    var evaluations: [AttemptRef] { compactMap { if case .startEvaluation(let task, _) = $0 { ref(task.trial, task.attempt) } else { nil } } }
    var removed: [AttemptRef] { compactMap { if case .removeScratch(let r) = $0 { r } else { nil } } }
    var stopped: [AttemptRef] { compactMap { if case .stopWork(let r) = $0 { r } else { nil } } }
    var exitStatus: Int32? { compactMap { if case .exit(let s) = $0 { s } else { nil } }.first }
    var connects: Bool { contains(.connect) }
    var disconnects: Bool { contains(.disconnect) }
}

let model = URL(fileURLWithPath: "/scratch/model")
let metrics = EvaluationOutput(metrics: Metrics(benchmarks: ["b": BenchmarkMetrics(accuracy: 0.5, tokens: 10)]))

@Suite struct SessionTests {
    @Test func startConnectsAndAnnouncesCapabilities() throws {
        var h = Harness()
        let actions = h.on(.start)
        #expect(actions.first == .connect)
        guard case .ready(let ready) = actions.sent.first else { Issue.record("no READY"); return }
        #expect(ready.worker == "w1" && ready.pid == 42 && ready.host == "host")
        #expect(ready.capabilities.slots == 2 && ready.capabilities.evaluators == ["exec"] && ready.capabilities.gpus == ["0"])
        #expect(ready.activeTrials == nil)
        #expect(h.core.session == .awaitingWelcome(since: 0))
        #expect(h.on(.start).isEmpty)  // once only
    }

    @Test func noWelcomeBacksOffOneTwoFourUpToThirty() {
        var h = Harness()
        h.on(.start)
        var waits: [Double] = []  // connect → give up (no WELCOME)
        var delays: [Double] = []  // give up → connect again
        var (connectedAt, lostAt) = (0.0, 0.0)
        var t = 0.0
        while delays.count < 8 {
            t += 0.05
            let actions = h.on(.tick, at: t)
            if actions.disconnects { lostAt = t; waits.append(t - connectedAt) }
            if actions.connects { connectedAt = t; delays.append(t - lostAt) }
        }
        for wait in waits { #expect(abs(wait - 5) < 0.06, "gave up after \(wait) s") }
        for (got, want) in zip(delays, [1.0, 2, 4, 8, 16, 30, 30, 30]) { #expect(abs(got - want) < 0.06, "reconnected after \(got) s, expected \(want)") }
    }

    @Test func backoffJitterStaysWithinItsBand() {
        var h = Harness(jitter: 0.25)
        h.on(.start)
        var lostAt = 0.0
        var delays: [Double] = []
        var t = 0.0
        while delays.count < 5 {
            t += 0.01
            let actions = h.on(.tick, at: t)
            if actions.disconnects { lostAt = t }
            if actions.connects { delays.append(t - lostAt) }
        }
        for (delay, base) in zip(delays, [1.0, 2, 4, 8, 16]) {
            #expect(delay >= 0.75 * base - 0.011 && delay <= 1.25 * base + 0.011, "delay \(delay) for base \(base)")
        }
        #expect(Set(delays.enumerated().map { $1 / [1.0, 2, 4, 8, 16][$0] }).count > 1)  // jitter varies
    }

    @Test func heartbeatsEveryIntervalAndLeaseExpiryReconnectsWithHeldAttempts() {
        var h = Harness()
        h.on(.start)
        _ = h.welcome(at: 0.1, interval: 1, beats: 3)
        h.on(.received(.task(task(7))), at: 0.2)
        // Silent coordinator: heartbeats go out each second with the attempt held.
        var beats: [Double] = []
        var lost: Double?
        var t = 0.2
        while lost == nil, t < 10 {
            t += 0.05
            let actions = h.on(.tick, at: t)
            for case .workerHeartbeat(let body) in actions.sent {
                beats.append(t)
                #expect(body.activeTrials == [ref(7)])
            }
            if actions.disconnects { lost = t }
        }
        #expect(beats.count >= 2)
        #expect(abs((lost ?? 0) - 3.2) < 0.06)  // 3 × 1 s after the last message (TASK at 0.2)
        // Back after the back-off, READY lists the held attempt.
        var ready: ReadyBody?
        while ready == nil, t < 20 {
            t += 0.05
            for case .ready(let body) in h.on(.tick, at: t).sent { ready = body }
        }
        #expect(ready?.activeTrials == [ref(7)])
        #expect(t - (lost ?? 0) > 0.9 && t - (lost ?? 0) < 1.1)
    }

    @Test func coordinatorMessagesKeepTheLeaseAlive() {
        var h = Harness()
        h.on(.start)
        _ = h.welcome(at: 0)
        var t = 0.0
        while t < 20 {
            t += 0.5
            let actions = h.on(.received(.coordinatorHeartbeat), at: t)
            #expect(!actions.disconnects)
        }
        #expect(h.core.session == .registered(WelcomeBody(study: "s", heartbeatInterval: 1, leaseBeats: 3)))
    }

    @Test func errorsBeforeWelcome() {
        var h = Harness()
        h.on(.start)
        let refused = h.on(.received(.error(ErrorBody(code: .unauthorized, message: "no"))), at: 1)
        #expect(refused.disconnects && refused.exitStatus == nil)
        var h2 = Harness()
        h2.on(.start)
        let version = h2.on(.received(.error(ErrorBody(code: .badVersion, message: "BAMBO/2 only"))), at: 1)
        #expect(version.exitStatus == 2)
        #expect(h2.core.isStopped && h2.on(.tick, at: 100).isEmpty)
    }

    @Test func unknownWorkerDropsAttemptsAndRegistersAgain() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))))
        let actions = h.on(.received(.error(ErrorBody(code: .unknownWorker, message: "who?"))))
        #expect(actions.stopped == [ref(1)] && actions.removed == [ref(1)])
        #expect(actions.connects && actions.sentTypes == [.ready])
        #expect(h.core.held.isEmpty)
    }

    @Test func invalidAndUnexpectedMessagesAreOnlyLogged() {
        var h = Harness()
        h.register()
        let bad = h.on(.receivedInvalid(.badVersion(received: "XX")))
        #expect(bad.sent.isEmpty && bad.exitStatus == nil)
        let welcomeAgain = h.welcome()
        #expect(welcomeAgain.sent.isEmpty)
    }
}

@Suite struct AttemptTests {
    @Test func prefetchMergesTheNextTaskWhileTheCurrentOneEvaluates() {
        var h = Harness(slots: 2)
        h.register()
        let first = h.on(.received(.task(task(1))), at: 1)
        #expect(first.merges == [ref(1)])
        #expect(first.progress.map(\.phase) == [.merge])
        let second = h.on(.received(.task(task(2))), at: 1.1)
        #expect(second.merges.isEmpty)  // one merge at a time
        let merged = h.on(.mergeFinished(ref(1), .success(model), seconds: 2), at: 3)
        #expect(merged.evaluations == [ref(1)] && merged.merges == [ref(2)])
        #expect(Set(merged.progress.map(\.phase)) == [.merge, .evaluate])
        // Task 2 merged while 1 evaluates: waits for the evaluator.
        let merged2 = h.on(.mergeFinished(ref(2), .success(model), seconds: 2), at: 5)
        #expect(merged2.evaluations.isEmpty)
        let done = h.on(.evaluationFinished(ref(1), .success(metrics), seconds: 4), at: 7)
        #expect(done.results.count == 1 && done.results[0].durations == Durations(merge: 2, evaluate: 4))
        #expect(done.removed == [ref(1)])
        #expect(done.evaluations == [ref(2)])
        #expect(h.core.unacknowledged.count == 1)
        h.on(.received(.ack(AckBody(trial: 1, attempt: 1, outcome: .accepted))), at: 7.1)
        #expect(h.core.unacknowledged.isEmpty)
    }

    @Test func aTaskBeyondTheSlotsIsAnsweredBusy() {
        var h = Harness(slots: 1)
        h.register()
        h.on(.received(.task(task(1))))
        let busy = h.on(.received(.task(task(2))))
        #expect(busy.failures.map(\.code) == [.busy] && busy.failures[0].trial == 2)
        #expect(h.core.activeTrials == [ref(1)])
        let repeated = h.on(.received(.task(task(1))))
        #expect(repeated.sent.isEmpty)
    }

    @Test func unsupportedEvaluatorKindIsABadTask() {
        var h = Harness()
        h.register()
        let actions = h.on(.received(.task(task(1, kind: "harness"))))
        #expect(actions.failures.map(\.code) == [.badTask])
        #expect(actions.failures.first?.reason.contains("harness") == true)
        #expect(actions.merges.isEmpty)
    }

    @Test func mergeAndEvaluationFailuresBecomeFailures() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))))
        let failed = h.on(.mergeFinished(ref(1), .failure(AttemptFailure(code: .mergeFailed, reason: "disk", logTail: "x")), seconds: 1))
        #expect(failed.failures.map(\.code) == [.mergeFailed] && failed.failures[0].logTail == "x")
        #expect(failed.removed == [ref(1)] && failed.evaluations.isEmpty)
        h.on(.received(.task(task(2))))
        h.on(.mergeFinished(ref(2), .success(model), seconds: 1))
        let evalFailed = h.on(.evaluationFinished(ref(2), .failure(AttemptFailure(code: .evalTimeout, reason: "slow")), seconds: 9))
        #expect(evalFailed.failures.map(\.code) == [.evalTimeout])
        #expect(h.core.held.isEmpty && h.core.unacknowledged.count == 2)
    }

    @Test func cancelStopsTheWorkAndAnswersWhenItHasStopped() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))))
        h.on(.mergeFinished(ref(1), .success(model), seconds: 1))
        let cancel = h.on(.received(.cancel(CancelBody(trial: 1, attempt: 1, reason: "study finished"))))
        #expect(cancel.stopped == [ref(1)] && cancel.failures.isEmpty)
        #expect(h.core.activeTrials == [ref(1)])  // still holds the slot
        let ended = h.on(.evaluationFinished(ref(1), .failure(AttemptFailure(code: .cancelled, reason: "stopped")), seconds: 1))
        #expect(ended.failures.map(\.code) == [.cancelled] && ended.removed == [ref(1)])
        #expect(ended.failures[0].reason.contains("study finished"))
        // A CANCEL for something not held (finished, unknown) does nothing.
        #expect(h.on(.received(.cancel(CancelBody(trial: 1, attempt: 1, reason: "again")))).sent.isEmpty)
        // A queued attempt (no work running) is answered at once.
        h.on(.received(.task(task(2))))
        h.on(.received(.task(task(3))))
        let queued = h.on(.received(.cancel(CancelBody(trial: 3, attempt: 1, reason: "r"))))
        #expect(queued.failures.map(\.trial) == [3] && queued.stopped.isEmpty)
    }

    @Test func staleAttemptStopsThatAttemptWithoutAnswering() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))))  // merging
        h.on(.received(.task(task(2))))  // queued
        let stale = h.on(.received(.error(ErrorBody(code: .staleAttempt, message: "not current", inReplyTo: "PROGRESS", attempt: ref(1)))))
        #expect(stale.stopped == [ref(1)] && stale.removed == [ref(1)] && stale.sent.isEmpty)
        #expect(h.core.activeTrials == [ref(2)])
        // The merger stays busy until the stopped merge reports back; then the next one starts, and
        // the stopped one is never answered.
        #expect(stale.merges.isEmpty)
        let ended = h.on(.mergeFinished(ref(1), .failure(AttemptFailure(code: .cancelled, reason: "stopped")), seconds: 1))
        #expect(ended.failures.isEmpty && ended.merges == [ref(2)])
        // Without the attempt named (an older coordinator) it is only logged.
        let vague = h.on(.received(.error(ErrorBody(code: .staleAttempt, message: "not current"))))
        #expect(vague.stopped.isEmpty && vague.sent.isEmpty && h.core.activeTrials == [ref(2)])
    }

    @Test func theDeadlineStopsAnAttempt() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1, deadline: 10))), at: 0)
        #expect(h.on(.tick, at: 9.9).stopped.isEmpty)
        let late = h.on(.tick, at: 10)
        #expect(late.stopped == [ref(1)])
        let ended = h.on(.mergeFinished(ref(1), .success(model), seconds: 10), at: 10.5)
        #expect(ended.failures.map(\.code) == [.deadline] && ended.evaluations.isEmpty)
    }

    @Test func progressIsThrottledButTheEndOfAPhaseAlwaysGoesOut() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))), at: 0)
        var sent = 0
        for step in 1...100 {
            sent += h.on(.mergeProgress(ref(1), done: Int64(step), total: 100), at: Double(step) * 0.01).progress.count
        }
        // 1 s of progress at ≤ 4 per second, plus the final 100/100.
        #expect(sent >= 4 && sent <= 6)
        let last = h.on(.mergeProgress(ref(1), done: 100, total: 100), at: 1.001).progress
        #expect(last.count == 1 && last[0].done == 100)
        #expect(h.on(.mergeProgress(ref(1), done: 500, total: 100), at: 5).progress.first?.done == 100)  // clamped
        #expect(h.on(.evaluationProgress(ref(1), done: 1, total: 2, message: nil), at: 6).progress.isEmpty)  // wrong phase
    }

    @Test func resultsWaitForTheConnectionAndAreResentUntilAcknowledged() {
        var h = Harness()
        h.on(.start)
        _ = h.welcome(at: 0)
        h.on(.received(.task(task(1))), at: 0.1)
        h.on(.mergeFinished(ref(1), .success(model), seconds: 1), at: 1)
        // The coordinator goes silent; the lease runs out.
        var t = 1.0
        while !h.on(.tick, at: t).disconnects { t += 0.05 }
        let finished = h.on(.evaluationFinished(ref(1), .success(metrics), seconds: 2), at: t + 0.1)
        #expect(finished.results.isEmpty && finished.removed == [ref(1)])  // not sent: no connection
        var ready: ReadyBody?
        while ready == nil { t += 0.05; for case .ready(let body) in h.on(.tick, at: t).sent { ready = body } }
        #expect(ready?.activeTrials == [ref(1)])  // unacknowledged results are listed too
        let back = h.welcome(at: t + 0.1)
        #expect(back.results.map(\.trial) == [1])
        // Another lost connection before the ACK: sent again after the next WELCOME.
        t += 0.1
        while !h.on(.tick, at: t).disconnects { t += 0.05 }
        while !h.on(.tick, at: t).connects { t += 0.05 }
        #expect(h.welcome(at: t).results.map(\.trial) == [1])
        h.on(.received(.ack(AckBody(trial: 1, attempt: 1, outcome: .duplicate))), at: t)
        #expect(h.core.unacknowledged.isEmpty)
        t += 0.1
        while !h.on(.tick, at: t).disconnects { t += 0.05 }
        while !h.on(.tick, at: t).connects { t += 0.05 }
        #expect(h.welcome(at: t).results.isEmpty)
    }
}

@Suite struct LeavingTests {
    @Test func aSignalAbandonsEveryAttemptSaysByeAndExitsOnceAcknowledged() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))))
        h.on(.received(.task(task(2))))
        h.on(.mergeFinished(ref(1), .success(model), seconds: 1))
        let actions = h.on(.signal("SIGTERM"))
        #expect(Set(actions.stopped) == [ref(1), ref(2)])
        #expect(actions.failures.map(\.code) == [.abandoned, .abandoned])
        #expect(Set(actions.removed) == [ref(1), ref(2)])
        #expect(actions.sentTypes.last == .bye)
        #expect(actions.exitStatus == nil)
        h.on(.received(.ack(AckBody(trial: 1, attempt: 1, outcome: .accepted))))
        let last = h.on(.received(.ack(AckBody(trial: 2, attempt: 1, outcome: .accepted))))
        #expect(last.exitStatus == 0)
    }

    @Test func aSignalExitsAfterTheGraceWithoutAcks() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))), at: 0)
        h.on(.signal("SIGINT"), at: 1)
        #expect(h.on(.tick, at: 2.9).exitStatus == nil)
        #expect(h.on(.tick, at: 3.0).exitStatus == 0)
    }

    @Test func aSignalWhileDisconnectedExitsAtOnce() {
        var h = Harness()
        h.on(.start)
        h.on(.tick, at: 5)  // no WELCOME: disconnected, waiting to reconnect
        let away = h.on(.signal("SIGTERM"), at: 5.1)
        #expect(away.sent.isEmpty && away.exitStatus == 0)
        var waiting = Harness()
        waiting.on(.start)  // READY sent: the coordinator hears the BYE
        #expect(waiting.on(.signal("SIGTERM"), at: 1).sentTypes == [.bye])
        var idle = Harness()
        idle.register()
        let actions = idle.on(.signal("SIGTERM"))
        #expect(actions.sentTypes == [.bye] && actions.exitStatus == 0)
    }

    @Test func shutdownStopsEverythingSaysByeAndExits() {
        var h = Harness()
        h.register()
        h.on(.received(.task(task(1))))
        let actions = h.on(.received(.shutdown(ShutdownBody(reason: "budget reached"))))
        #expect(actions.stopped == [ref(1)] && actions.removed == [ref(1)])
        #expect(actions.sentTypes == [.bye] && actions.exitStatus == 0)
    }

    @Test func shutdownWithPersistWaitsForTheNextStudy() {
        var h = Harness(persist: true)
        h.register()
        let actions = h.on(.received(.shutdown(ShutdownBody(reason: "done"))), at: 1)
        #expect(actions.sentTypes == [.bye] && actions.disconnects && actions.exitStatus == nil)
        var t = 1.0
        while !h.on(.tick, at: t).connects { t += 0.05 }
        #expect(abs(t - 2) < 0.06)
    }
}

/// Random walks through the state machine with a simulated shell that finishes work at random
/// times: the protocol's invariants hold on every step.
@Suite struct RandomWalkTests {
    @Test(arguments: 1...40)
    func invariantsHold(seed: UInt64) {
        var rng = SplitMix(seed)
        var h = Harness(slots: 1 + Int(rng.next() % 2))
        let slots = h.core.configuration.capabilities.slots
        var running: Set<AttemptRef> = []  // work started in the shell, not yet reported
        var evaluating: Set<AttemptRef> = []
        var answered: [AttemptRef: Message] = [:]
        var nextTrial: Int64 = 1
        var t = 0.0
        h.on(.start)
        for _ in 0..<400 {
            t += Double(rng.next() % 400) / 1000
            let event: WorkerEvent
            switch rng.next() % 12 {
            case 0: event = .received(.welcome(WelcomeBody(study: "s", heartbeatInterval: 0.5, leaseBeats: 3)))
            case 1, 2:
                event = .received(.task(task(nextTrial, deadline: rng.next() % 5 == 0 ? 1 : nil)))
                nextTrial += 1
            case 3:
                if let r = running.randomElement(using: &rng) {
                    event = evaluating.contains(r)
                        ? .evaluationFinished(r, rng.next() % 3 == 0 ? .failure(AttemptFailure(code: .badOutput, reason: "x")) : .success(metrics), seconds: 1)
                        : .mergeFinished(r, rng.next() % 4 == 0 ? .failure(AttemptFailure(code: .mergeFailed, reason: "x")) : .success(model), seconds: 1)
                } else { event = .tick }
            case 4: event = .received(.coordinatorHeartbeat)
            case 5:
                if let r = answered.keys.randomElement(using: &rng) {
                    event = .received(.ack(AckBody(trial: r.trial, attempt: r.attempt, outcome: .accepted)))
                } else { event = .tick }
            case 6:
                event = .received(.cancel(CancelBody(trial: Int64(rng.next() % UInt64(nextTrial)) + 1, attempt: 1, reason: "r")))
            case 7 where rng.next() % 20 == 0: event = .signal("SIGTERM")
            default: event = .tick
            }
            if case .mergeFinished(let r, _, _) = event { running.remove(r) }
            if case .evaluationFinished(let r, _, _) = event { running.remove(r); evaluating.remove(r) }
            let actions = h.on(event, at: t)
            for action in actions {
                switch action {
                case .startMerge(let body):
                    running.insert(ref(body.trial, body.attempt))
                case .startEvaluation(let body, _):
                    let r = ref(body.trial, body.attempt)
                    #expect(!running.contains(r))
                    running.insert(r)
                    evaluating.insert(r)
                    #expect(evaluating.count == 1, "two evaluations at once")
                case .send(let message) where message.type == .result || message.type == .failure:
                    let r = message.attempt!
                    if let earlier = answered[r] { #expect(earlier == message, "two different answers for \(r)") }
                    answered[r] = message
                default: break
                }
            }
            #expect(h.core.held.count <= slots)
            #expect(h.core.held.filter { $0.stage == .merging }.count <= 1)
            #expect(Set(h.core.activeTrials).count == h.core.activeTrials.count)
            if h.core.isStopped { break }
        }
        // Every attempt not held any more was answered exactly once (or dropped by SHUTDOWN/exit).
        for attempt in h.core.held { #expect(answered[attempt.ref] == nil) }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
