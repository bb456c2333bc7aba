import Foundation

// The JSON bodies (frame 2) of every BAMBO/1 message. Field meanings: Protocol/README.md §4.
// Optional fields are encoded only when present.

/// Identifies one attempt: the trial and its dispatch number (both ≥ 1).
public struct AttemptRef: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public init(trial: Int64, attempt: Int) {
        self.trial = trial
        self.attempt = attempt
    }
}

/// A checkpoint directory as the worker sees it.
public struct ModelRef: Codable, Sendable, Hashable {
    public var name: String
    public var path: String
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

// MARK: worker → coordinator

/// What a worker offers; part of READY.
public struct Capabilities: Codable, Sendable, Hashable {
    /// Tasks the worker accepts at once: 1 + prefetch.
    public var slots: Int
    /// Accelerators it uses, as given by `--gpus`.
    public var gpus: [String]
    /// Inference backends available (`vllm`, `transformers`, …).
    public var backends: [String]
    /// Evaluator kinds it can run (`exec`, …).
    public var evaluators: [String]
    /// The worker software version.
    public var version: String
    public init(slots: Int, gpus: [String], backends: [String], evaluators: [String], version: String) {
        self.slots = slots
        self.gpus = gpus
        self.backends = backends
        self.evaluators = evaluators
        self.version = version
    }
}

/// READY: registers a worker; the first message on every connection.
public struct ReadyBody: Codable, Sendable, Hashable {
    /// The worker's name; equals its ZeroMQ routing id.
    public var worker: String
    public var pid: Int
    public var host: String
    public var capabilities: Capabilities
    /// Attempts still held from an earlier connection (running or unacknowledged).
    public var activeTrials: [AttemptRef]?
    public init(worker: String, pid: Int, host: String, capabilities: Capabilities, activeTrials: [AttemptRef]? = nil) {
        self.worker = worker
        self.pid = pid
        self.host = host
        self.capabilities = capabilities
        self.activeTrials = activeTrials
    }
}

/// HEARTBEAT sent by a worker: the attempts it holds right now.
public struct WorkerHeartbeatBody: Codable, Sendable, Hashable {
    public var activeTrials: [AttemptRef]
    public init(activeTrials: [AttemptRef]) { self.activeTrials = activeTrials }
}

/// The phase a PROGRESS message reports on.
public enum Phase: String, Codable, Sendable, Hashable, CaseIterable {
    case merge
    case evaluate
}

/// PROGRESS: how far an attempt has got (advisory).
public struct ProgressBody: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public var phase: Phase
    /// Units finished in this phase (tensors merged, items evaluated).
    public var done: Int
    /// Units in this phase; 0 = unknown.
    public var total: Int
    public var message: String?
    public init(trial: Int64, attempt: Int, phase: Phase, done: Int, total: Int, message: String? = nil) {
        self.trial = trial
        self.attempt = attempt
        self.phase = phase
        self.done = done
        self.total = total
        self.message = message
    }
}

/// Raw metrics of one benchmark. `accuracy` and `tokens` are required; any further fields are kept
/// in `extra` and encoded back unchanged.
public struct BenchmarkMetrics: Sendable, Hashable {
    /// Fraction of items answered correctly, in [0, 1].
    public var accuracy: Double
    /// Mean output tokens per item.
    public var tokens: Double
    /// Number of items evaluated, when known.
    public var items: Int?
    /// Further metrics, passed through.
    public var extra: [String: JSONValue]
    public init(accuracy: Double, tokens: Double, items: Int? = nil, extra: [String: JSONValue] = [:]) {
        self.accuracy = accuracy
        self.tokens = tokens
        self.items = items
        self.extra = extra
    }
}

