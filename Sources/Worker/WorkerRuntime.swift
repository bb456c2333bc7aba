import BamboProtocol
import Foundation
import Merging
import ZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a worker connects and runs (the `bambo worker` options).
public struct WorkerOptions: Sendable {
    /// The coordinator's ROUTER, e.g. `tcp://head:5555`.
    public var endpoint: String
    /// Scratch directory: one `trial-T-attempt-A` subdirectory per attempt.
    public var scratch: URL
    /// Accelerators for the evaluator (`CUDA_VISIBLE_DEVICES`); empty: leave the variable alone.
    public var gpus: [String]
    /// CURVE: the coordinator's public key and this worker's key pair; nil: plain TCP.
    public var curve: (serverKey: CurveKey, keyPair: CurveKeyPair)?
    /// ZMTP heartbeat interval on the socket (libzmq PING/PONG), seconds; 0: off.
    public var transportHeartbeat: Double

    public init(endpoint: String, scratch: URL, gpus: [String] = [], curve: (serverKey: CurveKey, keyPair: CurveKeyPair)? = nil, transportHeartbeat: Double = 1) {
        self.endpoint = endpoint
        self.scratch = scratch
        self.gpus = gpus
        self.curve = curve
        self.transportHeartbeat = transportHeartbeat
    }
}

