import BamboProtocol
import Foundation

/// The fixed facts a worker announces and the timing rules it follows before WELCOME.
public struct WorkerConfiguration: Sendable, Hashable {
    /// The worker name: its READY `worker` and its ZeroMQ routing id.
    public var name: String
    public var host: String
    public var pid: Int
    /// What READY announces; `capabilities.slots` is 1 + prefetch.
    public var capabilities: Capabilities
    /// Seconds to wait for WELCOME after READY (spec §6: 5 s).
    public var welcomeTimeout: Double
    /// Reconnection back-off: first delay, doubling up to `backoffMax` (spec §6: 1, 2, 4 … 30 s).
    public var backoffInitial: Double
    public var backoffMax: Double
    /// Relative jitter of each back-off delay (0.25: ±25 %).
    public var backoffJitter: Double
    /// After SIGTERM/SIGINT, how long to wait for the ACKs of the last RESULT/FAILUREs before exiting.
    public var drainGrace: Double
    /// Stay up after SHUTDOWN and wait for the next study (`--persist`).
    public var persist: Bool
    /// At most this many PROGRESS messages per second per attempt (the last of a phase always goes).
    public var progressRate: Double

    public init(
        name: String, host: String, pid: Int, capabilities: Capabilities, welcomeTimeout: Double = 5,
        backoffInitial: Double = 1, backoffMax: Double = 30, backoffJitter: Double = 0.25, drainGrace: Double = 2,
        persist: Bool = false, progressRate: Double = 4
    ) {
        self.name = name
        self.host = host
        self.pid = pid
        self.capabilities = capabilities
        self.welcomeTimeout = welcomeTimeout
        self.backoffInitial = backoffInitial
        self.backoffMax = backoffMax
        self.backoffJitter = backoffJitter
        self.drainGrace = drainGrace
        self.persist = persist
        self.progressRate = progressRate
    }
}

/// How an attempt's merge or evaluation ended, as the I/O shell reports it.
public struct AttemptFailure: Error, Sendable, Hashable {
    public var code: FailureCode
    public var reason: String
    public var logTail: String
    public init(code: FailureCode, reason: String, logTail: String = "") {
        self.code = code
        self.reason = reason
        self.logTail = logTail
    }
}

/// What an evaluator produced.
public struct EvaluationOutput: Sendable, Hashable {
    public var metrics: Metrics
    public var items: [ItemRecord]?
    public init(metrics: Metrics, items: [ItemRecord]? = nil) {
        self.metrics = metrics
        self.items = items
    }
}

/// Everything that can happen to a worker. `WorkerCore.handle` turns each into actions.
public enum WorkerEvent: Sendable, Hashable {
    /// The process started (scratch already cleaned).
    case start
    /// Time passed; deadlines, heartbeats, leases and back-off are checked on every event.
    case tick
    /// A message from the coordinator, decoded.
    case received(Message)
    /// Frames from the coordinator that did not decode; logged, never answered (spec §5).
    case receivedInvalid(ProtocolError)
    /// Merge progress of an attempt: bytes done of total.
    case mergeProgress(AttemptRef, done: Int64, total: Int64)
    /// The merge ended: the merged model directory, or why not.
    case mergeFinished(AttemptRef, Result<URL, AttemptFailure>, seconds: Double)
    /// Evaluation progress (items done of total; 0 = unknown).
    case evaluationProgress(AttemptRef, done: Int, total: Int, message: String?)
    /// The evaluation ended.
    case evaluationFinished(AttemptRef, Result<EvaluationOutput, AttemptFailure>, seconds: Double)
    /// SIGTERM or SIGINT: abandon what is held, say BYE, exit 0.
    case signal(String)
}

/// What the I/O shell must do, in order.
public enum WorkerAction: Sendable, Hashable {
    /// Close any current socket and connect a fresh DEALER (routing id = worker name).
    case connect
    /// Close the current socket (the coordinator is considered gone).
    case disconnect
    case send(Message)
    /// Merge the task's models into the attempt's scratch directory.
    case startMerge(TaskBody)
    /// Evaluate the merged model in `modelDirectory`.
    case startEvaluation(TaskBody, modelDirectory: URL)
    /// Stop the attempt's merge or evaluation; a `…Finished` event follows.
    case stopWork(AttemptRef)
    /// Remove the attempt's scratch directory.
    case removeScratch(AttemptRef)
    case log(String)
    /// Flush what was sent and exit with this status.
    case exit(Int32)
}

