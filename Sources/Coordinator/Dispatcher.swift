import Archive
import BamboProtocol
import Foundation

/// The coordinator's pure core: workers and their slots, heartbeats and leases, which trial goes to
/// which worker, when to ask the proposer, and when the study is finished.
///
/// No sockets, no clocks, no archive: every input is an `Event` carrying the time (seconds on any
/// monotonic clock), every output an `Action` that the service executes (writing the archive,
/// sending messages) and whose outcome it feeds back as a further event (`trialsAdded`,
/// `attemptDispatched`, `trialsChanged`). The archive stays the truth for trial states (requeue or
/// fail, idempotent results); the dispatcher mirrors what it needs to schedule.
///
/// Rules (Protocol/README.md §6–§7):
/// - A worker registers with READY (its name must equal its routing id, its evaluators must include
///   the study's kind) and gets WELCOME. It is LOST after `leaseBeats × heartbeatInterval` without
///   any message: its attempts expire. BYE makes it GONE: its attempts are abandoned.
/// - Never more than `capabilities.slots` attempts out to one worker.
/// - Whenever a worker has a free slot and no trial is pending, one strategy (`plans`) gets to
///   propose: the one with the smallest share of its budget created so far, ties in plan order (the
///   anchor strategy first, so its corner trials are the study's first). It proposes `batch` new
///   trials at once (its warm start `initial` first), with the trials out on workers as pending;
///   never more than its `budget` trials.
/// - A proposal may take seconds (GP fit, acquisition optimization): from its `propose` action until
///   its `trialsAdded` the strategy is *proposing* and is not asked again; free workers wait. Another
///   strategy is asked meanwhile only if more slots are free than the proposals in flight will fill.
///   Everything else (messages, heartbeats, leases) goes on as usual while a proposal is in flight.
/// - FAILURE `BUSY` means the worker holds more than the dispatcher counts (a TASK crossed its
///   reconnection): it gets no TASK until it speaks again after a back-off of one heartbeat interval,
///   doubling with each BUSY in a row (at most 16 intervals). A HEARTBEAT listing attempts that are
///   neither current for the worker, nor being cancelled, nor just answered by it gets ERROR
///   `STALE_ATTEMPT` for each (as for PROGRESS): the worker drops them and frees their slots.
/// - The study is finished when the sum of the budgets of trials are completed or failed: SHUTDOWN
///   to every worker.
/// - After a coordinator restart, attempts the archive holds as dispatched get a fresh lease of
///   `leaseBeats × heartbeatInterval + resumeGrace`; a worker that reconnects listing them in READY
///   `activeTrials` keeps them, the rest expire.
/// - Attempts a registering worker lists in `activeTrials` that are not current for it get a CANCEL
///   after WELCOME; each takes a slot until its FAILURE (or RESULT) arrives. PROGRESS for an attempt
///   that is neither current nor being cancelled gets ERROR `STALE_ATTEMPT` naming it.
public struct Dispatcher: Sendable {
    public struct Settings: Sendable, Hashable {
        public var study: String
        public var heartbeatInterval: Double
        public var leaseBeats: Int
        /// The strategies' shares of the study, the anchor strategy first.
        public var plans: [StrategyPlan]
        /// The evaluator kind workers must support.
        public var evaluatorKind: String
        /// Extra seconds a resumed attempt's worker has to reconnect.
        public var resumeGrace: Double

        public init(
            study: String, heartbeatInterval: Double = 1, leaseBeats: Int = 3, plans: [StrategyPlan],
            evaluatorKind: String, resumeGrace: Double = 5
        ) {
            self.study = study
            self.heartbeatInterval = heartbeatInterval
            self.leaseBeats = leaseBeats
            self.plans = plans
            self.evaluatorKind = evaluatorKind
            self.resumeGrace = resumeGrace
        }

        /// One `bambo` strategy with this warm start, batch and budget.
        public init(
            study: String, heartbeatInterval: Double = 1, leaseBeats: Int = 3, initial: Int, batch: Int, budget: Int,
            evaluatorKind: String, resumeGrace: Double = 5
        ) {
            self.init(
                study: study, heartbeatInterval: heartbeatInterval, leaseBeats: leaseBeats,
                plans: [StrategyPlan(strategy: .bambo, initial: initial, batch: batch, budget: budget)],
                evaluatorKind: evaluatorKind, resumeGrace: resumeGrace)
        }