/// The I/O shell around `WorkerCore`: one DEALER on a `SocketLoop` (routing id = worker name),
/// merges on background threads (stopped through a `MergeCancellation`), evaluators as tasks, SIGTERM/SIGINT through dispatch sources,
/// and a 50 ms tick. Every event goes through one serial queue into the core; the core's actions
/// are carried out on that queue.
public final class WorkerRuntime: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only on `queue`.
    private let core: Locked<WorkerCore>
    private let options: WorkerOptions
    private let merger: any TrialMerger
    private let evaluators: [String: any Evaluator]
    private let queue = DispatchQueue(label: "bambo.worker")
    private let context: Context
    private let loop: SocketLoop
    private let start = DispatchTime.now()
    private let logSink: @Sendable (String) -> Void

    private var socket: SocketLoop.SocketID?
    /// Merges running on their threads, with the flag that stops each.
    private var merging: [AttemptRef: MergeCancellation] = [:]
    /// Entered by each merge thread until it has reported back (the exit waits for it).
    private let mergeThreads = DispatchGroup()
    private var removeAfterMerge: Set<AttemptRef> = []
    private var evaluations: [AttemptRef: Task<Void, Never>] = [:]
    private var timer: DispatchSourceTimer?
    private var signalSources: [DispatchSourceSignal] = []
    private var exitContinuation: CheckedContinuation<Int32, Never>?
    private var exitStatus: Int32?

    public init(configuration: WorkerConfiguration, options: WorkerOptions, merger: any TrialMerger,
                evaluators: [any Evaluator], log: @escaping @Sendable (String) -> Void) throws {
        self.core = Locked(WorkerCore(configuration: configuration, seed: UInt64(truncatingIfNeeded: configuration.pid) &* 0x9E37_79B9))
        self.options = options
        self.merger = merger
        self.evaluators = Dictionary(evaluators.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })
        self.logSink = log
        self.context = try Context()
        self.loop = try SocketLoop(context: context, name: "bambo-worker")
    }

    /// Cleans stale attempt directories, connects and serves until the core exits; returns the
    /// exit status (0 after SHUTDOWN or a signal).
    public func run() async -> Int32 {
        do {
            try Self.cleanScratch(options.scratch)
        } catch {
            logSink("cannot prepare the scratch directory \(options.scratch.path): \(error)")
            return 1
        }
        let messages = loop.messages
        let receiver = Task { [weak self] in
            do {
                for try await message in messages { self?.deliver(message) }
            } catch {
                self?.logSink("socket loop ended: \(error)")
            }
        }
        let status = await withCheckedContinuation { continuation in
            queue.async {
                self.exitContinuation = continuation
                self.installSignalHandlers()
                self.installTimer()
                self.post(.start)
            }
        }
        loop.close()
        receiver.cancel()
        // Waits (up to the socket's linger) until BYE and the last messages have left.
        context.close()
        return status
    }

    /// Removes every `trial-*` entry of `scratch` (left by a crash) and creates it if needed.
    public static func cleanScratch(_ scratch: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        for entry in try fm.contentsOfDirectory(atPath: scratch.path) where entry.hasPrefix(attemptPrefix) {
            try fm.removeItem(at: scratch.appendingPathComponent(entry))
        }
    }

    static let attemptPrefix = "trial-"

    /// The scratch directory of one attempt.
    public static func attemptDirectory(_ ref: AttemptRef, in scratch: URL) -> URL {
        scratch.appendingPathComponent("\(attemptPrefix)\(ref.trial)-attempt-\(ref.attempt)")
    }

    // MARK: events in

    private var now: Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }

    /// Feeds one event to the core and performs its actions. On `queue` only.
    private func post(_ event: WorkerEvent) {
        dispatchPrecondition(condition: .onQueue(queue))
        let time = now
        let actions = core.withLock { $0.handle(event, now: time) }
        for action in actions { perform(action) }
    }

    private func postAsync(_ event: WorkerEvent) {
        queue.async { self.post(event) }
    }

    private func deliver(_ message: SocketLoop.Message) {
        queue.async {
            guard message.socket == self.socket else { return }  // from a socket already replaced
            do throws(ProtocolError) {
                self.post(.received(try WireCodec.decode(frames: message.frames, from: .coordinator)))
            } catch {
                self.post(.receivedInvalid(error))
            }
        }
    }

    private func installTimer() {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(50), repeating: .milliseconds(50))
        timer.setEventHandler { [unowned self] in self.post(.tick) }
        timer.resume()
        self.timer = timer
    }

    private func installSignalHandlers() {
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in self.post(.signal(name)) }
            source.resume()
            signalSources.append(source)
        }
        signal(SIGPIPE, SIG_IGN)
    }

    // MARK: actions out

    private func perform(_ action: WorkerAction) {
        switch action {
        case .connect: connect()
        case .disconnect: disconnect()
        case .send(let message): send(message)
        case .startMerge(let task): startMerge(task)
        case let .startEvaluation(task, directory): startEvaluation(task, modelDirectory: directory)
        case .stopWork(let ref): stopWork(ref)
        case .removeScratch(let ref): removeScratch(ref)
        case .log(let text): logSink(text)
        case .exit(let status): exit(status)
        }
    }

    private func connect() {
        let old = socket
        let options = self.options
        let name = core.withLock { $0.configuration.name }
        do {
            socket = try loop.performAndWait { sockets in
                if let old { sockets.remove(old) }  // linger 0: nothing queued for a dead peer
                let dealer = try Socket(sockets.context, type: .dealer)
                try dealer.set(.routingID, Data(name.utf8))
                try dealer.set(.linger, .zero)
                try dealer.set(.maxMessageSize, Int64(WireFormat.maxFrameBytes + 4096))
                try dealer.set(.reconnectInterval, .milliseconds(100))
                try dealer.set(.reconnectIntervalMax, .seconds(5))
                if options.transportHeartbeat > 0 {
                    try dealer.set(.heartbeatInterval, .milliseconds(Int64(options.transportHeartbeat * 1000)))
                    try dealer.set(.heartbeatTimeout, .milliseconds(Int64(options.transportHeartbeat * 3000)))
                    try dealer.set(.heartbeatTTL, .milliseconds(Int64(options.transportHeartbeat * 3000)))
                }
                if let curve = options.curve {
                    try dealer.makeCurveClient(keyPair: curve.keyPair, serverKey: curve.serverKey)
                }
                try dealer.connect(options.endpoint)
                return sockets.add(dealer, receive: .stream)
            }
        } catch {
            socket = nil
            logSink("cannot connect to \(options.endpoint): \(error)")
        }
    }

    private func disconnect() {
        guard let old = socket else { return }
        socket = nil
        _ = try? loop.performAndWait { sockets in sockets.remove(old) }
    }

    private func send(_ message: Message) {
        guard let socket else { return }
        do {
            let frames = try WireCodec.encode(message)
            let queued = try loop.performAndWait { try $0.socket(socket).send(frames, dontWait: true) }
            if !queued { logSink("could not queue \(message.type.rawValue) (the coordinator is not keeping up)") }
        } catch {
            logSink("cannot send \(message.type.rawValue): \(error)")
        }
    }

    private func startMerge(_ task: TaskBody) {
        let ref = AttemptRef(trial: task.trial, attempt: task.attempt)
        let directory = Self.attemptDirectory(ref, in: options.scratch)
        let output = directory.appendingPathComponent("model")
        let cancellation = MergeCancellation()
        merging[ref] = cancellation
        let merger = self.merger
        mergeThreads.enter()
        let lastProgress = Locked<(Int64, Int64)>((0, 0))
        Thread { [self] in
            let started = DispatchTime.now()
            let result: Result<URL, AttemptFailure>
            do {
                try? FileManager.default.removeItem(at: directory)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try merger.merge(task, output: output, cancellation: cancellation) { done, total in
                    lastProgress.withLock { $0 = (done, total) }
                    self.postAsync(.mergeProgress(ref, done: done, total: total))
                }
                result = .success(output)
            } catch let failure as AttemptFailure {
                result = .failure(failure)
                if failure.code == .cancelled {
                    let (done, total) = lastProgress.withLock { $0 }
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
                    self.logSink(String(format: "trial %lld attempt %d: merge cancelled after %.2f s at %lld of %lld bytes; partial output removed",
                                        ref.trial, ref.attempt, seconds, done, total))
                }
            } catch {
                result = .failure(AttemptFailure(code: .resource, reason: "cannot create \(directory.path): \(error.localizedDescription)"))
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            self.queue.async {
                self.merging[ref] = nil
                if self.removeAfterMerge.remove(ref) != nil { try? FileManager.default.removeItem(at: directory) }
                self.post(.mergeFinished(ref, result, seconds: seconds))
                self.mergeThreads.leave()
            }
        }.start()
    }

    private func startEvaluation(_ task: TaskBody, modelDirectory: URL) {
        let ref = AttemptRef(trial: task.trial, attempt: task.attempt)
        let kind = task.evaluator["kind"]?.stringValue ?? ""
        guard let evaluator = evaluators[kind] else {
            postAsync(.evaluationFinished(ref, .failure(AttemptFailure(code: .badTask, reason: "no evaluator of kind \"\(kind)\" here")), seconds: 0))
            return
        }
        var environment: [String: String] = [:]
        if !options.gpus.isEmpty { environment["CUDA_VISIBLE_DEVICES"] = options.gpus.joined(separator: ",") }
        let job = EvaluationJob(
            attempt: ref, weights: task.weights, modelDirectory: modelDirectory,
            workDirectory: Self.attemptDirectory(ref, in: options.scratch), configuration: task.evaluator,
            environment: environment)
        evaluations[ref] = Task { [self] in
            let started = DispatchTime.now()
            let result: Result<EvaluationOutput, AttemptFailure>
            do throws(AttemptFailure) {
                result = .success(try await evaluator.evaluate(job) { step in
                    self.postAsync(.evaluationProgress(ref, done: step.done, total: step.total, message: step.message))
                })
            } catch {
                result = .failure(error)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            self.queue.async {
                self.evaluations[ref] = nil
                self.post(.evaluationFinished(ref, result, seconds: seconds))
            }
        }
    }

    private func stopWork(_ ref: AttemptRef) {
        if let evaluation = evaluations[ref] {
            evaluation.cancel()
        } else if let cancellation = merging[ref] {
            cancellation.cancel()
        }
    }

    private func removeScratch(_ ref: AttemptRef) {
        let directory = Self.attemptDirectory(ref, in: options.scratch)
        if merging[ref] != nil { removeAfterMerge.insert(ref) }
        try? FileManager.default.removeItem(at: directory)
    }

    private func exit(_ status: Int32) {
        guard exitStatus == nil else { return }
        exitStatus = status
        timer?.cancel()
        // Let BYE and the last FAILUREs leave before the socket closes.
        if let socket {
            _ = try? loop.performAndWait { sockets in
                try? sockets.socket(socket).set(.linger, .seconds(1))
                sockets.remove(socket)
            }
            self.socket = nil
        }
        // Stopped evaluators get their SIGTERM → SIGKILL sequence, and cancelled merges remove
        // their partial output, before the process goes.
        let running = Array(evaluations.values)
        for evaluation in running { evaluation.cancel() }
        for cancellation in merging.values { cancellation.cancel() }
        let continuation = exitContinuation
        exitContinuation = nil
        let mergeThreads = self.mergeThreads
        Task {
            for evaluation in running { await evaluation.value }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                mergeThreads.notify(queue: .global()) { done.resume() }
            }
            continuation?.resume(returning: status)
        }
    }
}

/// A value behind a lock (the core is read for its configuration from the socket closure).
final class Locked<State: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State
    init(_ state: State) { self.state = state }
    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}