/// The worker's state machine (Protocol/README.md §6), pure: events and the current time in,
/// actions out. No sockets, processes or clocks inside, so every path is testable.
///
/// Session: `disconnected → awaitingWelcome → registered`, back to `disconnected` (with back-off)
/// when the coordinator is silent for `leaseBeats × heartbeatInterval`, WELCOME does not come, or
/// an ERROR refuses the READY; `draining` after a signal; `stopped` at the end.
/// Attempts: `queued → merging → merged → evaluating → (RESULT | FAILURE)`, one merge and one
/// evaluation at a time, so with 2 slots the next task merges while the current one evaluates.
/// A RESULT/FAILURE is kept until ACKed and sent again after each WELCOME.
public struct WorkerCore: Sendable {
    public enum Session: Sendable, Hashable {
        case disconnected(reconnectAt: Double)
        case awaitingWelcome(since: Double)
        case registered(WelcomeBody)
        case draining(until: Double)
        case stopped(Int32)
    }

    public enum Stage: Sendable, Hashable {
        case queued
        case merging
        case merged(modelDirectory: URL)
        case evaluating
        /// Stop requested; the FAILURE goes out when the work reports back.
        case stopping(AttemptFailure)
    }

    /// Work running in the shell for an attempt.
    public enum Work: Sendable, Hashable { case merge, evaluation }

    public struct HeldAttempt: Sendable, Hashable {
        public var task: TaskBody
        public var stage: Stage
        public var receivedAt: Double
        public var mergeSeconds: Double = 0
        /// The work running in the shell for it, if any.
        public var work: Work?
        public var lastProgressAt: Double = -.infinity
        public var ref: AttemptRef { AttemptRef(trial: task.trial, attempt: task.attempt) }
    }

    public let configuration: WorkerConfiguration
    public private(set) var session: Session = .disconnected(reconnectAt: 0)
    /// Attempts held, in arrival order.
    public private(set) var held: [HeldAttempt] = []
    /// RESULT/FAILURE messages sent (or to send) and not yet ACKed, in order.
    public private(set) var unacknowledged: [Message] = []
    private var lastSent = -Double.infinity
    private var lastReceived = -Double.infinity
    private var failedConnections = 0
    private var random: UInt64
    private var started = false
    /// Work still running in the shell for attempts no longer held (after SHUTDOWN, a signal or
    /// UNKNOWN_WORKER): it still occupies the merger or the accelerator until it reports back.
    private var detached: [AttemptRef: Work] = [:]

    public init(configuration: WorkerConfiguration, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        self.configuration = configuration
        self.random = seed | 1
    }

    /// The attempts held right now (HEARTBEAT `activeTrials`).
    public var activeTrials: [AttemptRef] { held.map(\.ref) }

    public var isStopped: Bool { if case .stopped = session { true } else { false } }

    // MARK: events

    public mutating func handle(_ event: WorkerEvent, now: Double) -> [WorkerAction] {
        if isStopped { return [] }
        var actions: [WorkerAction] = []
        switch event {
        case .start:
            guard !started else { break }
            started = true
            connect(now: now, into: &actions)
        case .tick:
            break
        case .received(let message):
            receive(message, now: now, into: &actions)
        case .receivedInvalid(let error):
            actions.append(.log("ignored a bad message from the coordinator: \(error)"))
        case let .mergeProgress(ref, done, total):
            progress(ref, phase: .merge, done: done, total: total, message: nil, now: now, into: &actions)
        case let .mergeFinished(ref, result, seconds):
            mergeFinished(ref, result, seconds: seconds, now: now, into: &actions)
        case let .evaluationProgress(ref, done, total, message):
            progress(ref, phase: .evaluate, done: Int64(done), total: Int64(total), message: message, now: now, into: &actions)
        case let .evaluationFinished(ref, result, seconds):
            evaluationFinished(ref, result, seconds: seconds, now: now, into: &actions)
        case .signal(let name):
            drain(reason: name, now: now, into: &actions)
        }
        checkTimers(now: now, into: &actions)
        schedule(now: now, into: &actions)
        return actions
    }

