import Foundation

/// vLLM or SGLang on a GPU host: one server process per worker, started on a free port with the
/// study's arguments, weights swapped between trials without a restart where the server supports
/// it, every swap **verified**, and a restart as the fallback.
///
/// - vLLM (`kind: .vllm`): the server is started on a symbolic link `served-model` (in the work
///   directory) pointing at the model directory, with `--enable-sleep-mode` (unless the study's
///   arguments say `--no-enable-sleep-mode`: vLLM's CPU build refuses sleep mode, and its swap
///   endpoints work without it) and `VLLM_SERVER_DEV_MODE=1`. A swap repoints the link and calls the development endpoints
///   `POST /sleep?level=2` (drop weights and KV cache), `POST /wake_up?tags=weights`,
///   `POST /collective_rpc {"method": "reload_weights"}` (re-read the weights from the link),
///   `POST /wake_up?tags=kv_cache`, `POST /reset_prefix_cache`.
/// - SGLang (`kind: .sglang`): `POST /update_weights_from_disk {"model_path": DIR}`, then `POST /flush_cache`.
///
/// Verification: a golden request (fixed prompt, greedy, 8 tokens with log-probabilities) is a
/// fingerprint of the loaded weights. After a swap, the fingerprint must match the one recorded when
/// that directory was last loaded by a fresh process (if any), and must differ from the previous
/// model's (reloads are known to keep stale weights in some versions). A failed or doubtful swap
/// restarts the server on the new model. Models of one study share an architecture and tokenizer.
///
/// The exact commands a GPU user runs (what this backend spawns):
///
///     # vLLM (pip install vllm; one GPU per worker)
///     CUDA_VISIBLE_DEVICES=0 VLLM_SERVER_DEV_MODE=1 python -m vllm.entrypoints.openai.api_server \
///         --model WORK/served-model --served-model-name bambo-model --host 127.0.0.1 --port PORT \
///         --enable-sleep-mode --max-model-len 32768 --dtype bfloat16 [study arguments…]
///     # SGLang (pip install "sglang[all]")
///     CUDA_VISIBLE_DEVICES=0 python -m sglang.launch_server --model-path MODEL_DIR \
///         --served-model-name bambo-model --host 127.0.0.1 --port PORT [study arguments…]
///     # then, for either: bambo eval --backend vllm|sglang --model MODEL_DIR --benchmark FILE …
public actor ManagedServerBackend: InferenceBackend {
    public enum Kind: String, Sendable {
        case vllm, sglang
    }

    public let kind: Kind
    public let options: ServerOptions
    /// The interpreter of a Python environment with vLLM or SGLang installed.
    public let python: String
    /// Replaces `[python, "-m", module]` at the head of the command (tests use a fake server here).
    public let launcher: [String]?
    /// Swap weights in the running server between models instead of restarting it.
    public let swapWeights: Bool
    /// The name models are served under (stable across swaps).
    public static let servedName = "bambo-model"

    private var server: RunningServer?
    private var currentModel: String?
    private var fingerprints: [String: Fingerprint] = [:]
    /// What the last `prepare` did: "start", "swap" or "restart" (for logs and tests).
    public private(set) var lastTransition: String?

    public init(kind: Kind, python: String = "python3", options: ServerOptions, swapWeights: Bool = true, launcher: [String]? = nil) {
        self.kind = kind
        self.python = python
        self.options = options
        self.swapWeights = swapWeights
        self.launcher = launcher
    }

    /// The link vLLM is started on; swaps repoint it.
    public nonisolated var modelLink: URL { options.workDirectory.appendingPathComponent("served-model") }

    /// The server's command line for `model` on `port`. Pure.
    public nonisolated func command(model: String, port: Int) -> [String] {
        switch kind {
        case .vllm:
            return (launcher ?? [python, "-m", "vllm.entrypoints.openai.api_server"])
                + ["--model", swapWeights ? modelLink.path : model, "--served-model-name", Self.servedName,
                   "--host", options.host, "--port", String(port)]
                + (swapWeights && !options.extraArguments.contains("--no-enable-sleep-mode") ? ["--enable-sleep-mode"] : [])
                + options.extraArguments
        case .sglang:
            return (launcher ?? [python, "-m", "sglang.launch_server"])
                + ["--model-path", model, "--served-model-name", Self.servedName, "--host", options.host, "--port", String(port)]
                + options.extraArguments
        }
    }

    /// The server's environment. Pure.
    public nonisolated func environment() -> [String: String] {
        var environment = ["PYTHONUNBUFFERED": "1"]
        if kind == .vllm && swapWeights { environment["VLLM_SERVER_DEV_MODE"] = "1" }
        for (key, value) in options.processEnvironment { environment[key] = value }
        return environment
    }

    public func prepare(model: String) async throws -> ServedModel {
        let directory = URL(fileURLWithPath: model).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: directory + "/config.json") else {
            throw EvaluationError.modelNotFound(model: model, detail: "no config.json in that directory")
        }
        if let server, await server.process.exitDescription() == nil {
            if currentModel == directory { return served(server) }
            if swapWeights, let previous = currentModel {
                do {
                    try await swap(to: directory, on: server)
                    let after = try await fingerprint(server)
                    if SwapVerification.accepts(after: after, previous: fingerprints[previous], expected: fingerprints[directory]) {
                        currentModel = directory
                        lastTransition = "swap"
                        return served(server)
                    }
                } catch {
                    // Fall through to a restart; the error is not the user's to fix.
                }
            }
            await server.stop()
            self.server = nil
            lastTransition = "restart"
        } else {
            lastTransition = server == nil ? "start" : "restart"
            await server?.stop()
            self.server = nil
        }
        let started = try await start(model: directory)
        return served(started)
    }

    private func start(model: String) async throws -> RunningServer {
        try FileManager.default.createDirectory(at: options.workDirectory, withIntermediateDirectories: true)
        if kind == .vllm && swapWeights { try pointLink(at: model) }
        let logName = "\(kind.rawValue)-server.log"
        let command: @Sendable (Int) -> [String] = { [self] port in self.command(model: model, port: port) }
        let started = try await RunningServer.start(options: options, logName: logName, environment: environment(), command: command)
        server = started
        currentModel = model
        if swapWeights, let print = try? await fingerprint(started) { fingerprints[model] = print }
        return started
    }

    private func swap(to model: String, on server: RunningServer) async throws {
        func call(_ path: String, _ body: JSONValue? = nil) async throws {
            let (status, data) = try await server.client.post(path: path, body: body, timeout: .seconds(600))
            guard (200..<300).contains(status) else {
                throw EvaluationError.weightSwapFailed(detail: "\(path) answered \(status): \(OpenAIClient.errorMessage(data))")
            }
            if case .object(let reply)? = try? JSONValue.parse(data), case .bool(false)? = reply["success"] {
                throw EvaluationError.weightSwapFailed(detail: "\(path): \(reply["message"]?.textValue ?? "failed")")
            }
        }
        switch kind {
        case .vllm:
            try pointLink(at: model)
            try await call("sleep?level=2")
            try await call("wake_up?tags=weights")
            try await call("collective_rpc", .object(["method": .string("reload_weights")]))
            try await call("wake_up?tags=kv_cache")
            try await call("reset_prefix_cache")
        case .sglang:
            try await call("update_weights_from_disk", .object(["model_path": .string(model)]))
            try await call("flush_cache")
        }
    }

    private func pointLink(at model: String) throws {
        let link = modelLink.path
        let temporary = link + ".new"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: model)
        guard rename(temporary, link) == 0 else {  // atomic replacement of the old link
            throw EvaluationError.weightSwapFailed(detail: "cannot point \(link) at \(model)")
        }
    }

    private func fingerprint(_ server: RunningServer) async throws -> Fingerprint {
        let body = ChatRequestBuilder.body(model: Self.servedName, messages: [ChatMessage(role: "user", content: Fingerprint.goldenPrompt)],
                                           sampling: .greedy(maxTokens: 8), dialect: .openAICompatible,
                                           extraFields: ["logprobs": .bool(true), "top_logprobs": .number(1)])
        let (status, data) = try await server.client.post(path: "v1/chat/completions", body: .object(body), timeout: .seconds(120))
        guard status == 200 else { throw EvaluationError.httpError(status: status, body: OpenAIClient.errorMessage(data)) }
        return try Fingerprint.parse(data)
    }

    private func served(_ server: RunningServer) -> ServedModel {
        ServedModel(baseURL: server.baseURL, requestModel: Self.servedName, dialect: .openAICompatible)
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
        currentModel = nil
    }
}