        /// Trials in all: the sum of the plans' budgets.
        public var budget: Int { plans.map(\.budget).reduce(0, +) }

        /// Seconds of silence after which a worker is lost.
        public var lease: Double { Double(leaseBeats) * heartbeatInterval }

        /// The settings of a study file.
        public init(config: StudyConfig, heartbeatInterval: Double, leaseBeats: Int = 3, resumeGrace: Double? = nil) {
            self.init(
                study: config.study, heartbeatInterval: heartbeatInterval, leaseBeats: leaseBeats, plans: config.plans,
                evaluatorKind: config.evaluatorKind, resumeGrace: resumeGrace ?? 2 * heartbeatInterval)
        }
    }

    /// An attempt out on a worker, as the archive holds it.
    public struct OpenAttempt: Sendable, Hashable {
        public var trial: Int64
        public var attempt: Int
        public var worker: String
        public init(trial: Int64, attempt: Int, worker: String) {
            self.trial = trial
            self.attempt = attempt
            self.worker = worker
        }
    }

    /// The trials of the archive when the coordinator (re)starts.
    public struct Snapshot: Sendable, Hashable {
        /// How many trials exist (any state).
        public var total: Int
        /// Pending trials, oldest first.
        public var pending: [Int64]
        /// Attempts still dispatched.
        public var dispatched: [OpenAttempt]
        /// Completed or failed trials.
        public var finished: Int
        /// How many trials exist per strategy; nil: all `total` belong to the first plan.
        public var created: [StudyStrategy: Int]?
        public init(
            total: Int = 0, pending: [Int64] = [], dispatched: [OpenAttempt] = [], finished: Int = 0, created: [StudyStrategy: Int]? = nil
        ) {
            self.total = total
            self.pending = pending
            self.dispatched = dispatched
            self.finished = finished
            self.created = created
        }
    }

    /// A trial's new state after the archive recorded something (a result, a failure, an expiry).
    public struct TrialChange: Sendable, Hashable {
        public var trial: Int64
        /// The attempt that ended.
        public var attempt: Int
        /// `pending` (requeued), `completed` or `failed`.
        public var state: TrialState
        public init(trial: Int64, attempt: Int, state: TrialState) {
            self.trial = trial
            self.attempt = attempt
            self.state = state
        }
    }

    public enum Event: Sendable {
        /// The coordinator started on an archive in this state.
        case started(Snapshot, now: Double)
        /// A decoded message from the worker with this routing id.
        case received(Message, from: String, now: Double)
        /// Time passed (call a few times per heartbeat interval).
        case tick(now: Double)
        /// Time passed while messages wait unread (the service is behind): heartbeats go out as for
        /// `tick`, but no worker is judged silent, since its messages may be among those waiting.
        case beat(now: Double)
        /// The trials of `strategy`'s `propose` action were stored, in order: its proposal is over.
        case trialsAdded([Int64], strategy: StudyStrategy, now: Double)
        /// A `dispatch` action was recorded with this attempt number (the TASK is on its way).
        case attemptDispatched(trial: Int64, attempt: Int, worker: String)
        /// Trials changed state in the archive.
        case trialsChanged([TrialChange], now: Double)
        /// SIGINT/SIGTERM: stop dispatching.
        case stop(now: Double)
    }

    public enum Action: Sendable, Hashable {
        /// Send this message to the worker.
        case send(Message, to: String)
        /// Record the dispatch of `trial` to `worker` (lease until `leaseDeadline`), then send its TASK;
        /// feed back `attemptDispatched`.
        case dispatch(trial: Int64, worker: String, leaseDeadline: Double)
        /// Ask `strategy`'s proposer for `count` points (`warmStart`: its initial design) with the
        /// trials `pending` out on workers (of every strategy); store them as trials of `strategy`
        /// and feed back `trialsAdded` (possibly much later: other events may come in between).
        case propose(strategy: StudyStrategy, count: Int, pending: [Int64], warmStart: Bool)
        /// Record the worker's RESULT, answer ACK, feed back the change.
        case recordResult(ResultBody, worker: String)
        /// Record the worker's FAILURE, answer ACK, feed back the change.
        case recordFailure(FailureBody, worker: String)
        /// Record progress (an event for `bambo log`).
        case recordProgress(ProgressBody, worker: String)
        /// Record that the worker registered.
        case recordWorkerJoined(ReadyBody)
        /// Record that the worker was lost (its attempts expire); feed back the changes.
        case recordWorkerLost(String)
        /// Record that the worker left (its attempts are abandoned); feed back the changes.
        case recordWorkerGone(String, reason: String)
        /// End one attempt as expired (its worker dropped it); feed back the change.
        case expireAttempt(trial: Int64, attempt: Int, reason: String)
        /// Give every dispatched attempt in the archive a lease until then (restart).
        case renewLeases(until: Double)
        /// Something a worker did wrong, for the log (an ERROR reply is a separate `send`).
        case logProblem(String, worker: String?)
        /// The budget is spent: mark the study finished and exit (SHUTDOWN was sent to each worker).
        case finish
        /// Dispatching stopped after `stop`: persist and exit.
        case halt
    }

