import BamboProtocol
import BamboTestSupport
import Foundation
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A message a worker sent to the test coordinator, with when it arrived.
struct Arrival: Sendable {
    let time: Date
    let identity: Data
    let message: Message
    let userID: String?
}

/// A stand-in coordinator: a ROUTER on 127.0.0.1 speaking BAMBO/1 through `WireCodec`, with an
/// inbox of decoded worker messages and automatic HEARTBEATs to every worker it has heard from.
final class TestCoordinator: @unchecked Sendable {
    let context: Context
    private let loop: SocketLoop
    private var socket: SocketLoop.SocketID?
    private let curveSecret: CurveSecretKey?
    private let state = Mutex(State())
    private(set) var endpoint: String = ""
    private var pump: Task<Void, Never>?
    private var beats: Task<Void, Never>?
    let heartbeatInterval: Double
    private var zap: ZAPHandler?

    struct State {
        var inbox: [Arrival] = []
        var all: [Arrival] = []
        var peers: Set<Data> = []
        var beating = true
        var undecodable: [String] = []
    }

    init(heartbeatInterval: Double = 0.2, curve: CurveKeyPair? = nil, allowedKeys: Set<CurveKey> = []) throws {
        self.heartbeatInterval = heartbeatInterval
        context = try Context()
        if curve != nil { zap = try ZAPHandler(context: context, allowedKeys: allowedKeys) }
        curveSecret = curve?.secretKey
        loop = try SocketLoop(context: context, name: "test-coordinator")
        try bind("tcp://127.0.0.1:*")
        let messages = loop.messages
        pump = Task { [weak self] in
            do {
                for try await message in messages { self?.accept(message) }
            } catch {}
        }
        beats = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(heartbeatInterval * 1000)))
                guard let self else { return }
                let (peers, beating) = self.state.withLock { ($0.peers, $0.beating) }
                if beating { for peer in peers { self.send(.coordinatorHeartbeat, to: peer) } }
            }
        }
    }

    deinit {
        pump?.cancel()
        beats?.cancel()
        loop.close()
        zap?.close()
    }

    private func bind(_ address: String) throws {
        let secret = curveSecret
        let (id, bound) = try loop.performAndWait { sockets in
            let router = try Socket(sockets.context, type: .router)
            try router.set(.linger, .zero)
            try router.set(.routerHandover, true)
            if let secret { try router.makeCurveServer(secretKey: secret) }
            try router.bind(address)
            return (sockets.add(router, receive: .stream), try router.lastEndpoint)
        }
        socket = id
        endpoint = bound
    }

    private func accept(_ message: SocketLoop.Message) {
        guard message.socket == socket, message.frames.count >= 1 else { return }
        let identity = message.frames[0]
        do {
            let decoded = try WireCodec.decode(frames: Array(message.frames.dropFirst()), from: .worker)
            let arrival = Arrival(time: Date(), identity: identity, message: decoded, userID: message.userID)
            state.withLock {
                $0.inbox.append(arrival)
                $0.all.append(arrival)
                $0.peers.insert(identity)
            }
        } catch {
            state.withLock { $0.undecodable.append("\(error)") }
        }
    }

    /// Sends a message to a worker (by routing id).
    func send(_ message: Message, to identity: Data) {
        guard let socket, let frames = try? WireCodec.encode(message) else { return }
        _ = try? loop.performAndWait { try $0.socket(socket).send([identity] + frames, dontWait: true) }
    }

    func send(_ message: Message, to name: String) { send(message, to: Data(name.utf8)) }

    /// The next worker message, waiting at most `timeout` seconds.
    func next(timeout: Double) async -> Arrival? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let arrival = state.withLock({ $0.inbox.isEmpty ? nil : $0.inbox.removeFirst() }) { return arrival }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// Waits for the first message of `type` (earlier ones stay in `all`); nil on timeout.
    func expect(_ type: MessageType, timeout: Double = 60, where matches: (Message) -> Bool = { _ in true }) async -> Arrival? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let arrival = await next(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if arrival.message.type == type && matches(arrival.message) { return arrival }
        }
        return nil
    }

    /// Every message received so far, in order.
    var all: [Arrival] { state.withLock { $0.all } }
    var undecodable: [String] { state.withLock { $0.undecodable } }

    /// READY → WELCOME; returns the READY.
    func register(timeout: Double = 60) async -> ReadyBody? {
        guard let arrival = await expect(.ready, timeout: timeout), case .ready(let ready) = arrival.message else { return nil }
        // 15 beats (3 s at 0.2 s): a worker on a loaded 2-core machine must not take scheduling delays for silence.
        send(.welcome(WelcomeBody(study: "test", heartbeatInterval: heartbeatInterval, leaseBeats: 15)), to: arrival.identity)
        return ready
    }

    /// Closes the socket: the coordinator "goes away" (no heartbeats either).
    func disappear() {
        state.withLock { $0.beating = false; $0.peers = [] }
        if let old = socket {
            socket = nil
            _ = try? loop.performAndWait { $0.remove(old) }
        }
    }

    /// Binds the same address again.
    func comeBack() throws {
        try bind(endpoint)
        state.withLock { $0.beating = true }
    }
}

/// The worker tests' name for a lock-protected value (BamboTestSupport).
typealias Mutex = Locked

