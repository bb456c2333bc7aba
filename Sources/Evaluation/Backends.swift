import Foundation

/// How to address a model on a running server.
public struct ServedModel: Sendable, Equatable {
    /// The server root, e.g. `http://127.0.0.1:8000`.
    public var baseURL: URL
    /// The request's `model` field.
    public var requestModel: String
    public var dialect: RequestDialect
    public var apiKey: String?

    public init(baseURL: URL, requestModel: String, dialect: RequestDialect, apiKey: String? = nil) {
        self.baseURL = baseURL
        self.requestModel = requestModel
        self.dialect = dialect
        self.apiKey = apiKey
    }
}

/// An inference server as the evaluation sees it. A backend may start, reuse, swap weights in, or
/// restart a server process; the evaluation only asks it to serve a model and to report failure.
public protocol InferenceBackend: Sendable {
    /// Makes `model` (a model directory; a served name for external endpoints) servable and says how
    /// to address it. May start a server or load new weights into a running one.
    func prepare(model: String) async throws -> ServedModel
    /// Throws (`serverDied`, with the server's last log lines) when the server fails while in use;
    /// returns normally once the calling task is cancelled. Backends without a process just wait.
    func monitor() async throws
    /// Asked when a request failed: the `serverDied` error (with the server's last log lines) if the
    /// server process has exited or exits within `grace`; nil while it runs or when there is no process.
    func serverFailure(within grace: Duration) async -> EvaluationError?
    /// Stops any server process this backend started.
    func shutdown() async
}

extension InferenceBackend {
    /// Backends without a server process have none to report.
    public func serverFailure(within grace: Duration) async -> EvaluationError? { nil }
}

/// Settings shared by the backends that run a server process.
public struct ServerOptions: Sendable, Equatable {
    public var host: String
    /// The port to listen on; nil picks a free one.
    public var port: Int?
    /// Extra command-line arguments from the study (e.g. `--max-model-len 32768`, `--dtype bfloat16`).
    public var extraArguments: [String]
    /// Extra environment variables for the server process.
    public var environment: [String: String]
    /// GPUs the server may use (`CUDA_VISIBLE_DEVICES`); nil leaves the variable as inherited.
    public var cudaVisibleDevices: String?
    /// How long the server may take to answer `/health`.
    public var startupTimeout: Duration
    /// Where the server's log (and the backend's scratch files) go.
    public var workDirectory: URL

    public init(host: String = "127.0.0.1", port: Int? = nil, extraArguments: [String] = [], environment: [String: String] = [:],
                cudaVisibleDevices: String? = nil, startupTimeout: Duration = .seconds(600), workDirectory: URL) {
        self.host = host
        self.port = port
        self.extraArguments = extraArguments
        self.environment = environment
        self.cudaVisibleDevices = cudaVisibleDevices
        self.startupTimeout = startupTimeout
        self.workDirectory = workDirectory
    }

    var processEnvironment: [String: String] {
        var result = environment
        if let cudaVisibleDevices { result["CUDA_VISIBLE_DEVICES"] = cudaVisibleDevices }
        return result
    }
}

/// A server process this backend started, with its address and an HTTP client for it.
struct RunningServer: Sendable {
    let process: ServerProcess
    let baseURL: URL
    let client: OpenAIClient

    /// Starts `command(port)` and waits for `/health`. A port already taken fails at once (a server
    /// elsewhere would otherwise answer our health checks).
    static func start(options: ServerOptions, logName: String, environment: [String: String],
                      command: @Sendable (Int) -> [String]) async throws -> RunningServer {
        let port: Int
        if let requested = options.port {
            guard LocalPort.isAvailable(requested) else {
                throw EvaluationError.serverFailedToStart(reason: "port \(requested) on \(options.host) is already in use; choose another port or leave it unset to pick a free one", logTail: [])
            }
            port = requested
        } else {
            port = try LocalPort.free()
        }
        let logFile = options.workDirectory.appendingPathComponent(logName)
        let process = try ServerProcess(command: command(port), environment: environment, logFile: logFile)
        let baseURL = URL(string: "http://\(options.host):\(port)")!
        let client = OpenAIClient(baseURL: baseURL, maxConnections: 512)
        do {
            try await process.waitUntilHealthy(baseURL.appendingPathComponent("health"), timeout: options.startupTimeout, http: client)
        } catch {
            await process.stop(grace: .seconds(2))
            await client.shutdown()
            throw error
        }
        return RunningServer(process: process, baseURL: baseURL, client: client)
    }

    func stop() async {
        await process.stop()
        await client.shutdown()
    }
}

/// Waits until the calling task is cancelled (the `monitor()` of backends without a process).
func waitForCancellation() async {
    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
}

// MARK: - openai