    struct Session: Sendable {
        var host: String
        var pid: Int
        var slots: Int
        var lastHeard: Double
        var lastSent: Double
        /// Trials out on this worker.
        var trials: Set<Int64> = []
        /// Stale attempts sent CANCEL, holding a slot until their FAILURE or RESULT arrives.
        var cancelling: Set<AttemptRef> = []
        /// Attempts whose RESULT or FAILURE came from this worker and that its heartbeats may still
        /// list (until it has the ACK): not stale.
        var answered: Set<AttemptRef> = []
        /// After FAILURE `BUSY`: no TASK until a message at or after this time.
        var busyUntil: Double?
        /// FAILURE `BUSY` answers in a row.
        var busyStreak = 0
        /// Slots the dispatcher may fill now.
        var free: Int { busyUntil != nil ? 0 : slots - trials.count - cancelling.count }
    }

    /// Workers with a free slot, longest waiting first, each name at most once (O(1) append, pop and
    /// membership). Names may be stale (the worker left or filled up): checked when used.
    struct WaitingQueue: Sendable {
        private var names: [String] = []
        private var head = 0
        private var members: Set<String> = []

        mutating func append(_ name: String) {
            guard members.insert(name).inserted else { return }
            names.append(name)
        }

        var first: String? { head < names.count ? names[head] : nil }

        mutating func removeFirst() {
            guard head < names.count else { return }
            members.remove(names[head])
            head += 1
            if head >= 64 && head * 2 >= names.count {
                names.removeFirst(head)
                head = 0
            }
        }

        /// The names in order, oldest first.
        var all: ArraySlice<String> { names[head...] }
    }

    public let settings: Settings
    private var sessions: [String: Session] = [:]
    /// Workers with a free slot, longest waiting first.
    private var waiting = WaitingQueue()
    /// Names that left with BYE (anything but READY from them is out of order).
    private var departed: Set<String> = []
    /// Pending trials, in dispatch order.
    private var pending: [Int64] = []
    /// Trials out on a worker: worker and attempt (nil until `attemptDispatched`).
    private var outstanding: [Int64: (worker: String, attempt: Int?)] = [:]
    /// Attempts from before a restart whose worker has not reconnected yet, with their deadline.
    private var orphans: [Int64: (attempt: Int, worker: String, deadline: Double)] = [:]
    private var finishedTrials: Set<Int64> = []
    private var finishedBefore = 0
    private var totalTrials = 0
    /// Trials created per strategy.
    private var created: [StudyStrategy: Int] = [:]
    /// Strategies with a proposal in flight, with the number of trials asked for.
    private var proposing: [StudyStrategy: Int] = [:]
    private var started = false
    public private(set) var isStopping = false
    public private(set) var isFinished = false

    public init(settings: Settings) {
        self.settings = settings
    }

    // MARK: queries (for status lines and tests)