    /// The next time something is due without any event (a timer for the shell); nil: nothing.
    public func nextDeadline() -> Double? {
        var times: [Double] = []
        switch session {
        case .disconnected(let at): times.append(at)
        case .awaitingWelcome(let since): times.append(since + configuration.welcomeTimeout)
        case .registered(let welcome):
            times.append(lastSent + welcome.heartbeatInterval)
            times.append(lastReceived + welcome.heartbeatInterval * Double(welcome.leaseBeats))
        case .draining(let until): times.append(until)
        case .stopped: return nil
        }
        for attempt in held { if let deadline = attempt.task.deadline { times.append(attempt.receivedAt + deadline) } }
        return times.filter(\.isFinite).min()
    }

    // MARK: session

    private mutating func connect(now: Double, into actions: inout [WorkerAction]) {
        actions.append(.connect)
        let activeTrials = held.map(\.ref) + unacknowledged.compactMap(\.attempt).filter { ref in !held.contains { $0.ref == ref } }
        let ready = ReadyBody(
            worker: configuration.name, pid: configuration.pid, host: configuration.host,
            capabilities: configuration.capabilities, activeTrials: activeTrials.isEmpty ? nil : activeTrials)
        session = .awaitingWelcome(since: now)
        send(.ready(ready), now: now, into: &actions)
    }

    private mutating func lose(_ why: String, now: Double, into actions: inout [WorkerAction]) {
        failedConnections += 1
        let delay = backoffDelay()
        actions.append(.disconnect)
        actions.append(.log("\(why); reconnecting in \(String(format: "%.1f", delay)) s"))
        session = .disconnected(reconnectAt: now + delay)
    }

    /// 1, 2, 4 … `backoffMax` seconds with jitter.
    private mutating func backoffDelay() -> Double {
        let exponent = Double(min(failedConnections - 1, 30))
        let base = min(configuration.backoffMax, configuration.backoffInitial * pow(2, exponent))
        random = random &* 6364136223846793005 &+ 1442695040888963407
        let unit = Double(random >> 11) / Double(1 << 53)  // [0, 1)
        return max(0, base * (1 + configuration.backoffJitter * (2 * unit - 1)))
    }

    private mutating func send(_ message: Message, now: Double, into actions: inout [WorkerAction]) {
        actions.append(.send(message))
        lastSent = now
    }

    private var isRegistered: Bool { if case .registered = session { true } else { false } }
    private var isDraining: Bool { if case .draining = session { true } else { false } }

    private mutating func receive(_ message: Message, now: Double, into actions: inout [WorkerAction]) {
        lastReceived = now
        switch (session, message) {
        case (.awaitingWelcome, .welcome(let welcome)):
            session = .registered(welcome)
            failedConnections = 0
            actions.append(.log("registered with study \(welcome.study) (heartbeat \(welcome.heartbeatInterval) s × \(welcome.leaseBeats))"))
            for pending in unacknowledged { send(pending, now: now, into: &actions) }
        case (.awaitingWelcome, .error(let error)):
            if error.code == .badVersion {
                actions.append(.log("the coordinator does not speak \(WireFormat.protocolID): \(error.message)"))
                stop(2, now: now, into: &actions)
            } else {
                lose("READY refused: \(error.code) \(error.message)", now: now, into: &actions)
            }
        case (.registered, .task(let task)), (.awaitingWelcome, .task(let task)):
            accept(task, now: now, into: &actions)
        case (.registered, .cancel(let cancel)), (.draining, .cancel(let cancel)):
            let ref = AttemptRef(trial: cancel.trial, attempt: cancel.attempt)
            stopAttempt(ref, AttemptFailure(code: .cancelled, reason: "cancelled by the coordinator: \(cancel.reason)"), now: now, into: &actions)
        case (_, .ack(let ack)):
            let ref = AttemptRef(trial: ack.trial, attempt: ack.attempt)
            unacknowledged.removeAll { $0.attempt == ref }
            if isDraining, unacknowledged.isEmpty { stop(0, now: now, into: &actions) }
        case (.registered, .shutdown(let shutdown)), (.awaitingWelcome, .shutdown(let shutdown)):
            actions.append(.log("the coordinator shut the study down: \(shutdown.reason)"))
            for attempt in held {
                if let work = attempt.work {
                    actions.append(.stopWork(attempt.ref))
                    detached[attempt.ref] = work
                }
                actions.append(.removeScratch(attempt.ref))
            }
            held.removeAll()
            unacknowledged.removeAll()
            send(.bye(ByeBody(reason: "shutdown")), now: now, into: &actions)
            if configuration.persist {
                failedConnections = 0
                lose("waiting for the next study (--persist)", now: now, into: &actions)
            } else {
                stop(0, now: now, into: &actions)
            }
        case (.registered, .error(let error)):
            if error.code == .unknownWorker {
                // The coordinator declared this worker dead: its attempts expired there.
                for attempt in held {
                    if let work = attempt.work {
                    actions.append(.stopWork(attempt.ref))
                    detached[attempt.ref] = work
                }
                    actions.append(.removeScratch(attempt.ref))
                }
                held.removeAll()
                actions.append(.log("the coordinator no longer knows this worker; registering again"))
                connect(now: now, into: &actions)
            } else if error.code == .badVersion {
                actions.append(.log("the coordinator does not speak \(WireFormat.protocolID): \(error.message)"))
                stop(2, now: now, into: &actions)
            } else if error.code == .staleAttempt, let ref = error.attemptRef {
                dropStale(ref, into: &actions)
            } else {
                actions.append(.log("coordinator error \(error.code): \(error.message)"))
            }
        case (_, .coordinatorHeartbeat):
            break
        default:
            actions.append(.log("ignored \(message.type.rawValue) (not expected now)"))
        }
    }