/// What a server's weights answer to a golden prompt: greedy tokens and their log-probabilities.
public struct Fingerprint: Sendable, Equatable {
    public static let goldenPrompt = "Count from one to ten, then name three colors."
    public var tokens: [String]
    public var logprobs: [Double]

    public init(tokens: [String], logprobs: [Double]) {
        self.tokens = tokens
        self.logprobs = logprobs
    }

    /// Same tokens and log-probabilities within `tolerance` (numerical noise between batches).
    public func matches(_ other: Fingerprint, tolerance: Double = 1e-3) -> Bool {
        tokens == other.tokens && logprobs.count == other.logprobs.count
            && zip(logprobs, other.logprobs).allSatisfy { abs($0 - $1) <= tolerance }
    }

    /// Reads `choices[0].logprobs.content[*].{token, logprob}` of a chat completion.
    public static func parse(_ data: Data) throws -> Fingerprint {
        guard case .object(let root)? = try? JSONValue.parse(data), case .array(let choices)? = root["choices"],
              case .object(let choice)? = choices.first, case .object(let logprobs)? = choice["logprobs"],
              case .array(let content)? = logprobs["content"] else {
            throw EvaluationError.badResponse(detail: "no choices[0].logprobs.content in the golden reply")
        }
        var tokens: [String] = []
        var values: [Double] = []
        for entry in content {
            guard case .object(let e) = entry, let token = e["token"]?.textValue, case .number(let lp)? = e["logprob"] else {
                throw EvaluationError.badResponse(detail: "a logprobs entry without token and logprob")
            }
            tokens.append(token)
            values.append(lp)
        }
        return Fingerprint(tokens: tokens, logprobs: values)
    }
}

/// Whether a weight swap loaded the new weights. Pure.
public enum SwapVerification {
    /// `after`: the fingerprint once swapped; `previous`: the model served before; `expected`: this
    /// model's fingerprint from a fresh process, when known. Known → must match it; otherwise it
    /// must differ from the previous model's (identical = stale weights, or a model so close that a
    /// restart costs little).
    public static func accepts(after: Fingerprint, previous: Fingerprint?, expected: Fingerprint?) -> Bool {
        if let expected { return after.matches(expected) }
        if let previous { return !after.matches(previous) }
        return false
    }
}