extension BenchmarkMetrics: Codable {
    private enum Known: String, CaseIterable { case accuracy, tokens, items }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        accuracy = try container.decode(Double.self, forKey: AnyKey(Known.accuracy.rawValue))
        tokens = try container.decode(Double.self, forKey: AnyKey(Known.tokens.rawValue))
        items = try container.decodeIfPresent(Int.self, forKey: AnyKey(Known.items.rawValue))
        let known = Set(Known.allCases.map(\.rawValue))
        var extra: [String: JSONValue] = [:]
        for key in container.allKeys where !known.contains(key.stringValue) {
            extra[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
        self.extra = extra
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        for (key, value) in extra where Known(rawValue: key) == nil {
            try container.encode(value, forKey: AnyKey(key))
        }
        try container.encode(accuracy, forKey: AnyKey(Known.accuracy.rawValue))
        try container.encode(tokens, forKey: AnyKey(Known.tokens.rawValue))
        try container.encodeIfPresent(items, forKey: AnyKey(Known.items.rawValue))
    }
}

/// The metrics of a RESULT: `{"benchmarks": {NAME: BenchmarkMetrics}}` — the same shape an `exec`
/// evaluator prints and `bambo eval --json` writes.
public struct Metrics: Codable, Sendable, Hashable {
    public var benchmarks: [String: BenchmarkMetrics]
    public init(benchmarks: [String: BenchmarkMetrics]) { self.benchmarks = benchmarks }
}

/// Seconds spent in each phase of an attempt.
public struct Durations: Codable, Sendable, Hashable {
    public var merge: Double
    public var evaluate: Double
    public init(merge: Double, evaluate: Double) {
        self.merge = merge
        self.evaluate = evaluate
    }
}

/// One evaluated item of a benchmark.
public struct ItemRecord: Sendable, Hashable {
    /// The benchmark (a key of `Metrics.benchmarks`).
    public var benchmark: String
    /// The item's id within its benchmark.
    public var id: String
    /// The model's output.
    public var response: String
    /// The answer extracted from the response; nil when none could be extracted.
    public var extracted: String?
    public var correct: Bool
    /// Output tokens of this response.
    public var tokens: Int
    public init(benchmark: String, id: String, response: String, extracted: String?, correct: Bool, tokens: Int) {
        self.benchmark = benchmark
        self.id = id
        self.response = response
        self.extracted = extracted
        self.correct = correct
        self.tokens = tokens
    }
}

extension ItemRecord: Codable {
    private enum CodingKeys: String, CodingKey { case benchmark, id, response, extracted, correct, tokens }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        benchmark = try container.decode(String.self, forKey: .benchmark)
        id = try container.decode(String.self, forKey: .id)
        response = try container.decode(String.self, forKey: .response)
        // Required, but may be null: the key must be there.
        guard container.contains(.extracted) else {
            throw DecodingError.keyNotFound(
                CodingKeys.extracted,
                .init(codingPath: container.codingPath, debugDescription: "required (null when nothing was extracted)"))
        }
        extracted = try container.decodeIfPresent(String.self, forKey: .extracted)
        correct = try container.decode(Bool.self, forKey: .correct)
        tokens = try container.decode(Int.self, forKey: .tokens)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(benchmark, forKey: .benchmark)
        try container.encode(id, forKey: .id)
        try container.encode(response, forKey: .response)
        try container.encode(extracted, forKey: .extracted)  // null when nil
        try container.encode(correct, forKey: .correct)
        try container.encode(tokens, forKey: .tokens)
    }
}

/// RESULT: an attempt finished with metrics.
public struct ResultBody: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public var metrics: Metrics
    public var durations: Durations
    /// Per-item records, when the evaluator produced them.
    public var items: [ItemRecord]?
    public init(trial: Int64, attempt: Int, metrics: Metrics, durations: Durations, items: [ItemRecord]? = nil) {
        self.trial = trial
        self.attempt = attempt
        self.metrics = metrics
        self.durations = durations
        self.items = items
    }
}

/// FAILURE: an attempt ended without a result.
public struct FailureBody: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public var code: FailureCode
    /// One line for people.
    public var reason: String
    /// The last lines of the merge/evaluator log; may be empty.
    public var logTail: String
    public init(trial: Int64, attempt: Int, code: FailureCode, reason: String, logTail: String = "") {
        self.trial = trial
        self.attempt = attempt
        self.code = code
        self.reason = reason
        self.logTail = logTail
    }
}

/// BYE: the worker leaves.
public struct ByeBody: Codable, Sendable, Hashable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

// MARK: coordinator → worker

/// WELCOME: registration accepted.
public struct WelcomeBody: Codable, Sendable, Hashable {
    public var study: String
    /// Seconds between heartbeats, both directions.
    public var heartbeatInterval: Double
    /// A peer silent for `leaseBeats × heartbeatInterval` seconds is dead.
    public var leaseBeats: Int
    /// The coordinator's protocol revision, "MAJOR.MINOR".
    public var protocolVersion: String
    public init(study: String, heartbeatInterval: Double, leaseBeats: Int = 3, protocolVersion: String = WireFormat.revision) {
        self.study = study
        self.heartbeatInterval = heartbeatInterval
        self.leaseBeats = leaseBeats
        self.protocolVersion = protocolVersion
    }
}