    private mutating func checkTimers(now: Double, into actions: inout [WorkerAction]) {
        switch session {
        case .disconnected(let at) where now >= at:
            connect(now: now, into: &actions)
        case .awaitingWelcome(let since) where now >= since + configuration.welcomeTimeout:
            lose("no WELCOME within \(configuration.welcomeTimeout) s", now: now, into: &actions)
        case .registered(let welcome):
            let lease = welcome.heartbeatInterval * Double(welcome.leaseBeats)
            if now - lastReceived >= lease {
                lose("the coordinator was silent for \(lease) s", now: now, into: &actions)
            } else if now - lastSent >= welcome.heartbeatInterval {
                send(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: activeTrials)), now: now, into: &actions)
            }
        case .draining(let until) where now >= until:
            if !unacknowledged.isEmpty {
                actions.append(.log("exiting with \(unacknowledged.count) RESULT/FAILURE not acknowledged"))
            }
            stop(0, now: now, into: &actions)
        default:
            break
        }
        for attempt in held {
            guard let deadline = attempt.task.deadline, now >= attempt.receivedAt + deadline else { continue }
            if case .stopping = attempt.stage { continue }
            stopAttempt(attempt.ref, AttemptFailure(code: .deadline, reason: "the task's deadline of \(deadline) s passed"), now: now, into: &actions)
        }
    }

    // MARK: attempts

    private mutating func accept(_ task: TaskBody, now: Double, into actions: inout [WorkerAction]) {
        let ref = AttemptRef(trial: task.trial, attempt: task.attempt)
        if held.contains(where: { $0.ref == ref }) || unacknowledged.contains(where: { $0.attempt == ref }) {
            actions.append(.log("ignored a repeated TASK for trial \(ref.trial) attempt \(ref.attempt)"))
            return
        }
        if held.count >= configuration.capabilities.slots {
            finish(ref, .failure(FailureBody(
                trial: ref.trial, attempt: ref.attempt, code: .busy,
                reason: "all \(configuration.capabilities.slots) slots are taken")), now: now, into: &actions)
            return
        }
        let kind = task.evaluator["kind"]?.stringValue ?? ""
        if !configuration.capabilities.evaluators.contains(kind) {
            finish(ref, .failure(FailureBody(
                trial: ref.trial, attempt: ref.attempt, code: .badTask,
                reason: "evaluator kind \"\(kind)\" is not supported here (supported: \(configuration.capabilities.evaluators.joined(separator: ", ")))")),
                now: now, into: &actions)
            return
        }
        held.append(HeldAttempt(task: task, stage: .queued, receivedAt: now))
        actions.append(.log("trial \(ref.trial) attempt \(ref.attempt): accepted"))
    }

    /// Starts merges and evaluations: one of each at a time, oldest first.
    private mutating func schedule(now: Double, into actions: inout [WorkerAction]) {
        guard !isDraining, !isStopped else { return }
        if !isBusy(.merge), let index = held.firstIndex(where: { $0.stage == .queued }) {
            held[index].stage = .merging
            held[index].work = .merge
            actions.append(.startMerge(held[index].task))
            progressMessage(held[index].ref, phase: .merge, done: 0, total: 0, message: "merging", now: now, force: true, into: &actions)
        }
        if !isBusy(.evaluation) {
            for index in held.indices {
                guard case .merged(let directory) = held[index].stage else { continue }
                held[index].stage = .evaluating
                held[index].work = .evaluation
                actions.append(.startEvaluation(held[index].task, modelDirectory: directory))
                progressMessage(held[index].ref, phase: .evaluate, done: 0, total: 0, message: "evaluating", now: now, force: true, into: &actions)
                break
            }
        }
    }

    private mutating func mergeFinished(_ ref: AttemptRef, _ result: Result<URL, AttemptFailure>, seconds: Double, now: Double, into actions: inout [WorkerAction]) {
        guard let index = held.firstIndex(where: { $0.ref == ref }) else {
            detached[ref] = nil
            return
        }
        held[index].work = nil
        held[index].mergeSeconds = seconds
        switch (held[index].stage, result) {
        case (.stopping(let failure), _):
            finishHeld(index, failure: failure, now: now, into: &actions)
        case (_, .failure(let failure)):
            finishHeld(index, failure: failure, now: now, into: &actions)
        case (_, .success(let directory)):
            held[index].stage = .merged(modelDirectory: directory)
            actions.append(.log(String(format: "trial %lld attempt %d: merged in %.2f s", ref.trial, ref.attempt, seconds)))
        }
    }

    private mutating func evaluationFinished(_ ref: AttemptRef, _ result: Result<EvaluationOutput, AttemptFailure>, seconds: Double, now: Double, into actions: inout [WorkerAction]) {
        guard let index = held.firstIndex(where: { $0.ref == ref }) else {
            detached[ref] = nil
            return
        }
        held[index].work = nil
        switch (held[index].stage, result) {
        case (.stopping(let failure), _):
            finishHeld(index, failure: failure, now: now, into: &actions)
        case (_, .failure(let failure)):
            finishHeld(index, failure: failure, now: now, into: &actions)
        case (_, .success(let output)):
            let body = ResultBody(
                trial: ref.trial, attempt: ref.attempt, metrics: output.metrics,
                durations: Durations(merge: held[index].mergeSeconds, evaluate: seconds), items: output.items)
            var message = Message.result(body)
            if (try? WireCodec.encode(message)) == nil {
                // Over 64 MiB with items (spec §5): the metrics are what matter.
                var trimmed = body
                trimmed.items = nil
                message = .result(trimmed)
            }
            if (try? WireCodec.encode(message)) == nil {
                finishHeld(index, failure: AttemptFailure(code: .badOutput, reason: "the evaluator's metrics do not make a valid RESULT"), now: now, into: &actions)
                return
            }
            held.remove(at: index)
            finish(ref, message, now: now, into: &actions)
            actions.append(.removeScratch(ref))
        }
    }

    private mutating func stopAttempt(_ ref: AttemptRef, _ failure: AttemptFailure, now: Double, into actions: inout [WorkerAction]) {
        guard let index = held.firstIndex(where: { $0.ref == ref }) else { return }
        if case .stopping = held[index].stage { return }
        if held[index].work != nil {
            held[index].stage = .stopping(failure)
            actions.append(.stopWork(ref))
        } else {
            finishHeld(index, failure: failure, now: now, into: &actions)
        }
    }

    /// Stops an attempt the coordinator no longer counts (ERROR `STALE_ATTEMPT`) without replying.
    private mutating func dropStale(_ ref: AttemptRef, into actions: inout [WorkerAction]) {
        guard let index = held.firstIndex(where: { $0.ref == ref }) else { return }
        let attempt = held.remove(at: index)
        if let work = attempt.work {
            actions.append(.stopWork(ref))
            detached[ref] = work
        }
        actions.append(.removeScratch(ref))
        actions.append(.log("trial \(ref.trial) attempt \(ref.attempt): stale for the coordinator; stopped"))
    }

    private mutating func finishHeld(_ index: Int, failure: AttemptFailure, now: Double, into actions: inout [WorkerAction]) {
        let ref = held[index].ref
        held.remove(at: index)
        actions.append(.log("trial \(ref.trial) attempt \(ref.attempt): \(failure.code) — \(failure.reason)"))
        finish(ref, .failure(FailureBody(
            trial: ref.trial, attempt: ref.attempt, code: failure.code,
            reason: Self.clip(failure.reason.isEmpty ? "\(failure.code)" : failure.reason, 4096),
            logTail: Self.clipTail(failure.logTail, 65_536))), now: now, into: &actions)
        actions.append(.removeScratch(ref))
    }

    /// Keeps a RESULT/FAILURE until ACKed; sends it now when registered (or draining).
    private mutating func finish(_ ref: AttemptRef, _ message: Message, now: Double, into actions: inout [WorkerAction]) {
        unacknowledged.append(message)
        if isRegistered || isDraining { send(message, now: now, into: &actions) }
    }

    private mutating func progress(_ ref: AttemptRef, phase: Phase, done: Int64, total: Int64, message: String?, now: Double, into actions: inout [WorkerAction]) {
        guard let attempt = held.first(where: { $0.ref == ref }) else { return }
        let expected: Stage? = phase == .merge ? .merging : .evaluating
        guard attempt.stage == expected else { return }
        let clampedTotal = max(0, total)
        let clampedDone = clampedTotal > 0 ? min(max(0, done), clampedTotal) : max(0, done)
        progressMessage(ref, phase: phase, done: clampedDone, total: clampedTotal, message: message, now: now,
                        force: clampedTotal > 0 && clampedDone == clampedTotal, into: &actions)
    }

    private mutating func progressMessage(_ ref: AttemptRef, phase: Phase, done: Int64, total: Int64, message: String?, now: Double, force: Bool, into actions: inout [WorkerAction]) {
        guard isRegistered, let index = held.firstIndex(where: { $0.ref == ref }) else { return }
        guard force || now - held[index].lastProgressAt >= 1 / configuration.progressRate else { return }
        held[index].lastProgressAt = now
        let body = ProgressBody(
            trial: ref.trial, attempt: ref.attempt, phase: phase, done: Int(clamping: done), total: Int(clamping: total),
            message: message.map { Self.clip($0, 1024) })
        send(.progress(body), now: now, into: &actions)
    }

    private func isBusy(_ work: Work) -> Bool {
        held.contains { $0.work == work } || detached.values.contains(work)
    }

    // MARK: leaving

    private mutating func drain(reason: String, now: Double, into actions: inout [WorkerAction]) {
        guard !isDraining else { return }
        actions.append(.log("\(reason): abandoning \(held.count) attempt\(held.count == 1 ? "" : "s") and leaving"))
        // After READY the coordinator knows this worker even before its WELCOME arrives.
        let connected: Bool
        switch session {
        case .registered, .awaitingWelcome: connected = true
        default: connected = false
        }
        let attempts = held
        held.removeAll()
        for attempt in attempts {
            if let work = attempt.work {
                    actions.append(.stopWork(attempt.ref))
                    detached[attempt.ref] = work
                }
            let failure = Message.failure(FailureBody(
                trial: attempt.ref.trial, attempt: attempt.ref.attempt, code: .abandoned,
                reason: "the worker is shutting down (\(reason))"))
            unacknowledged.append(failure)
            if connected { send(failure, now: now, into: &actions) }
            actions.append(.removeScratch(attempt.ref))
        }
        guard connected else {
            stop(0, now: now, into: &actions)
            return
        }
        send(.bye(ByeBody(reason: reason)), now: now, into: &actions)
        if unacknowledged.isEmpty {
            stop(0, now: now, into: &actions)
        } else {
            session = .draining(until: now + configuration.drainGrace)
        }
    }

    private mutating func stop(_ status: Int32, now: Double, into actions: inout [WorkerAction]) {
        for attempt in held {
            if let work = attempt.work {
                    actions.append(.stopWork(attempt.ref))
                    detached[attempt.ref] = work
                }
            actions.append(.removeScratch(attempt.ref))
        }
        held.removeAll()
        session = .stopped(status)
        actions.append(.exit(status))
    }

    static func clip(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    static func clipTail(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : "…" + String(text.suffix(limit - 1))
    }
}
