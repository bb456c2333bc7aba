import Archive
import BamboProtocol
import Foundation
import Merging
import Optimization
import Partitioning
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs one study: the `Dispatcher` core wired to a ROUTER socket (workers), a PUB socket (events)
/// and the archive. One loop polls the ROUTER, decodes every frame set with `WireCodec`, feeds the
/// core and executes its actions. Bad messages are logged (as `protocol.error` events) and answered
/// with ERROR; they never stop the loop. Model-based proposals run on background threads
/// (`BackgroundProposals`) on snapshots of the observations; the loop stores their trials when
/// they finish, and only the loop touches the archive and the sockets.
/// Used from one thread, except `requestStop`, which any thread may call (it only sets a locked flag).
public final class CoordinatorService: @unchecked Sendable {
    public struct Options: Sendable {
        /// ROUTER endpoint for workers.
        public var bind: String = "tcp://*:5555"
        /// PUB endpoint for the event stream; nil: none.
        public var events: String? = "tcp://*:5556"
        /// CURVE: the server's secret key and the allowed worker public keys.
        public var curve: (secret: CurveSecretKey, allowed: Set<CurveKey>)? = nil
        /// Allow a non-loopback bind without CURVE.
        public var insecure = false
        public var heartbeatInterval: Double = 1
        /// Heartbeat intervals of silence after which a worker is lost (≥ 2).
        public var leaseBeats = 3
        public init() {}
    }

    /// How `run` ended.
    public enum Outcome: Sendable, Equatable {
        /// The budget is spent; the study is finished.
        case finished
        /// Stopped by a signal (`requestStop`); the archive holds everything to resume.
        case stopped
    }

    public let config: StudyConfig
    public let archive: Archive
    let options: Options
    let log: @Sendable (String) -> Void
    private let refusals = Locked<[ZAPDecision]>([])
    private let stopFlag = Locked(false)
    private var core: Dispatcher
    /// The study's partition (profiled, K blocks): what trials without their own use.
    private var partition: PartitionSpec
    /// Each strategy's partition (bambo: the study's; layerwise: K = L; grid: one block).
    private var partitions: [StudyStrategy: PartitionSpec] = [:]
    private var proposers: [StudyStrategy: any Proposer] = [:]
    private var xs: [Int64: [Double]] = [:]
    private var strategyOf: [Int64: StudyStrategy] = [:]
    /// Trials' own partitions and merge specs (those that differ from the study's).
    private var trialPartitions: [Int64: PartitionSpec] = [:]
    private var trialMerges: [Int64: MergeSpec] = [:]
    private var metrics: [Int64: Metrics] = [:]
    private var objectiveValues: [Int64: [String: Double]] = [:]
    private var anchorMetrics: [String: Metrics]?
    /// The oldest completed trial at each model's corner, found so far (the anchors once complete).
    private var cornerTrials: [String: Int64] = [:]
    /// Completed trials whose objectives are not computed yet (the anchors were not done).
    private var unscored: Set<Int64> = []
    /// Objectives computed but not yet written (written at most once a second, and at exit, in one
    /// transaction, so a result costs two transactions — result and next dispatch — not three).
    private var unwrittenObjectives: [Int64: [String: Double]?] = [:]
    private var lastObjectivesWrite = 0.0
    private var reportedProblems: Set<ObjectiveNormalizer.Problem> = []
    private var badVersionAnswered: Set<String> = []
    /// Messages held back while a batch is open (sent once its changes are committed).
    private var deferredSends: [(identity: Data, message: Message)]?
    /// Proposals running in the background, once `run` has started.
    private var background: BackgroundProposals?
    /// Messages handled so far (to report how many were served while a proposal ran).
    private var messagesHandled = 0
    /// `messagesHandled` when each background proposal started.
    private var proposalStarts: [StudyStrategy: Int] = [:]
    private let monoStart = ContinuousClock.now
    private let wallStart = Date()

