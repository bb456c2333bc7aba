import BamboProtocol
import Evaluation
import Foundation

/// The `harness` evaluator (issue 6 item 8): runs the study's benchmarks with the built-in
/// evaluation (`Evaluation.evaluate`) through an inference backend the worker keeps alive across
/// trials:
///
///     evaluator: {kind: harness, backend: transformers, benchmarks: [/abs/aime.jsonl],
///                 sampling: {temperature: 0, max_tokens: 16}, samples: 1, mode: thinking}
///
/// - `transformers` serves each merged directory by its path from one `transformers serve`;
///   `vllm`/`sglang` swap weights in one server; `openai` talks to the study's `endpoint`.
/// - A TASK whose backend settings (`backend`, `endpoint`, `python`, `server_args`, GPUs) differ
///   from the running backend's shuts it down and starts a new one.
/// - Benchmarks are loaded once per path.
/// - Call `shutdown()` when the worker exits.
public actor HarnessEvaluator: Evaluator {
    public nonisolated let kind = "harness"
    /// The Python interpreter for server backends when the configuration names none.
    public let defaultPython: String
    /// Where backends keep their server logs and caches (kept across attempts).
    public let workDirectory: URL
    /// How many server log lines a failure carries.
    public let tailLines: Int
    private let log: @Sendable (String) -> Void

    private var running: (key: BackendKey, backend: any InferenceBackend)?
    private var benchmarks: [String: Benchmark] = [:]

    public init(python: String, workDirectory: URL, tailLines: Int = 40, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.log = log
        self.defaultPython = python
        self.workDirectory = workDirectory
        self.tailLines = tailLines
    }

    /// Which backend a configuration needs; a different key means a different server.
    struct BackendKey: Equatable {
        var backend: String
        var endpoint: String?
        var python: String
        var serverArguments: [String]
        var cudaVisibleDevices: String?
    }

    /// A `harness` configuration, read and checked.
    public struct Settings: Sendable, Equatable {
        public var backend: String
        public var benchmarks: [String]
        public var sampling: SamplingParameters
        public var samples: Int
        public var instruct: Bool
        public var endpoint: String?
        public var python: String?
        public var serverArguments: [String]
        public var chatTemplateKwargs: [String: JSONValue]?
        public var concurrency: Int
        public var requestTimeout: Double
        /// `prompts: standard` (instructions for reasoning models, the default) or `bare` (the question
        /// alone, for models trained on bare questions such as the demo family).
        public var prompts: PromptTemplates
    }

    public static let backends = ["transformers", "vllm", "sglang", "openai"]
    public static let keys = ["kind", "backend", "benchmarks", "sampling", "samples", "mode", "endpoint", "python",
                              "server_args", "chat_template_kwargs", "concurrency", "request_timeout", "prompts"]
    /// The prompt styles of the `prompts` key.
    public static let promptStyles: [String: PromptTemplates] = ["standard": .standard, "bare": .bare]
    public static let samplingKeys = ["temperature", "top_p", "top_k", "min_p", "max_tokens", "seed"]

    /// Reads a `harness` configuration or throws `BAD_TASK` naming the key. Pure.
    public static func settings(of configuration: [String: JSONValue]) throws(AttemptFailure) -> Settings {
        func bad(_ key: String, _ reason: String) -> AttemptFailure { AttemptFailure(code: .badTask, reason: "evaluator.\(key): \(reason)") }
        for key in configuration.keys.sorted() where !keys.contains(key) {
            throw bad(key, "unknown key (expected one of \(keys.joined(separator: ", ")))")
        }
        guard let backend = configuration["backend"]?.stringValue, backends.contains(backend) else {
            throw bad("backend", "expected one of \(backends.joined(separator: ", "))")
        }
        guard case .array(let list)? = configuration["benchmarks"], !list.isEmpty else {
            throw bad("benchmarks", "expected a non-empty list of benchmark file paths")
        }
        var paths: [String] = []
        for (index, entry) in list.enumerated() {
            guard let path = entry.stringValue, !path.isEmpty else { throw bad("benchmarks[\(index)]", "expected a file path") }
            paths.append(path)
        }
        func integer(_ key: String, _ value: JSONValue?, atLeast minimum: Int) throws(AttemptFailure) -> Int? {
            guard let value, value != .null else { return nil }
            guard let number = value.numberValue, number == number.rounded(), number >= Double(minimum), number < 1e15 else {
                throw bad(key, "expected an integer ≥ \(minimum)")
            }
            return Int(number)
        }
        func number(_ key: String, _ value: JSONValue?, in range: ClosedRange<Double>) throws(AttemptFailure) -> Double? {
            guard let value, value != .null else { return nil }
            guard let number = value.numberValue, number.isFinite, range.contains(number) else {
                throw bad(key, "expected a number in [\(range.lowerBound), \(range.upperBound)]")
            }
            return number
        }
        var instruct = false
        if let mode = configuration["mode"], mode != .null {
            guard let text = mode.stringValue, ["thinking", "instruct"].contains(text) else { throw bad("mode", "expected thinking or instruct") }
            instruct = text == "instruct"
        }
        var sampling = instruct ? SamplingParameters.qwen3Instruct : .qwen3Thinking
        if let value = configuration["sampling"], value != .null {
            guard let fields = value.objectValue else { throw bad("sampling", "expected a mapping of \(samplingKeys.joined(separator: ", "))") }
            for key in fields.keys.sorted() where !samplingKeys.contains(key) {
                throw bad("sampling.\(key)", "unknown key (expected one of \(samplingKeys.joined(separator: ", ")))")
            }
            if let t = try number("sampling.temperature", fields["temperature"], in: 0...100) { sampling.temperature = t }
            if let p = try number("sampling.top_p", fields["top_p"], in: 0...1) { sampling.topP = p }
            if let k = try integer("sampling.top_k", fields["top_k"], atLeast: -1) { sampling.topK = k }
            if let p = try number("sampling.min_p", fields["min_p"], in: 0...1) { sampling.minP = p }
            if let m = try integer("sampling.max_tokens", fields["max_tokens"], atLeast: 1) { sampling.maxTokens = m }
            if let s = try integer("sampling.seed", fields["seed"], atLeast: 0) { sampling.seed = s }
        }
        func text(_ key: String) throws(AttemptFailure) -> String? {
            guard let value = configuration[key], value != .null else { return nil }
            guard let text = value.stringValue, !text.isEmpty else { throw bad(key, "expected a non-empty string") }
            return text
        }
        let endpoint = try text("endpoint")
        if backend == "openai" && endpoint == nil { throw bad("endpoint", "missing (the openai backend needs the server's URL, e.g. http://host:8000/v1)") }
        if let endpoint, URL(string: endpoint)?.scheme == nil { throw bad("endpoint", "expected a URL such as http://host:8000/v1") }
        var serverArguments: [String] = []
        if let value = configuration["server_args"], value != .null {
            guard case .array(let parts) = value else { throw bad("server_args", "expected a list of strings") }
            for (index, part) in parts.enumerated() {
                guard let text = part.stringValue else { throw bad("server_args[\(index)]", "expected a string") }
                serverArguments.append(text)
            }
        }
        var kwargs: [String: JSONValue]?
        if let value = configuration["chat_template_kwargs"], value != .null {
            guard let object = value.objectValue else { throw bad("chat_template_kwargs", "expected a mapping, e.g. {enable_thinking: false}") }
            kwargs = object
        }
        var prompts = PromptTemplates.standard
        if let value = configuration["prompts"], value != .null {
            guard let name = value.stringValue, let style = promptStyles[name] else {
                throw bad("prompts", "expected one of \(promptStyles.keys.sorted().joined(separator: ", "))")
            }
            prompts = style
        }
        return Settings(
            backend: backend, benchmarks: paths, sampling: sampling,
            samples: try integer("samples", configuration["samples"], atLeast: 1) ?? 1, instruct: instruct,
            endpoint: endpoint, python: try text("python"), serverArguments: serverArguments, chatTemplateKwargs: kwargs,
            concurrency: try integer("concurrency", configuration["concurrency"], atLeast: 1) ?? 64,
            requestTimeout: try number("request_timeout", configuration["request_timeout"], in: 0.001...1e9) ?? 3600,
            prompts: prompts)
    }

    public func evaluate(_ job: EvaluationJob, progress: @escaping @Sendable (EvaluationProgress) -> Void) async throws(AttemptFailure) -> EvaluationOutput {
        let settings = try Self.settings(of: job.configuration)
        let loaded = try loadBenchmarks(settings.benchmarks)
        let backend = await backend(for: settings, environment: job.environment)
        var options = EvaluationOptions(samples: settings.samples, concurrency: settings.concurrency,
                                        requestTimeout: .milliseconds(Int64(settings.requestTimeout * 1000)), prompts: settings.prompts)
        var kwargs = settings.chatTemplateKwargs ?? [:]
        if settings.instruct && kwargs["enable_thinking"] == nil { kwargs["enable_thinking"] = .bool(false) }
        if !kwargs.isEmpty { options.extraRequestFields["chat_template_kwargs"] = .object(kwargs) }
        let result: EvaluationResult
        do {
            result = try await Evaluation.evaluate(
                model: job.modelDirectory.path, benchmarks: loaded, backend: backend, sampling: settings.sampling,
                options: options,
                progress: { step in progress(EvaluationProgress(done: step.done, total: step.total, message: "replies")) })
        } catch {
            if Task.isCancelled { throw AttemptFailure(code: .cancelled, reason: "evaluation stopped") }
            throw failure(error)
        }
        if let pid = await serverProcessID() {
            log("harness: trial \(job.attempt.trial) attempt \(job.attempt.attempt) evaluated on \(settings.backend) server pid \(pid)")
        }
        return Self.output(of: result)
    }

    /// Maps the evaluation's result onto the protocol's metrics and item records. Pure.
    static func output(of result: EvaluationResult) -> EvaluationOutput {
        var metrics: [String: BamboProtocol.BenchmarkMetrics] = [:]
        var items: [BamboProtocol.ItemRecord] = []
        for name in result.benchmarks.keys.sorted() {
            let evaluation = result.benchmarks[name]!
            let m = evaluation.metrics
            var extra: [String: JSONValue] = [
                "samples": .number(Double(m.samples)), "accuracy_stderr": .number(m.accuracyStderr),
                "tokens_stderr": .number(m.tokensStderr), "truncated": .number(Double(m.truncated)),
            ]
            if let reasoning = m.reasoningTokens { extra["reasoning_tokens"] = .number(reasoning) }
            metrics[name] = BamboProtocol.BenchmarkMetrics(accuracy: m.accuracy, tokens: m.tokens, items: m.items, extra: extra)
            for record in evaluation.records {
                // k > 1: one record per sample, the sample number appended to the id.
                let id = m.samples > 1 ? "\(record.id)#\(record.sample)" : record.id
                items.append(BamboProtocol.ItemRecord(benchmark: name, id: id, response: record.response,
                                                      extracted: record.extracted, correct: record.correct, tokens: record.tokens))
            }
        }
        return EvaluationOutput(metrics: Metrics(benchmarks: metrics), items: items)
    }

    private func loadBenchmarks(_ paths: [String]) throws(AttemptFailure) -> [Benchmark] {
        var result: [Benchmark] = []
        for (index, path) in paths.enumerated() {
            if let cached = benchmarks[path] { result.append(cached); continue }
            do {
                let benchmark = try BenchmarkLoader.load(URL(fileURLWithPath: path))
                benchmarks[path] = benchmark
                result.append(benchmark)
            } catch {
                throw AttemptFailure(code: .badTask, reason: "evaluator.benchmarks[\(index)]: \(error)")
            }
        }
        return result
    }

    /// The running backend if its settings match, else a new one (the old one shut down).
    private func backend(for settings: Settings, environment: [String: String]) async -> any InferenceBackend {
        let key = BackendKey(backend: settings.backend, endpoint: settings.endpoint, python: settings.python ?? defaultPython,
                             serverArguments: settings.serverArguments, cudaVisibleDevices: environment["CUDA_VISIBLE_DEVICES"])
        if let running, running.key == key { return running.backend }
        if let running {
            log("harness: backend settings changed; stopping the \(running.key.backend) backend")
            await running.backend.shutdown()
        }
        log("harness: new \(key.backend) backend (python \(key.python))")
        let server = ServerOptions(extraArguments: key.serverArguments, cudaVisibleDevices: key.cudaVisibleDevices,
                                   workDirectory: workDirectory.appendingPathComponent("harness-\(key.backend)"))
        let backend: any InferenceBackend
        switch key.backend {
        case "openai":
            let url = URL(string: key.endpoint ?? "") ?? URL(string: "http://127.0.0.1")!
            backend = OpenAIEndpointBackend(endpoint: url, apiKey: ProcessInfo.processInfo.environment["OPENAI_API_KEY"])
        case "vllm":
            backend = ManagedServerBackend(kind: .vllm, python: key.python, options: server)
        case "sglang":
            backend = ManagedServerBackend(kind: .sglang, python: key.python, options: server)
        default:
            backend = TransformersServeBackend(python: key.python, options: server)
        }
        running = (key, backend)
        return backend
    }

    private func failure(_ error: any Error) -> AttemptFailure {
        guard let error = error as? EvaluationError else {
            return AttemptFailure(code: .evalFailed, reason: "evaluation failed: \(error)")
        }
        switch error {
        case .serverFailedToStart(_, let log), .serverDied(_, let log):
            let summary = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            return AttemptFailure(code: .evalFailed, reason: summary, logTail: log.suffix(tailLines).joined(separator: "\n"))
        case .invalidOption, .badInput:
            return AttemptFailure(code: .badTask, reason: "\(error)")
        default:
            return AttemptFailure(code: .evalFailed, reason: "\(error)")
        }
    }

    /// The pid of the running server process, if any (for logs and tests).
    public func serverProcessID() async -> Int32? {
        guard let backend = running?.backend as? TransformersServeBackend else { return nil }
        return await backend.process?.pid
    }

    /// Stops the backend's server process, if one runs.
    public func shutdown() async {
        if let running { await running.backend.shutdown() }
        running = nil
    }
}
