import BamboProtocol
import BamboTestSupport
import Coordinator
import Foundation
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// The built `bambo` executable (BamboTestSupport).
enum Bambo {
    static var executable: URL { BuiltBambo.executable }

    /// Runs `bambo arguments…` to completion; returns status, stdout and stderr.
    @discardableResult
    static func run(_ arguments: [String], in directory: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        let run = try BuiltBambo.run(arguments, in: directory)
        return (run.status, run.stdout, run.stderr)
    }
}

/// A temporary study: synthesized models and a study file.
final class StudyFixture {
    let directory: URL
    let initial: Int, iterations: Int, batch: Int
    var budget: Int { initial + iterations * batch }
    var archive: URL { directory.appendingPathComponent("study.sqlite") }
    var events: URL { directory.appendingPathComponent("study.events.jsonl") }
    var studyFile: URL { directory.appendingPathComponent("study.yaml") }

    /// `extra`: more top-level YAML (e.g. `strategies:`); `bambo synthesize` also writes `ckpt/base`.
    init(initial: Int = 4, iterations: Int = 2, batch: Int = 2, acquisition: String = "sobol", extra: String = "") throws {
        self.initial = initial
        self.iterations = iterations
        self.batch = batch
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("coordinator-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let made = try Bambo.run(["synthesize", "--out", "ckpt", "--layers", "4", "--hidden", "64"], in: directory)
        guard made.status == 0 else { throw CoordinatorError("bambo synthesize failed") }
        let yaml = """
            study: process-test
            models:
              - {name: instruct, path: ckpt/instruct}
              - {name: thinking, path: ckpt/thinking}
            partition: {blocks: 2, lambda: 1.0, norm: l2, strategy: hybrid}
            merge: {method: linear, dtype: bfloat16}
            evaluator: {kind: exec, command: ["python3", "eval.py"], timeout: 600}
            objectives:
              - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
              - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
            optimizer: {initial: \(initial), iterations: \(iterations), batch: \(batch), acquisition: \(acquisition), seed: 0}
            """ + (extra.isEmpty ? "" : "\n" + extra)
        try yaml.write(to: studyFile, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// The events of the JSONL file.
    func readEvents() -> [EventRecord] {
        guard let data = try? Data(contentsOf: events) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? EventRecord(jsonLine: Data($0)) }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A running `bambo coordinator` process.
final class CoordinatorProcess {
    let process = Process()
    let stderrFile: URL
    private(set) var endpoint = ""

    /// Starts the coordinator and waits until it listens (at most `timeout` seconds).
    init(fixture: StudyFixture, port: Int? = nil, extra: [String] = [], timeout: Double = 30) throws {
        stderrFile = fixture.directory.appendingPathComponent("coordinator-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.executableURL = Bambo.executable
        process.arguments = [
            "coordinator", "--study", fixture.studyFile.path, "--archive", fixture.archive.path,
            "--bind", "tcp://127.0.0.1:\(port.map(String.init) ?? "*")", "--events", "tcp://127.0.0.1:*", "--heartbeat", "0.2",
        ] + extra
        process.currentDirectoryURL = fixture.directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let range = log.range(of: #"listening on tcp://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                endpoint = String(log[range].dropFirst("listening on ".count))
                return
            }
            guard process.isRunning else { throw CoordinatorError("coordinator exited early: \(log)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        process.terminate()
        throw CoordinatorError("coordinator did not start listening within \(timeout) s: \(log)")
    }

    var log: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit; kills it and returns nil after `timeout` seconds.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A simulated worker: a real DEALER socket speaking BAMBO/1 on its own thread. It evaluates a TASK
/// by waiting `evaluationSeconds` and answering a RESULT that is a deterministic function of the
/// weights; it beats, resends unacknowledged results after a reconnection, re-registers when the
/// coordinator goes silent, and leaves on SHUTDOWN.
final class SimulatedWorker: @unchecked Sendable {
    struct Behavior {
        var slots = 1
        var evaluationSeconds = 0.05
        /// Go silent (send nothing, answer nothing) when this many TASKs have arrived.
        var silentAtTask: Int? = nil
        var curve: (keyPair: CurveKeyPair, serverKey: CurveKey)? = nil
    }

    struct Stats {
        var tasks: [AttemptRef] = []
        /// The TASK bodies, in arrival order.
        var bodies: [TaskBody] = []
        var results: [AttemptRef] = []
        var acks: [AckBody] = []
        var errors: [ErrorCode] = []
        var welcomes = 0
        var shutdown = false
        var silent = false
    }

    let name: String
    let endpoint: String
    let behavior: Behavior
    private let lock = NSLock()
    private var _stats = Stats()
    private var stopRequested = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(name: String, endpoint: String, behavior: Behavior = Behavior()) {
        self.name = name
        self.endpoint = endpoint
        self.behavior = behavior
    }

    var stats: Stats { lock.withLock { _stats } }

    func start(context: Context) {
        let thread = Thread { [self] in
            do { try run(context: context) } catch { lock.withLock { _stats.errors.append(ErrorCode("LOCAL: \(error)")) } }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    func stop() { lock.withLock { stopRequested = true } }

    /// Waits for the worker thread to end (after SHUTDOWN or `stop`).
    func join(timeout: Double) -> Bool { done.wait(timeout: .now() + timeout) == .success }

    static func metrics(for weights: [Double]) -> Metrics {
        let mean = weights.reduce(0, +) / Double(max(1, weights.count))
        let first = weights.first ?? 0
        return Metrics(benchmarks: [
            "alpha": .init(accuracy: 0.3 + 0.5 * mean, tokens: 200 + 800 * mean * mean),
            "beta": .init(accuracy: 0.2 + 0.4 * first + 0.2 * mean, tokens: 300 + 500 * mean),
        ])
    }

    private func update(_ body: (inout Stats) -> Void) { lock.withLock { body(&_stats) } }

    private func run(context: Context) throws {
        let peer = try WorkerPeer(context: context, name: name, endpoint: endpoint, curve: behavior.curve)
        defer { peer.close() }
        let clock = ContinuousClock()
        var interval = 0.2
        var lease = 0.6
        var running: [(ref: AttemptRef, weights: [Double], finish: ContinuousClock.Instant)] = []
        var unacked: [AttemptRef: Message] = [:]
        func held() -> [AttemptRef] { (running.map(\.ref) + unacked.keys).sorted { ($0.trial, $0.attempt) < ($1.trial, $1.attempt) } }
        func ready() throws {
            try peer.send(.ready(ReadyBody(
                worker: name, pid: Int(getpid()), host: "sim-\(name)",
                capabilities: Capabilities(slots: behavior.slots, gpus: [], backends: ["sim"], evaluators: ["exec"], version: "test"),
                activeTrials: held())))
        }
        try ready()
        var lastReady = clock.now
        var lastHeard = clock.now
        var lastSent = clock.now
        var silent = false
        while !lock.withLock({ stopRequested }) {
            let message: Message?
            do { message = try peer.receive(timeout: .milliseconds(10)) } catch let error as ProtocolError {
                update { $0.errors.append(error.code) }
                continue
            }
            if silent { continue }
            if let message {
                lastHeard = clock.now
                switch message {
                case .welcome(let body):
                    interval = body.heartbeatInterval
                    lease = Double(body.leaseBeats) * body.heartbeatInterval
                    update { $0.welcomes += 1 }
                    for (_, result) in unacked.sorted(by: { $0.key.trial < $1.key.trial }) { try peer.send(result) }
                case .task(let body):
                    let ref = AttemptRef(trial: body.trial, attempt: body.attempt)
                    update {
                        $0.tasks.append(ref)
                        $0.bodies.append(body)
                    }
                    if let limit = behavior.silentAtTask, stats.tasks.count >= limit {
                        silent = true
                        update { $0.silent = true }
                        continue
                    }
                    running.append((ref, body.weights, clock.now + .milliseconds(Int(behavior.evaluationSeconds * 1000))))
                case .cancel(let body):
                    // As a real worker: stop the attempt and answer FAILURE CANCELLED (a finished one
                    // is answered by its RESULT, resent until acknowledged).
                    let ref = AttemptRef(trial: body.trial, attempt: body.attempt)
                    if let index = running.firstIndex(where: { $0.ref == ref }) {
                        running.remove(at: index)
                        try peer.send(.failure(FailureBody(trial: ref.trial, attempt: ref.attempt, code: .cancelled, reason: "cancelled: \(body.reason)")))
                    }
                case .ack(let body):
                    unacked[AttemptRef(trial: body.trial, attempt: body.attempt)] = nil
                    update { $0.acks.append(body) }
                case .shutdown:
                    update { $0.shutdown = true }
                    try peer.send(.bye(ByeBody(reason: "shutdown")))
                    Thread.sleep(forTimeInterval: 0.05)
                    return
                case .error(let body):
                    update { $0.errors.append(body.code) }
                    // The coordinator does not know us (it restarted, or declared us lost): register again.
                    if body.code == .unknownWorker, clock.now - lastReady > .milliseconds(Int(interval * 1000)) {
                        try ready()
                        lastReady = clock.now
                    }
                default:
                    break
                }
            }
            let now = clock.now
            while let index = running.firstIndex(where: { $0.finish <= now }) {
                let done = running.remove(at: index)
                let result = Message.result(ResultBody(
                    trial: done.ref.trial, attempt: done.ref.attempt, metrics: Self.metrics(for: done.weights),
                    durations: Durations(merge: 0, evaluate: behavior.evaluationSeconds)))
                unacked[done.ref] = result
                try peer.send(result)
                lastSent = now
                update { $0.results.append(done.ref) }
            }
            if now - lastSent >= .milliseconds(Int(interval * 1000)) {
                try peer.send(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: held())))
                lastSent = now
            }
            if now - lastHeard > .milliseconds(Int(lease * 1000)) {
                // The coordinator went silent: register again (the socket reconnects by itself).
                try ready()
                lastReady = now
                lastHeard = now
                lastSent = now
            }
        }
    }
}