    /// The archive's event callback target: every committed event is queued here and published on
    /// the PUB socket by the loop.
    public static func archiveOptions(_ sink: CoordinatorEventSink) -> Archive.Options {
        Archive.Options(role: .writer, mode: .createIfMissing, onEvents: { events in sink.events.withLock { $0.append(contentsOf: events) } })
    }

    /// Prepares a study on `archive` (opened with `archiveOptions(sink)`): on a new archive, creates
    /// the study, profiles the models and stores the partition; on an existing one, resumes from what
    /// it holds (the stored configuration wins over `config`).
    public init(config fileConfig: StudyConfig?, archive: Archive, options: Options, log: @escaping @Sendable (String) -> Void) throws {
        self.archive = archive
        self.options = options
        self.log = log
        let now = Date()
        let config: StudyConfig
        if let stored = try archive.loadStudy() {
            config = try stored.decodeConfig(as: StudyConfig.self)
            if let fileConfig, fileConfig != config {
                log("warning: the study file differs from the study stored in \(archive.url.path); resuming with the stored one")
            }
        } else {
            guard let fileConfig else { throw CoordinatorError("\(archive.url.path) holds no study: pass --study FILE to create one") }
            config = fileConfig
            try config.validateFiles(fileName: "study")
            try archive.createStudy(name: config.study, config: config, at: now)
        }
        self.config = config
        let document: PartitionDocument
        if let stored = try archive.loadPartition(as: PartitionDocument.self) {
            document = stored
        } else {
            log("profiling \(config.models.map(\.name).joined(separator: " and ")) (\(config.partition.norm.rawValue) norm)")
            let profile = try profileLayerDifferences(
                models: config.models.map { URL(fileURLWithPath: $0.path) }, base: config.base.map { URL(fileURLWithPath: $0.path) },
                norm: config.partition.norm)
            let blocks = try partitionLayers(
                differences: profile.layerDifferences, blocks: config.partition.blocks, lambda: config.partition.lambda,
                strategy: config.partition.strategy)
            document = PartitionDocument(
                profile: profile, partition: blocks, lambda: config.partition.lambda, strategy: config.partition.strategy,
                models: config.models.map(\.path), base: config.base?.path)
            try archive.savePartition(document, at: Date())
            log("partition: \(document.blocks.map { "\($0[0])–\($0[1])" }.joined(separator: ", ")) of \(document.layerCount) layers")
        }
        partition = PartitionSpec(blocks: document.blocks, layers: document.layerCount)
        core = Dispatcher(settings: Dispatcher.Settings(config: config, heartbeatInterval: options.heartbeatInterval, leaseBeats: options.leaseBeats))
        let trials = try archive.trials()
        for trial in trials {
            xs[trial.id] = trial.x
            // Trials of archives from before strategies (any label) belong to the anchor strategy.
            strategyOf[trial.id] = StudyStrategy(rawValue: trial.strategy) ?? config.anchorStrategy
            trialPartitions[trial.id] = trial.partition
            trialMerges[trial.id] = trial.merge
        }
        for completed in try archive.completedTrials() {
            metrics[completed.trial.id] = completed.result.metrics
            if let values = completed.result.objectives { objectiveValues[completed.trial.id] = values } else { unscored.insert(completed.trial.id) }
        }
        for strategy in config.strategies {
            let spec = switch strategy {
            case .bambo: partition
            case .layerwise: layerwisePartition(layers: partition.layers)
            case .grid: modelLevelPartition(layers: partition.layers)
            }
            partitions[strategy] = spec
            guard strategy.interpolates else { continue }
            let sobolDrawn = trials.filter { $0.origin == .sobol && strategyOf[$0.id] == strategy }.count
            proposers[strategy] = try Self.makeProposer(config: config, dimension: spec.dimension, sobolDrawn: sobolDrawn)
        }
    }