    /// Registered workers, by name.
    public var workerNames: [String] { sessions.keys.sorted() }
    /// Trials out on `worker`.
    public func trials(on worker: String) -> Set<Int64> { sessions[worker]?.trials ?? [] }
    /// Stale attempts on `worker` that were sent CANCEL and have not answered yet.
    public func cancelling(on worker: String) -> Set<AttemptRef> { sessions[worker]?.cancelling ?? [] }
    /// Trials waiting for a worker, in dispatch order.
    public var pendingTrials: [Int64] { pending }
    /// Trials out on workers.
    public var outstandingTrials: [Int64] { outstanding.keys.sorted() }
    /// Completed or failed trials.
    public var finishedCount: Int { finishedBefore + finishedTrials.count }
    /// Trials created so far.
    public var trialCount: Int { totalTrials }
    /// Trials created so far by `strategy`.
    public func trialCount(of strategy: StudyStrategy) -> Int { created[strategy, default: 0] }
    /// Attempts waiting for their worker to reconnect after a restart.
    public var orphanTrials: [Int64] { orphans.keys.sorted() }
    /// Strategies whose proposal is in flight (asked for, not yet `trialsAdded`).
    public var proposingStrategies: Set<StudyStrategy> { Set(proposing.keys) }
    /// Whether `worker` is held back after answering BUSY.
    public func isBackingOff(_ worker: String) -> Bool { sessions[worker]?.busyUntil != nil }

    // MARK: events