/// The built `bambo` executable (BamboTestSupport).
enum Bambo {
    static var executable: URL { BuiltBambo.executable }

    /// Runs `bambo arguments…` to completion; throws with its stderr when it fails.
    static func run(_ arguments: [String]) throws {
        let run = try BuiltBambo.run(arguments)
        guard run.status == 0 else {
            throw TestFailure("bambo \(arguments.joined(separator: " ")) failed: \(run.stderr)")
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A `bambo worker` process; its stderr goes to a log file (printed when a test fails).
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let log: URL

    init(_ arguments: [String], in directory: URL) throws {
        log = directory.appendingPathComponent("worker-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = Bambo.executable
        process.arguments = ["worker"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// The exit status, or nil if it still runs after `timeout` seconds.
    func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Everything an end-to-end test needs: a temporary directory with a synthetic model family
/// (made once by `bambo synthesize`), the evaluator script and a scratch directory.
struct Fixture {
    static let shared: Result<URL, Error> = Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-worker-tests-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Bambo.run(["synthesize", "--out", directory.appendingPathComponent("models").path, "--layers", "4", "--hidden", "64"])
        try evaluatorScript.write(to: directory.appendingPathComponent("eval.py"), atomically: true, encoding: .utf8)
        return directory
    }

    let root: URL
    let scratch: URL

    init() throws {
        root = try Fixture.shared.get()
        scratch = root.appendingPathComponent("scratch-\(UUID().uuidString.prefix(8))")
    }

    var evaluator: String { root.appendingPathComponent("eval.py").path }
    func model(_ name: String) -> ModelRef { ModelRef(name: name, path: root.appendingPathComponent("models/\(name)").path) }

    /// A TASK over the synthetic instruct/thinking pair (4 layers in 2 blocks) running `eval.py MODE ARGS`.
    func task(_ trial: Int64, attempt: Int = 1, weights: [Double] = [0.1, 0.3, 0.6, 0.9], mode: [String] = ["ok"],
              timeout: Double = 60, models: [ModelRef]? = nil) -> TaskBody {
        TaskBody(
            trial: trial, attempt: attempt, weights: weights, partition: PartitionSpec(blocks: [[0, 1], [2, 3]], layers: 4),
            models: models ?? [model("instruct"), model("thinking")], merge: MergeSpec(method: "linear", dtype: .bfloat16),
            evaluator: ["kind": "exec", "command": .array((["python3", evaluator] + mode).map { .string($0) }), "timeout": .number(timeout)])
    }

    func attemptDirectory(_ trial: Int64, _ attempt: Int = 1) -> URL {
        scratch.appendingPathComponent("trial-\(trial)-attempt-\(attempt)")
    }

    func workerArguments(_ coordinator: TestCoordinator, name: String = "w1", extra: [String] = []) -> [String] {
        ["--connect", coordinator.endpoint, "--name", name, "--scratch", scratch.path, "--heartbeat", "0", "--merge-threads", "1"] + extra
    }

    /// The test evaluator: accuracy = mean of the weights, tokens = 100 × (1 + first weight);
    /// reports what it saw of the model directory and when it ran. Modes: ok [SLEEP], fail,
    /// badjson, nan, hang.
    static let evaluatorScript = #"""
    import json, os, sys, time
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    started = time.time()
    model = os.environ["BAMBO_MODEL_DIR"]
    weights = json.loads(os.environ["BAMBO_WEIGHTS"])
    files = sorted(os.listdir(model))
    shards = [f for f in files if f.endswith(".safetensors")]
    written = max(os.stat(os.path.join(model, f)).st_mtime for f in shards) if shards else 0
    with open(os.path.join(os.environ["BAMBO_WORK_DIR"], "..", "eval-%s.pid" % os.environ["BAMBO_TRIAL"]), "w") as f:
        f.write(str(os.getpid()))
    print("evaluating", model, file=sys.stderr, flush=True)
    if mode == "fail":
        print("loading the model...", file=sys.stderr)
        print("RuntimeError: CUDA out of memory (pretend)", file=sys.stderr)
        sys.exit(1)
    if mode == "badjson":
        print("accuracy: 0.5")
        sys.exit(0)
    if mode == "nan":
        print(json.dumps({"benchmarks": {"math": {"accuracy": float("nan"), "tokens": 5}}}))
        sys.exit(0)
    if mode == "hang":
        time.sleep(600)
    if len(sys.argv) > 2:
        time.sleep(float(sys.argv[2]))
    accuracy = sum(weights) / len(weights)
    print(json.dumps({"benchmarks": {"math": {
        "accuracy": accuracy, "tokens": 100 * (1 + weights[0]), "items": 7,
        "started": started, "ended": time.time(), "modelWritten": written,
        "files": files, "trial": os.environ["BAMBO_TRIAL"], "attempt": os.environ["BAMBO_ATTEMPT"],
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "")}}}))
    """#
}

extension Message {
    var resultBody: ResultBody? { if case .result(let body) = self { body } else { nil } }
    var failureBody: FailureBody? { if case .failure(let body) = self { body } else { nil } }
    var progressBody: ProgressBody? { if case .progress(let body) = self { body } else { nil } }
}

extension BenchmarkMetrics {
    func number(_ key: String) -> Double? { extra[key]?.numberValue }
}