/// An OpenAI-compatible endpoint the user runs (any server, any place): nothing to start or stop.
/// The model is passed as the request's `model` field unchanged.
public struct OpenAIEndpointBackend: InferenceBackend {
    public var baseURL: URL
    public var apiKey: String?

    /// `endpoint` may be the server root or end in `/v1`.
    public init(endpoint: URL, apiKey: String? = nil) {
        var text = endpoint.absoluteString.trimmingSuffix("/")
        if text.hasSuffix("/v1") { text = String(text.dropLast(3)) }
        self.baseURL = URL(string: text) ?? endpoint
        self.apiKey = apiKey
    }

    public func prepare(model: String) async throws -> ServedModel {
        ServedModel(baseURL: baseURL, requestModel: model, dialect: .openAICompatible, apiKey: apiKey)
    }

    public func monitor() async throws { await waitForCancellation() }
    public func shutdown() async {}
}

// MARK: - transformers

/// `transformers serve --continuous-batching`: one process per worker that loads each model
/// directory on demand by its path (the request's `model` field), so trials need no restart. For CPU
/// and small models (the demo, CI). A model directory's contents must not change once served under
/// the same path: the server caches loaded models by path (unloaded after `--model-timeout`, 300 s).
public actor TransformersServeBackend: InferenceBackend {
    public let python: String
    public let options: ServerOptions
    /// KV-cache size for continuous batching (blocks × block size tokens); uncapped it takes ~8 GB.
    public let kvCacheBlocks: Int
    public let kvBlockSize: Int
    /// torch threads (OMP_NUM_THREADS); 1 avoids oversubscription when workers share cores.
    public let threads: Int
    private var server: RunningServer?

    /// `python` is the interpreter of a venv with `transformers[serving]` (see cluster/python-env.sh).
    public init(python: String, options: ServerOptions, kvCacheBlocks: Int = 512, kvBlockSize: Int = 32, threads: Int = 1) {
        self.python = python
        self.options = options
        self.kvCacheBlocks = kvCacheBlocks
        self.kvBlockSize = kvBlockSize
        self.threads = threads
    }

    /// The server's command line. Pure.
    public nonisolated func command(port: Int) -> [String] {
        [python, "-m", "transformers.cli.transformers", "serve", "--host", options.host, "--port", String(port),
         "--continuous-batching", "--cb-num-blocks", String(kvCacheBlocks), "--cb-block-size", String(kvBlockSize)]
            + options.extraArguments
    }

    /// The server's environment: offline hub (no downloads; a cache directory that exists, else
    /// `/v1/models` fails), thread count, then the study's variables.
    public nonisolated func environment() -> [String: String] {
        var environment = ["HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": String(threads), "TOKENIZERS_PARALLELISM": "false",
                           "HF_HUB_CACHE": options.workDirectory.appendingPathComponent("hf-cache").path,
                           "PYTHONUNBUFFERED": "1"]
        for (key, value) in options.processEnvironment { environment[key] = value }
        return environment
    }

    public func prepare(model: String) async throws -> ServedModel {
        let directory = URL(fileURLWithPath: model).standardizedFileURL
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
            throw EvaluationError.modelNotFound(model: model, detail: "no config.json in that directory (the transformers backend serves local model directories)")
        }
        let server = try await runningServer()
        return ServedModel(baseURL: server.baseURL, requestModel: directory.path,
                           dialect: .transformersServe(baseGenerationConfig: Self.generationConfig(of: directory)))
    }

    private func runningServer() async throws -> RunningServer {
        if let server, await server.process.exitDescription() == nil { return server }
        if let server { await server.stop() }
        try FileManager.default.createDirectory(at: options.workDirectory.appendingPathComponent("hf-cache"), withIntermediateDirectories: true)
        let started = try await RunningServer.start(options: options, logName: "transformers-serve.log", environment: environment(),
                                                    command: { self.command(port: $0) })
        server = started
        return started
    }

    /// The model's `generation_config.json` (end-of-sequence tokens and defaults), or `config.json`'s
    /// token ids when it has none.
    static func generationConfig(of directory: URL) -> [String: JSONValue] {
        for name in ["generation_config.json", "config.json"] {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)),
                  case .object(let object)? = try? JSONValue.parse(data) else { continue }
            if name == "generation_config.json" { return object.filter { $0.key != "transformers_version" } }
            return object.filter { ["eos_token_id", "pad_token_id", "bos_token_id"].contains($0.key) }
        }
        return [:]
    }

    public func monitor() async throws {
        if let server { try await server.process.monitor() } else { await waitForCancellation() }
    }

    public func serverFailure(within grace: Duration) async -> EvaluationError? {
        await server?.process.failure(within: grace)
    }

    public func shutdown() async {
        await server?.stop()
        server = nil
    }

    /// The running server's process (for diagnostics and tests).
    public var process: ServerProcess? { server?.process }
}
