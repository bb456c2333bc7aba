import ArgumentParser
import Evaluation
import Foundation

/// `bambo eval`: evaluates one model directory on benchmark files through an inference backend.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on benchmarks: accuracy and mean output tokens per benchmark.",
        discussion: """
        Benchmarks are JSONL files in BAMBO's form ({"id","question","answer","kind","choices"}), GPQA \
        (CSV or JSONL) or AIME (JSONL with problem/answer). Backends: transformers (starts `transformers \
        serve` from --python's environment; CPU, small models), vllm and sglang (start the server on a GPU \
        host), openai (an endpoint you run: --endpoint). Progress goes to stderr; --json prints \
        {"benchmarks": {"NAME": {"accuracy": a, "tokens": t, "items": n, ...}}} on stdout.
        """
    )

    enum BackendKind: String, ExpressibleByArgument, CaseIterable { case vllm, sglang, transformers, openai }
    enum Mode: String, ExpressibleByArgument, CaseIterable { case thinking, instruct }
    enum PromptStyle: String, ExpressibleByArgument, CaseIterable { case standard, bare }

    @Option(help: "Model directory (or, with --backend openai, the served model name).")
    var model: String
    @Option(name: .customLong("benchmark"), help: "Benchmark file (repeatable).")
    var benchmarks: [String]
    @Option(help: "Inference backend: \(BackendKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var backend: BackendKind
    @Option(help: "Server URL for --backend openai (e.g. http://host:8000/v1).")
    var endpoint: String?
    @Option(help: "API key for --backend openai (default: $OPENAI_API_KEY).")
    var apiKey: String?
    @Option(help: "Samples per item (k).")
    var samples: Int = 1
    @Option(help: "Sampling defaults: Qwen3's recommendations for thinking or instruct use.")
    var mode: Mode = .thinking
    @Option(help: "Maximum output tokens per reply (default 32768).")
    var maxTokens: Int?
    @Option(help: "Sampling temperature (0 = greedy).")
    var temperature: Double?
    @Option(help: "Top-p.") var topP: Double?
    @Option(help: "Top-k.") var topK: Int?
    @Option(help: "Min-p.") var minP: Double?
    @Option(help: "Sampling seed.") var seed: Int?
    @Option(help: "Chat template option enable_thinking (true/false), passed as chat_template_kwargs.")
    var enableThinking: Bool?
    @Option(help: "Prompt style: standard (boxed / 'Answer: LETTER' instructions) or bare (the question only).")
    var prompts: PromptStyle = .standard
    @Option(help: "Requests in flight at once.")
    var concurrency: Int = 256
    @Option(help: "Per-request timeout in seconds.")
    var requestTimeout: Double = 3600
    @Option(help: "Python interpreter of the backend's environment (default: $BAMBO_PYTHON, else python3).")
    var python: String?
    @Option(help: "Port for the server (default: a free one).")
    var port: Int?
    @Option(name: .customLong("server-arg"), parsing: .unconditionalSingleValue, help: "Extra server argument (repeatable), e.g. --server-arg=--max-model-len --server-arg=32768.")
    var serverArguments: [String] = []
    @Option(help: "Seconds the server may take to become healthy.")
    var startupTimeout: Double = 600
    @Option(help: "GPUs for the server (CUDA_VISIBLE_DEVICES).")
    var gpus: String?
    @Option(help: "Directory for the server's log and scratch files (default: a new temporary directory).")
    var workDir: String?
    @Option(help: "Seed for GPQA's choice order.")
    var shuffleSeed: UInt64 = 0
    @Option(help: "Write every reply with its grade to this JSONL file.")
    var records: String?
    @Flag(help: "Print the metrics as JSON on stdout.")
    var json = false

    func run() async throws {
        let loaded = try benchmarks.map { try BenchmarkLoader.load(URL(fileURLWithPath: $0), seed: shuffleSeed) }
        var sampling = mode == .thinking ? SamplingParameters.qwen3Thinking : SamplingParameters.qwen3Instruct
        if let maxTokens { sampling.maxTokens = maxTokens }
        if let temperature { sampling.temperature = temperature }
        if let topP { sampling.topP = topP }
        if let topK { sampling.topK = topK }
        if let minP { sampling.minP = minP }
        sampling.seed = seed
        var options = EvaluationOptions(samples: samples, concurrency: concurrency, requestTimeout: .seconds(requestTimeout),
                                        prompts: prompts == .bare ? .bare : .standard)
        if let enableThinking { options.extraRequestFields["chat_template_kwargs"] = .object(["enable_thinking": .bool(enableThinking)]) }

        let backend = try makeBackend()
        let stopOnSignal = SignalStopper(backend: backend)
        let result: EvaluationResult
        do {
            result = try await evaluate(model: model, benchmarks: loaded, backend: backend, sampling: sampling, options: options) { progress in
                if progress.done == progress.total || progress.done % 10 == 0 {
                    FileHandle.standardError.write(Data("eval: \(progress.done)/\(progress.total) replies\n".utf8))
                }
            }
        } catch {
            await backend.shutdown()
            stopOnSignal.cancel()
            throw error
        }
        await backend.shutdown()
        stopOnSignal.cancel()

        if let records { try result.recordsJSONL().write(to: URL(fileURLWithPath: records)) }
        if json {
            FileHandle.standardOutput.write(try result.metricsJSON())
            FileHandle.standardOutput.write(Data("\n".utf8))
        } else {
            for name in result.benchmarks.keys.sorted() {
                let m = result.benchmarks[name]!.metrics
                print("\(name): accuracy \(String(format: "%.4f", m.accuracy)) ± \(String(format: "%.4f", m.accuracyStderr)), tokens \(String(format: "%.1f", m.tokens)), items \(m.items) × \(m.samples) samples, truncated \(m.truncated)")
            }
        }
    }

    func makeBackend() throws -> any InferenceBackend {
        let python = python ?? ProcessInfo.processInfo.environment["BAMBO_PYTHON"] ?? "python3"
        let work = URL(fileURLWithPath: workDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("bambo-eval-\(getpid())").path)
        let server = ServerOptions(port: port, extraArguments: serverArguments, cudaVisibleDevices: gpus,
                                   startupTimeout: .seconds(startupTimeout), workDirectory: work)
        switch backend {
        case .openai:
            guard let endpoint, let url = URL(string: endpoint), url.scheme != nil else {
                throw ValidationError("--backend openai needs --endpoint URL (e.g. http://127.0.0.1:8000/v1)")
            }
            return OpenAIEndpointBackend(endpoint: url, apiKey: apiKey ?? ProcessInfo.processInfo.environment["OPENAI_API_KEY"])
        case .transformers:
            return TransformersServeBackend(python: python, options: server)
        case .vllm:
            return ManagedServerBackend(kind: .vllm, python: python, options: server)
        case .sglang:
            return ManagedServerBackend(kind: .sglang, python: python, options: server)
        }
    }
}

/// Stops the backend's server on SIGINT/SIGTERM (it runs in its own process group, so it would not
/// receive the terminal's signal), then exits.
final class SignalStopper {
    private let sources: [DispatchSourceSignal]

    init(backend: any InferenceBackend) {
        sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                Task {
                    await backend.shutdown()
                    exit(128 + signalNumber)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        sources.forEach { $0.cancel() }
    }
}