/// The layer blocks of a TASK: K blocks of 0-based inclusive layer indices covering `0..<layers`.
public struct PartitionSpec: Codable, Sendable, Hashable {
    /// `[[first, last], …]`, contiguous, covering every layer.
    public var blocks: [[Int]]
    /// L, the number of transformer layers.
    public var layers: Int
    public init(blocks: [[Int]], layers: Int) {
        self.blocks = blocks
        self.layers = layers
    }
    /// D = K + 2: the length of the weight vector (embedding, K blocks, head).
    public var dimension: Int { blocks.count + 2 }
}

/// Dtype of the merged checkpoint.
public enum MergeDType: String, Codable, Sendable, Hashable, CaseIterable {
    case bfloat16, float16, float32
}

/// How to merge: method name, output dtype, method parameters (passed through), seed.
public struct MergeSpec: Codable, Sendable, Hashable {
    public var method: String
    public var dtype: MergeDType
    public var params: [String: JSONValue]
    public var seed: Int
    public init(method: String, dtype: MergeDType, params: [String: JSONValue] = [:], seed: Int = 0) {
        self.method = method
        self.dtype = dtype
        self.params = params
        self.seed = seed
    }
}

/// TASK: evaluate one attempt of a trial.
public struct TaskBody: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    /// The decision vector x: `[embedding, block 1…K, head]`, each the weight of `models[1]`.
    public var weights: [Double]
    public var partition: PartitionSpec
    /// Exactly two: `models[0]` is weight 0, `models[1]` weight 1.
    public var models: [ModelRef]
    /// The base model, for methods that merge task vectors.
    public var base: ModelRef?
    public var merge: MergeSpec
    /// The study's evaluator object, passed through; has a string `kind`.
    public var evaluator: [String: JSONValue]
    /// Seconds the worker may spend on this attempt, from receipt.
    public var deadline: Double?
    public init(
        trial: Int64, attempt: Int, weights: [Double], partition: PartitionSpec, models: [ModelRef],
        base: ModelRef? = nil, merge: MergeSpec, evaluator: [String: JSONValue], deadline: Double? = nil
    ) {
        self.trial = trial
        self.attempt = attempt
        self.weights = weights
        self.partition = partition
        self.models = models
        self.base = base
        self.merge = merge
        self.evaluator = evaluator
        self.deadline = deadline
    }
}

/// HEARTBEAT sent by the coordinator: no fields.
public struct CoordinatorHeartbeatBody: Codable, Sendable, Hashable {
    public init() {}
}

/// CANCEL: stop an attempt; the worker answers FAILURE `CANCELLED` unless it already answered.
public struct CancelBody: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public var reason: String
    public init(trial: Int64, attempt: Int, reason: String) {
        self.trial = trial
        self.attempt = attempt
        self.reason = reason
    }
}

/// What the coordinator made of a RESULT or FAILURE.
public enum AckOutcome: String, Codable, Sendable, Hashable, CaseIterable {
    /// Recorded now.
    case accepted
    /// This attempt was recorded before.
    case duplicate
    /// Not the trial's current attempt for this worker: ignored.
    case stale
}

/// ACK: answers every RESULT and FAILURE once its outcome is durably recorded.
public struct AckBody: Codable, Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public var outcome: AckOutcome
    public init(trial: Int64, attempt: Int, outcome: AckOutcome) {
        self.trial = trial
        self.attempt = attempt
        self.outcome = outcome
    }
}

/// SHUTDOWN: the study is over.
public struct ShutdownBody: Codable, Sendable, Hashable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// ERROR: a message could not be accepted.
public struct ErrorBody: Codable, Sendable, Hashable {
    public var code: ErrorCode
    /// What was wrong, naming the field.
    public var message: String
    /// The type of the message that caused it, when known.
    public var inReplyTo: String?
    /// The attempt concerned (revision 1.1; set with `STALE_ATTEMPT`: the attempt to stop).
    public var trial: Int64?
    public var attempt: Int?
    public init(code: ErrorCode, message: String, inReplyTo: String? = nil, attempt ref: AttemptRef? = nil) {
        self.code = code
        self.message = message
        self.inReplyTo = inReplyTo
        self.trial = ref?.trial
        self.attempt = ref?.attempt
    }

    /// `trial` and `attempt` together, when both are given.
    public var attemptRef: AttemptRef? {
        guard let trial, let attempt else { return nil }
        return AttemptRef(trial: trial, attempt: attempt)
    }
}

/// A coding key for any member name.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