    public mutating func event(_ event: Event) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .started(let snapshot, let now):
            start(snapshot, now: now, into: &actions)
        case .received(let message, let worker, let now):
            receive(message, from: worker, now: now, into: &actions)
        case .tick(let now):
            tick(now: now, into: &actions)
        case .beat(let now):
            tick(now: now, judgeSilence: false, into: &actions)
        case .trialsAdded(let ids, let strategy, _):
            created[strategy, default: 0] += ids.count
            proposing[strategy] = nil
            totalTrials += ids.count
            pending.append(contentsOf: ids)
        case .attemptDispatched(let trial, let attempt, let worker):
            if let entry = outstanding[trial], entry.worker == worker {
                outstanding[trial] = (worker, attempt)
            }
        case .trialsChanged(let changes, _):
            for change in changes { apply(change) }
        case .stop:
            if !isStopping && !isFinished {
                isStopping = true
                actions.append(.halt)
            }
        }
        if case .attemptDispatched = event { return actions }
        schedule(now: event.time, into: &actions)
        return actions
    }

    private mutating func start(_ snapshot: Snapshot, now: Double, into actions: inout [Action]) {
        started = true
        totalTrials = snapshot.total
        created = snapshot.created ?? settings.plans.first.map { [$0.strategy: snapshot.total] } ?? [:]
        finishedBefore = snapshot.finished
        pending = snapshot.pending
        guard !snapshot.dispatched.isEmpty else { return }
        let deadline = now + settings.lease + settings.resumeGrace
        for open in snapshot.dispatched {
            orphans[open.trial] = (open.attempt, open.worker, deadline)
        }
        actions.append(.renewLeases(until: deadline))
    }

    private mutating func receive(_ message: Message, from worker: String, now: Double, into actions: inout [Action]) {
        if case .ready(let body) = message {
            register(body, from: worker, now: now, into: &actions)
            return
        }
        guard var session = sessions[worker] else {
            let departedWorker = departed.contains(worker)
            let code: ErrorCode = departedWorker ? .outOfOrder : .unknownWorker
            let text = departedWorker
                ? "\(message.type.rawValue) after BYE: send READY to register again"
                : "\(message.type.rawValue) from a worker that is not registered: send READY"
            actions.append(.logProblem(text, worker: worker))
            reply(.error(ErrorBody(code: code, message: text, inReplyTo: message.type.rawValue)), to: worker, now: now, into: &actions)
            return
        }
        session.lastHeard = now
        if let until = session.busyUntil, now >= until {
            session.busyUntil = nil  // it spoke after the back-off: try it again
        }
        sessions[worker] = session
        switch message {
        case .workerHeartbeat(let body):
            reconcile(body.activeTrials, from: worker, now: now, into: &actions)
        case .progress(let body):
            let ref = AttemptRef(trial: body.trial, attempt: body.attempt)
            if isCurrent(trial: body.trial, attempt: body.attempt, worker: worker) {
                actions.append(.recordProgress(body, worker: worker))
            } else if !session.cancelling.contains(ref) {  // a CANCEL is on its way: its FAILURE frees the slot
                let text = "PROGRESS for trial \(body.trial) attempt \(body.attempt), which is not current for \(worker): stop it"
                actions.append(.logProblem(text, worker: worker))
                reply(.error(ErrorBody(code: .staleAttempt, message: text, inReplyTo: "PROGRESS", attempt: ref)), to: worker, now: now, into: &actions)
            }
        case .result(let body):
            sessions[worker]?.busyStreak = 0
            sessions[worker]?.answered.insert(AttemptRef(trial: body.trial, attempt: body.attempt))
            release(trial: body.trial, attempt: body.attempt, worker: worker)
            actions.append(.recordResult(body, worker: worker))
            sessions[worker]?.lastSent = now  // the ACK
        case .failure(let body):
            sessions[worker]?.answered.insert(AttemptRef(trial: body.trial, attempt: body.attempt))
            if body.code == .busy {
                // It holds more than counted here: no TASK until it speaks again after a back-off.
                let streak = (sessions[worker]?.busyStreak ?? 0) + 1
                sessions[worker]?.busyStreak = streak
                sessions[worker]?.busyUntil = now + settings.heartbeatInterval * Double(1 << min(streak - 1, 4))
                actions.append(.logProblem(
                    "BUSY for trial \(body.trial) attempt \(body.attempt): no TASK for \(streak == 1 ? "one heartbeat interval" : "\(1 << min(streak - 1, 4)) intervals")",
                    worker: worker))
            } else {
                sessions[worker]?.busyStreak = 0
            }
            release(trial: body.trial, attempt: body.attempt, worker: worker)
            actions.append(.recordFailure(body, worker: worker))
            sessions[worker]?.lastSent = now
        case .bye(let body):
            drop(worker)
            departed.insert(worker)
            actions.append(.recordWorkerGone(worker, reason: body.reason.isEmpty ? "worker left" : "worker left: \(body.reason)"))
        default:
            // The codec only lets worker messages through; anything else is a coordinator bug.
            actions.append(.logProblem("unexpected \(message.type.rawValue) from \(worker)", worker: worker))
        }
        markWaiting(worker)
    }

    /// A HEARTBEAT's `activeTrials`: attempts that are neither current for `worker`, nor being
    /// cancelled, nor answered by it get ERROR `STALE_ATTEMPT` (the worker drops them). Answered
    /// attempts it no longer lists are forgotten (it has their ACK). A cancelled attempt it no longer
    /// lists has ended there (stopped, or only its report was outstanding): its slot is free, even if
    /// that report was lost on the way.
    private mutating func reconcile(_ listed: [AttemptRef], from worker: String, now: Double, into actions: inout [Action]) {
        guard let session = sessions[worker] else { return }
        let held = Set(listed)
        sessions[worker]?.answered = session.answered.intersection(held)
        sessions[worker]?.cancelling = session.cancelling.intersection(held)
        for ref in listed.sorted(by: { ($0.trial, $0.attempt) < ($1.trial, $1.attempt) })
        where !isCurrent(trial: ref.trial, attempt: ref.attempt, worker: worker) && !session.cancelling.contains(ref) && !session.answered.contains(ref) {
            let text = "HEARTBEAT lists trial \(ref.trial) attempt \(ref.attempt), which is not current for \(worker): stop it"
            actions.append(.logProblem(text, worker: worker))
            reply(.error(ErrorBody(code: .staleAttempt, message: text, inReplyTo: "HEARTBEAT", attempt: ref)), to: worker, now: now, into: &actions)
        }
    }

    private mutating func register(_ body: ReadyBody, from worker: String, now: Double, into actions: inout [Action]) {
        guard body.worker == worker else {
            let text = "READY names worker \"\(body.worker)\" but the routing id is \"\(worker)\": set ZMQ_ROUTING_ID to the worker name"
            actions.append(.logProblem(text, worker: worker))
            reply(.error(ErrorBody(code: .outOfOrder, message: text, inReplyTo: "READY")), to: worker, now: now, into: &actions)
            return
        }
        guard !isStopping && !isFinished else {
            let text = isFinished ? "the study is finished" : "the coordinator is stopping"
            reply(.error(ErrorBody(code: .shuttingDown, message: text, inReplyTo: "READY")), to: worker, now: now, into: &actions)
            return
        }
        guard body.capabilities.evaluators.contains(settings.evaluatorKind) else {
            let text = "the study needs evaluator \"\(settings.evaluatorKind)\"; this worker offers [\(body.capabilities.evaluators.joined(separator: ", "))]"
            actions.append(.logProblem(text, worker: worker))
            reply(.error(ErrorBody(code: .unsupported, message: text, inReplyTo: "READY")), to: worker, now: now, into: &actions)
            return
        }
        departed.remove(worker)
        let held = Set((body.activeTrials ?? []).map { AttemptRef(trial: $0.trial, attempt: $0.attempt) })
        var kept: Set<Int64> = []
        if let old = sessions[worker] {
            // Reconnection (same host and pid): attempts it still holds stay; a restart drops them all.
            let reconnection = old.host == body.host && old.pid == body.pid
            for trial in old.trials.sorted() {
                let attempt = outstanding[trial]?.attempt
                if reconnection, let attempt, held.contains(AttemptRef(trial: trial, attempt: attempt)) {
                    kept.insert(trial)
                } else {
                    outstanding[trial] = nil
                    if let attempt {
                        actions.append(.expireAttempt(
                            trial: trial, attempt: attempt,
                            reason: reconnection ? "worker reconnected without it" : "worker restarted"))
                    }
                }
            }
        }
        // Attempts from before a coordinator restart, sent to this worker name.
        for (trial, orphan) in orphans.sorted(by: { $0.key < $1.key }) where orphan.worker == worker {
            orphans[trial] = nil
            if held.contains(AttemptRef(trial: trial, attempt: orphan.attempt)) {
                kept.insert(trial)
                outstanding[trial] = (worker, orphan.attempt)
            } else {
                actions.append(.expireAttempt(trial: trial, attempt: orphan.attempt, reason: "worker reconnected without it"))
            }
        }
        // What it holds that is no longer its to run (expired while it was away, sent elsewhere). A
        // finished trial is not: the worker holds only its unacknowledged report, which it sends
        // again after WELCOME (and gets its ACK); it takes no slot.
        let stale = held.filter { ref in
            !(kept.contains(ref.trial) && outstanding[ref.trial]?.attempt == ref.attempt) && !finishedTrials.contains(ref.trial)
        }
            .sorted { ($0.trial, $0.attempt) < ($1.trial, $1.attempt) }
        sessions[worker] = Session(
            host: body.host, pid: body.pid, slots: body.capabilities.slots, lastHeard: now, lastSent: now, trials: kept,
            cancelling: Set(stale))
        actions.append(.recordWorkerJoined(body))
        actions.append(.send(.welcome(WelcomeBody(study: settings.study, heartbeatInterval: settings.heartbeatInterval, leaseBeats: settings.leaseBeats)), to: worker))
        for ref in stale {
            let reason = "attempt \(ref.attempt) of trial \(ref.trial) is no longer current for \(worker)"
            actions.append(.send(.cancel(CancelBody(trial: ref.trial, attempt: ref.attempt, reason: reason)), to: worker))
        }
        markWaiting(worker)
    }

    private mutating func tick(now: Double, judgeSilence: Bool = true, into actions: inout [Action]) {
        for (name, session) in sessions {
            if judgeSilence, now - session.lastHeard > settings.lease {
                drop(name)
                actions.append(.recordWorkerLost(name))
            } else if now - session.lastSent >= settings.heartbeatInterval {
                reply(.coordinatorHeartbeat, to: name, now: now, into: &actions)
            }
        }
        for (trial, orphan) in orphans.sorted(by: { $0.key < $1.key }) where orphan.deadline <= now {
            orphans[trial] = nil
            actions.append(.expireAttempt(trial: trial, attempt: orphan.attempt, reason: "worker \(orphan.worker) did not reconnect after the coordinator restarted"))
        }
    }

    private mutating func apply(_ change: TrialChange) {
        if let entry = outstanding[change.trial], entry.attempt == nil || entry.attempt == change.attempt {
            outstanding[change.trial] = nil
            if sessions[entry.worker]?.trials.remove(change.trial) != nil { markWaiting(entry.worker) }
        }
        if let orphan = orphans[change.trial], orphan.attempt == change.attempt { orphans[change.trial] = nil }
        switch change.state {
        case .pending:
            if outstanding[change.trial] == nil, !pending.contains(change.trial) {
                // Requeued trials go first: they are the oldest work.
                pending.insert(change.trial, at: 0)
            }
        case .completed, .failed:
            finishedTrials.insert(change.trial)
            pending.removeAll { $0 == change.trial }
        case .dispatched:
            break
        }
    }

    /// Dispatches pending trials to free slots, proposes when nothing is pending, finishes at budget.
    private mutating func schedule(now: Double, into actions: inout [Action]) {
        guard started, !isStopping, !isFinished else { return }
        if finishedCount >= settings.budget {
            isFinished = true
            for name in sessions.keys.sorted() {
                reply(.shutdown(ShutdownBody(reason: "budget reached")), to: name, now: now, into: &actions)
            }
            actions.append(.finish)
            return
        }
        while !pending.isEmpty, let worker = firstWaiting() {
            var session = sessions[worker]!
            while session.free > 0, !pending.isEmpty {
                let trial = pending.removeFirst()
                session.trials.insert(trial)
                session.lastSent = now
                outstanding[trial] = (worker, nil)
                actions.append(.dispatch(trial: trial, worker: worker, leaseDeadline: now + settings.lease))
            }
            sessions[worker] = session
            if session.free == 0 { waiting.removeFirst() }  // else it keeps its place for the next trial
        }
        guard pending.isEmpty else { return }
        // Trials the proposals in flight will bring; ask another strategy only for slots beyond them.
        var coming = proposing.values.reduce(0, +)
        while let plan = nextPlan(), freeSlots(exceed: coming) {
            let made = created[plan.strategy, default: 0]
            let warmStart = made < plan.initial
            let count = warmStart ? plan.initial - made : min(plan.batch, plan.budget - made)
            proposing[plan.strategy] = count
            coming += count
            actions.append(.propose(strategy: plan.strategy, count: count, pending: outstanding.keys.sorted(), warmStart: warmStart))
        }
    }

    /// The strategy to propose next: among those with budget left and no proposal in flight, the
    /// smallest share of its budget created so far; ties go to the earlier plan.
    private func nextPlan() -> StrategyPlan? {
        var best: (plan: StrategyPlan, share: Double)?
        for plan in settings.plans where plan.budget > created[plan.strategy, default: 0] && proposing[plan.strategy] == nil {
            let share = Double(created[plan.strategy, default: 0]) / Double(plan.budget)
            if best == nil || share < best!.share { best = (plan, share) }
        }
        return best?.plan
    }

    // MARK: helpers

    private func isCurrent(trial: Int64, attempt: Int, worker: String) -> Bool {
        guard let entry = outstanding[trial] else { return false }
        return entry.worker == worker && (entry.attempt == nil || entry.attempt == attempt)
    }

    /// A RESULT or FAILURE for an attempt out on `worker` (or being cancelled there) frees its slot at once.
    private mutating func release(trial: Int64, attempt: Int, worker: String) {
        if sessions[worker]?.cancelling.remove(AttemptRef(trial: trial, attempt: attempt)) != nil { markWaiting(worker) }
        guard isCurrent(trial: trial, attempt: attempt, worker: worker) else { return }
        outstanding[trial] = nil
        if sessions[worker]?.trials.remove(trial) != nil { markWaiting(worker) }
    }

    /// Forgets a worker and the trials it held (the archive ends their attempts).
    private mutating func drop(_ worker: String) {
        guard let session = sessions.removeValue(forKey: worker) else { return }
        for trial in session.trials { outstanding[trial] = nil }
    }

    /// Queues `worker` for dispatch if it has a free slot (O(1); a queued name keeps its place).
    private mutating func markWaiting(_ worker: String) {
        guard let session = sessions[worker], session.free > 0 else { return }
        waiting.append(worker)
    }

    /// The longest-waiting worker with a free slot, left in the queue; stale names are dropped.
    private mutating func firstWaiting() -> String? {
        while let name = waiting.first {
            if let session = sessions[name], session.free > 0 { return name }
            waiting.removeFirst()
        }
        return nil
    }

    /// Whether more than `count` slots are free (stops counting once they are).
    private mutating func freeSlots(exceed count: Int) -> Bool {
        guard firstWaiting() != nil else { return false }
        var free = 0
        for name in waiting.all {
            free += max(0, sessions[name]?.free ?? 0)
            if free > count { return true }
        }
        return false
    }

    private mutating func reply(_ message: Message, to worker: String, now: Double, into actions: inout [Action]) {
        sessions[worker]?.lastSent = now
        actions.append(.send(message, to: worker))
    }
}

extension Dispatcher.Event {
    /// The time the event carries.
    var time: Double {
        switch self {
        case .started(_, let now), .received(_, _, let now), .tick(let now), .beat(let now), .trialsAdded(_, _, let now),
             .trialsChanged(_, let now), .stop(let now):
            return now
        case .attemptDispatched:
            return 0
        }
    }
}