    /// Trials created so far per strategy.
    private func createdCounts() -> [StudyStrategy: Int] {
        strategyOf.values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    /// The study's proposer: Sobol, or qEHVI/qNEHVI continuing the Sobol sequence until models can be fitted.
    /// `sobolDrawn`: Sobol points already stored, so a resumed study does not repeat them.
    static func makeProposer(config: StudyConfig, dimension: Int, sobolDrawn: Int) throws -> any Proposer {
        let seed = UInt64(config.optimizer.seed)
        let sobol = try SobolProposer(dimension: dimension, seed: seed, skip: sobolDrawn)
        guard let strategy = ProposalStrategy(rawValue: config.optimizer.acquisition), strategy != .sobol else { return sobol }
        return BayesianProposer(strategy: strategy, dimension: dimension, seed: seed, fallback: sobol)
    }

    /// Asks `run` to stop dispatching and return (from a signal handler's queue or another thread).
    public func requestStop() { stopFlag.withLock { $0 = true } }

    /// Runs the study until its budget is spent or `requestStop` is called; `sink` is the one given
    /// to `archiveOptions` (its events are published on the PUB socket).
    public func run(sink: CoordinatorEventSink) throws -> Outcome {
        let context = try Context(ioThreads: 1, maxSockets: 4096)
        defer { context.close() }
        var zap: ZAPHandler?
        if let curve = options.curve {
            let refusals = self.refusals
            zap = try ZAPHandler(context: context, allowedKeys: curve.allowed, onDecision: { decision in
                if !decision.allowed { refusals.withLock { $0.append(decision) } }
            })
        } else if !Self.isLoopback(options.bind) || options.events.map({ !Self.isLoopback($0) }) == true {
            guard options.insecure else {
                throw CoordinatorError("binding \(options.bind) (not loopback) without CURVE: pass --curve-secret FILE --allow-keys DIR, or --insecure to accept unauthenticated workers")
            }
            log("warning: \(options.bind) is not a loopback address and CURVE is off (--insecure): anyone who can reach it can take tasks")
            _ = try archive.appendEvent(kind: "security.insecure", data: ["bind": .string(options.bind)], at: Date())
        }
        defer { zap?.close() }

        let router = try Socket(context, type: .router)
        try router.set(.linger, .seconds(1))
        try router.set(.routerMandatory, true)
        try router.set(.routerHandover, true)
        try router.set(.maxMessageSize, Int64(WireFormat.maxFrameBytes))
        try router.set(.sendHighWaterMark, 10_000)
        try router.set(.receiveHighWaterMark, 10_000)
        if let curve = options.curve { try router.makeCurveServer(secretKey: curve.secret) }
        try router.bind(options.bind)
        defer { router.close() }
        var pub: Socket?
        if let events = options.events {
            let socket = try Socket(context, type: .publisher)
            try socket.set(.linger, Duration.milliseconds(500))
            if let curve = options.curve { try socket.makeCurveServer(secretKey: curve.secret) }
            try socket.bind(events)
            pub = socket
        }
        defer { pub?.close() }
        let background = try BackgroundProposals(context: context)
        self.background = background
        defer {
            background.close()
            self.background = nil
        }
        let eventsEndpoint = try pub.map { try $0.lastEndpoint }
        log("study \(config.study): listening on \(try router.lastEndpoint)\(eventsEndpoint.map { ", events on \($0)" } ?? "")")

        let counts = try archive.counts()
        let snapshot = Dispatcher.Snapshot(
            total: counts.total, pending: try archive.trials(in: .pending).map(\.id),
            dispatched: try archive.dispatchedAttempts().map { .init(trial: $0.trial, attempt: $0.number, worker: $0.worker) },
            finished: counts.completed + counts.failed, created: createdCounts())
        if snapshot.total > 0 {
            log("resuming: \(counts.completed) completed, \(counts.failed) failed, \(counts.dispatched) dispatched, \(counts.pending) pending of \(config.budget)")
        }
        var outcome: Outcome?
        func execute(_ first: [Dispatcher.Action]) throws {
            var queue = first
            var index = 0
            while index < queue.count {
                let action = queue[index]
                index += 1
                switch action {
                case .finish: outcome = .finished
                case .halt: outcome = .stopped
                default: queue += try perform(action, router: router)
                }
            }
            publish(pub, sink: sink)
        }
        // Objectives lost to a crash (computed, not yet written) are computed again from the results.
        try updateObjectives(at: Date())
        try writeObjectives()
        try execute(core.event(.started(snapshot, now: now())))
        let poller = Poller([router, background.wakeSocket])
        let tickInterval = min(0.1, options.heartbeatInterval / 4)
        var nextTick = now()
        while outcome == nil {
            if stopFlag.withLock({ $0 }) {
                try execute(core.event(.stop(now: now())))
                continue
            }
            let wait = max(0, nextTick - now())
            _ = try poller.poll(timeout: .milliseconds(Int(wait * 1000) + 1))
            var received = 0
            while outcome == nil, received < 1000, let message = try router.receiveMessage(dontWait: true) {
                received += 1
                messagesHandled += 1
                try handle(message, router: router, execute: execute)
            }
            for finished in background.takeFinished() where outcome == nil {
                try store(finished, router: router, execute: execute)
            }
            try recordRefusals()
            if now() >= nextTick, outcome == nil {
                nextTick = now() + tickInterval
                // Stopped at the limit: messages wait unread, so silence is judged once they are read.
                let drained = received < 1000
                try execute(core.event(drained ? .tick(now: now()) : .beat(now: now())))
                if now() - lastObjectivesWrite >= 1 {
                    try writeObjectives()
                    publish(pub, sink: sink)
                }
            }
        }
        try writeObjectives()
        if outcome == .finished {
            // Every worker was sent SHUTDOWN: none is still part of the study.
            for worker in try archive.workers() where worker.state == .alive {
                _ = try archive.recordWorkerGone(worker.name, reason: "study finished (SHUTDOWN sent)", at: Date())
            }
            try archive.setStudyState(.finished, at: Date())
            publish(pub, sink: sink)
            let final = try archive.counts()
            log("study \(config.study) finished: \(final.completed) completed, \(final.failed) failed")
        } else {
            let discarded = core.proposingStrategies.map(\.rawValue).sorted()
            let note = discarded.isEmpty ? "" : "; proposal of \(discarded.joined(separator: ", ")) discarded (proposed again on resume)"
            log("stopped: \(core.outstandingTrials.count) trials still out on workers\(note); restart to resume")
        }
        return outcome!
    }

    // MARK: messages

    /// Runs `body` with all its archive changes in one transaction (a RESULT, its objectives, the
    /// next proposal and dispatch: one commit, not one each) and sends its messages only after the
    /// commit, so every ACK and TASK still leaves after what it reports is durable.
    private func inBatch(router: Socket, _ body: () throws -> Void) throws {
        deferredSends = []
        defer { deferredSends = nil }
        try archive.batch(body)
        let held = deferredSends ?? []
        deferredSends = nil
        for (identity, message) in held { send(message, to: identity, router: router) }
    }

    private func handle(_ received: ReceivedMessage, router: Socket, execute: ([Dispatcher.Action]) throws -> Void) throws {
        guard let identity = received.frames.first else { return }
        let worker = Self.workerName(identity)
        let frames = Array(received.frames.dropFirst())
        let message: Message
        do {
            message = try WireCodec.decode(frames: frames, from: .worker)
        } catch {
            if error.code == .badVersion {
                guard badVersionAnswered.insert(worker).inserted else { return }
            }
            try problem("\(error.description)", code: error.code, worker: worker)
            send(.error(error.errorBody), to: identity, router: router)
            return
        }
        badVersionAnswered.remove(worker)
        switch message {
        case .result, .failure, .ready, .bye:
            // What these record (result, requeue, worker) and the dispatch that follows: one commit.
            try inBatch(router: router) { try execute(core.event(.received(message, from: worker, now: now()))) }
            try execute([])  // publishes the batch's events
        default:
            try execute(core.event(.received(message, from: worker, now: now())))
        }
    }

    /// Executes one action; returns the core's reaction to its outcome.
    private func perform(_ action: Dispatcher.Action, router: Socket) throws -> [Dispatcher.Action] {
        let time = Date()
        switch action {
        case .send(let message, let worker):
            send(message, to: Self.identity(worker), router: router)
            return []
        case .dispatch(let trial, let worker, let leaseDeadline):
            let attempt = try archive.recordDispatch(trial: trial, worker: worker, leaseDeadline: date(leaseDeadline), at: time)
            let follow = core.event(.attemptDispatched(trial: trial, attempt: attempt, worker: worker))
            let task = TaskBody(
                trial: trial, attempt: attempt, weights: xs[trial] ?? [], partition: trialPartitions[trial] ?? partition, models: config.models,
                base: config.base, merge: trialMerges[trial] ?? config.mergeSpec, evaluator: config.evaluator, deadline: nil)
            send(.task(task), to: Self.identity(worker), router: router)
            return follow
        case .propose(let strategy, let count, let pending, let warmStart):
            if strategy == .grid || warmStart {  // deterministic and instant: stored at once
                let ids = try proposeNow(strategy, count: count, warmStart: warmStart, at: time)
                return core.event(.trialsAdded(ids, strategy: strategy, now: now()))
            }
            if var proposer = proposers[strategy], proposer.isInstant {  // e.g. Sobol: no hand-off to wait for
                let points = try proposer.propose(count: count, observed: [], pending: [])
                proposers[strategy] = proposer
                let ids = try addProposed(points, origin: proposer.origin, strategy: strategy, at: time)
                return core.event(.trialsAdded(ids, strategy: strategy, now: now()))
            }
            try startProposal(strategy, count: count, pending: pending)
            return []
        case .recordResult(let body, let worker):
            let outcome = try archive.recordResult(body, worker: worker, at: time)
            send(.ack(AckBody(trial: body.trial, attempt: body.attempt, outcome: outcome.ack)), to: Self.identity(worker), router: router)
            guard outcome == .accepted else { return [] }
            metrics[body.trial] = body.metrics
            unscored.insert(body.trial)
            try updateObjectives(at: time, completed: body.trial)
            return core.event(.trialsChanged([.init(trial: body.trial, attempt: body.attempt, state: .completed)], now: now()))
        case .recordFailure(let body, let worker):
            let outcome = try archive.recordFailure(body, worker: worker, at: time)
            send(.ack(AckBody(trial: body.trial, attempt: body.attempt, outcome: outcome.ack)), to: Self.identity(worker), router: router)
            switch outcome {
            case .requeued: return core.event(.trialsChanged([.init(trial: body.trial, attempt: body.attempt, state: .pending)], now: now()))
            case .failed: return core.event(.trialsChanged([.init(trial: body.trial, attempt: body.attempt, state: .failed)], now: now()))
            default: return []
            }
        case .recordProgress(let body, let worker):
            var data: [String: JSONValue] = [
                "trial": .number(Double(body.trial)), "attempt": .number(Double(body.attempt)), "worker": .string(worker),
                "phase": .string(body.phase.rawValue), "done": .number(Double(body.done)), "total": .number(Double(body.total)),
            ]
            if let text = body.message { data["message"] = .string(text) }
            try archive.appendEvent(kind: "trial.progress", data: data, at: time)
            return []
        case .recordWorkerJoined(let body):
            try archive.recordWorkerSeen(body.worker, at: time, host: body.host, pid: body.pid, capabilities: body.capabilities)
            return []
        case .recordWorkerLost(let worker):
            log("worker \(worker) lost (silent for \(core.settings.lease) s)")
            return core.event(.trialsChanged(try archive.recordWorkerLost(worker, at: time).map(Self.change), now: now()))
        case .recordWorkerGone(let worker, let reason):
            return core.event(.trialsChanged(try archive.recordWorkerGone(worker, reason: reason, at: time).map(Self.change), now: now()))
        case .expireAttempt(let trial, let attempt, let reason):
            guard let ended = try archive.endAttempt(trial: trial, attempt: attempt, as: .expired, reason: reason, at: time) else { return [] }
            return core.event(.trialsChanged([Self.change(ended)], now: now()))
        case .renewLeases(let until):
            try archive.renewLeases(until: date(until))
            return []
        case .logProblem(let text, let worker):
            log("worker \(worker ?? "?"): \(text)")
            return []
        case .finish, .halt:
            return []
        }
    }

    private static func change(_ ended: EndedAttempt) -> Dispatcher.TrialChange {
        .init(trial: ended.trial, attempt: ended.attempt, state: ended.trialState)
    }

    /// Starts `strategy`'s proposer on a background thread with the observations and the pending
    /// trials as they are now; `store` takes the outcome.
    private func startProposal(_ strategy: StudyStrategy, count: Int, pending: [Int64]) throws {
        guard let proposer = proposers[strategy] else { throw CoordinatorError("no proposer for strategy \(strategy.rawValue)") }
        guard let background else { throw CoordinatorError("a proposal was asked for outside the coordinator's loop") }
        // A strategy's model sees only its own trials (their dimensions differ).
        let observed = try observedPoints(of: strategy)
        let own = pending.filter { strategyOf[$0] == strategy }.compactMap { xs[$0] }
        proposalStarts[strategy] = messagesHandled
        if proposer is BayesianProposer, observed.count >= 2 {
            log("proposing \(count) point(s) for \(strategy.rawValue) in the background (\(observed.count) observed, \(own.count) pending)")
        }
        background.start(.init(strategy: strategy, proposer: proposer, count: count, observed: observed, pending: own))
    }

    /// Stores the points of a finished background proposal as trials (with the dispatch that
    /// follows, in one transaction) and feeds them to the core. A failed proposal stops the run.
    private func store(_ finished: BackgroundProposals.Outcome, router: Socket, execute: ([Dispatcher.Action]) throws -> Void) throws {
        let strategy = finished.strategy
        let (points, proposer) = try finished.result.get()
        proposers[strategy] = proposer
        let served = messagesHandled - (proposalStarts.removeValue(forKey: strategy) ?? messagesHandled)
        if finished.seconds >= 0.1 || proposer.origin != "sobol" {
            log(String(format: "proposal: %d %@ point(s) for %@ in %.2f s (%d messages served meanwhile)",
                       points.count, proposer.origin, strategy.rawValue, finished.seconds, served))
        }
        try inBatch(router: router) {
            let ids = try addProposed(points, origin: proposer.origin, strategy: strategy, at: Date())
            try execute(core.event(.trialsAdded(ids, strategy: strategy, now: now())))
        }
        try execute([])  // publishes the batch's events
    }

    /// Stores a proposer's points as trials of `strategy` and remembers them.
    private func addProposed(_ points: [[Double]], origin: String, strategy: StudyStrategy, at time: Date) throws -> [Int64] {
        let spec = partitions[strategy] ?? partition
        let ids = try archive.addTrials(
            points, origin: TrialOrigin(origin), strategy: strategy.rawValue, partition: spec == partition ? nil : spec, at: time)
        try remember(ids, of: strategy)
        return ids
    }

    /// Stores `count` new trials of `strategy` at once: the warm start (anchors, then Sobol) or the
    /// next grid points. Each trial stores its partition and merge spec when they differ from the
    /// study's.
    private func proposeNow(_ strategy: StudyStrategy, count: Int, warmStart: Bool, at time: Date) throws -> [Int64] {
        let spec = partitions[strategy] ?? partition
        let dimension = spec.dimension
        let ownPartition = spec == partition ? nil : spec
        let existing = core.trialCount(of: strategy)
        var ids: [Int64] = []
        if strategy == .grid {
            let grid = config.grid ?? .defaults(hasBase: config.base != nil)
            let points = grid.trials(from: existing, count: count, dimension: dimension, merge: config.merge)
            let merges = points.map { $0.merge == config.mergeSpec ? nil : $0.merge }
            ids = try archive.addTrials(points.map(\.x), origin: .grid, strategy: strategy.rawValue, partition: ownPartition, merges: merges, at: time)
        } else {
            // The whole initial design is deterministic; a resumed warm start adds what is missing.
            var fill = try SobolProposer(dimension: dimension, seed: UInt64(config.optimizer.seed))
            let design = try WarmStart.points(count: config.optimizer.initial, dimension: dimension, fill: &fill)
            let anchors = Array(design.anchors.dropFirst(existing))
            let sobolDone = max(0, existing - design.anchors.count)
            let sobol = Array(design.sobol.dropFirst(sobolDone).prefix(count - anchors.count))
            if !anchors.isEmpty {
                ids += try archive.addTrials(anchors, origin: .warmStart, strategy: strategy.rawValue, partition: ownPartition, at: time)
            }
            if !sobol.isEmpty {
                ids += try archive.addTrials(sobol, origin: .sobol, strategy: strategy.rawValue, partition: ownPartition, at: time)
                proposers[strategy] = try Self.makeProposer(config: config, dimension: dimension, sobolDrawn: sobolDone + sobol.count)
            }
        }
        try remember(ids, of: strategy)
        return ids
    }

    /// Keeps what the loop needs of newly stored trials.
    private func remember(_ ids: [Int64], of strategy: StudyStrategy) throws {
        for id in ids {
            guard let trial = try archive.trial(id) else { continue }
            xs[id] = trial.x
            strategyOf[id] = strategy
            trialPartitions[id] = trial.partition
            trialMerges[id] = trial.merge
        }
    }

    /// Completed trials of `strategy` with their objectives, in objective order, oldest first.
    private func observedPoints(of strategy: StudyStrategy) throws -> [(x: [Double], y: [Double])] {
        objectiveValues.keys.sorted().compactMap { trial in
            guard strategyOf[trial] == strategy, let x = xs[trial], let values = objectiveValues[trial] else { return nil }
            let y = config.objectives.compactMap { values[$0.name] }
            return y.count == config.objectives.count ? (x, y) : nil
        }
    }

    /// Sets the objectives of every completed trial that lacks them, once both anchor trials (the
    /// corners x = 0 and x = 1 of the anchor strategy) are done. Every strategy uses these anchors.
    /// `completed`: the one trial completed since the last call (only it can be a new anchor); nil
    /// looks through every completed trial (at start).
    private func updateObjectives(at time: Date, completed: Int64? = nil) throws {
        if anchorMetrics == nil {
            let anchorStrategy = config.anchorStrategy
            let dimension = (partitions[anchorStrategy] ?? partition).dimension
            let candidates = completed.map { [$0] } ?? Array(metrics.keys)
            for (index, model) in config.models.enumerated() {
                let corner = Array(repeating: Double(index), count: dimension)
                // The oldest completed trial of the anchor strategy at the model's corner.
                for trial in candidates where metrics[trial] != nil && strategyOf[trial] == anchorStrategy && xs[trial] == corner {
                    if cornerTrials[model.name].map({ trial < $0 }) ?? true { cornerTrials[model.name] = trial }
                }
            }
            guard cornerTrials.count == config.models.count else { return }
            anchorMetrics = cornerTrials.mapValues { metrics[$0]! }
        }
        guard let anchors = anchorMetrics else { return }
        var updates: [Int64: [String: Double]?] = [:]
        for trial in unscored.sorted() {
            guard let trialMetrics = metrics[trial] else { continue }
            let (values, problems) = ObjectiveNormalizer.objectives(of: trialMetrics, anchors: anchors, settings: config.objectives)
            updates[trial] = values
            objectiveValues[trial] = values
            for problem in problems where reportedProblems.insert(problem).inserted {
                log("objectives: \(problem)")
                try archive.appendEvent(kind: "objectives.degenerate", data: [
                    "objective": .string(problem.objective), "benchmark": .string(problem.benchmark), "reason": .string(problem.reason),
                ], at: time)
            }
        }
        guard !updates.isEmpty else { return }
        unwrittenObjectives.merge(updates) { _, new in new }
        unscored = []
    }

    /// Writes the objectives computed since the last write (one transaction).
    private func writeObjectives() throws {
        lastObjectivesWrite = now()
        guard !unwrittenObjectives.isEmpty else { return }
        try archive.setObjectives(unwrittenObjectives, at: Date())
        unwrittenObjectives = [:]
    }

    // MARK: plumbing

    private func send(_ message: Message, to identity: Data, router: Socket) {
        if deferredSends != nil {
            deferredSends?.append((identity, message))
            return
        }
        do {
            let frames = try WireCodec.encode(message)
            if try !router.send([identity] + frames, dontWait: true) {
                log("could not send \(message.type.rawValue) to \(Self.workerName(identity)): queue full")
            }
        } catch {
            log("could not send \(message.type.rawValue) to \(Self.workerName(identity)): \(error)")
        }
    }

    private func problem(_ text: String, code: ErrorCode, worker: String) throws {
        log("worker \(worker): \(text)")
        try archive.appendEvent(kind: "protocol.error", data: [
            "worker": .string(worker), "code": .string(code.rawValue), "message": .string(String(text.prefix(1024))),
        ], at: Date())
    }

    private func recordRefusals() throws {
        let decisions = refusals.withLock { list -> [ZAPDecision] in
            defer { list = [] }
            return list
        }
        for decision in decisions {
            let key = decision.request.clientKey?.z85 ?? "(none)"
            log("refused a \(decision.request.mechanism) connection from \(decision.request.address): key \(key) (\(decision.reason))")
            try archive.appendEvent(kind: "worker.refused", data: [
                "address": .string(decision.request.address), "key": .string(key), "mechanism": .string(decision.request.mechanism),
                "reason": .string(decision.reason),
            ], at: Date())
        }
    }

    private func publish(_ pub: Socket?, sink: CoordinatorEventSink) {
        let events = sink.events.withLock { list -> [EventRecord] in
            defer { list = [] }
            return list
        }
        guard let pub else { return }
        for event in events {
            if let line = try? event.jsonLine() { _ = try? pub.send([line], dontWait: true) }
        }
    }

    private func now() -> Double {
        let elapsed = ContinuousClock.now - monoStart
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    private func date(_ mono: Double) -> Date { wallStart.addingTimeInterval(mono) }

    /// A routing id as a worker name: the name itself when printable, else `#` + hex.
    static func workerName(_ identity: Data) -> String {
        if !identity.isEmpty, identity.first != 0, let text = String(data: identity, encoding: .utf8),
           text.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }), !text.hasPrefix("#") {
            return text
        }
        return "#" + identity.map { String(format: "%02x", $0) }.joined()
    }

    static func identity(_ worker: String) -> Data {
        if worker.hasPrefix("#") {
            var bytes: [UInt8] = []
            var index = worker.index(after: worker.startIndex)
            while index < worker.endIndex, let next = worker.index(index, offsetBy: 2, limitedBy: worker.endIndex),
                  let byte = UInt8(worker[index..<next], radix: 16) {
                bytes.append(byte)
                index = next
            }
            return Data(bytes)
        }
        return Data(worker.utf8)
    }

    /// Whether an endpoint only accepts local connections (loopback TCP, ipc, inproc).
    public static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst(6))
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
            return host == "::1"
        }
        host = String(host.prefix { $0 != ":" })
        return host == "localhost" || host.hasPrefix("127.")
    }
}

/// Collects the archive's committed events for publication (thread-safe).
public final class CoordinatorEventSink: Sendable {
    let events = Locked<[EventRecord]>([])
    public init() {}
}

/// A coordinator setup problem, for people.
public struct CoordinatorError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A value behind a lock.
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
