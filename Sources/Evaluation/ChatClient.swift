import AsyncHTTPClient
import Foundation

/// What one chat completion yielded.
public struct ChatCompletion: Sendable, Equatable {
    public var content: String?
    /// The reasoning the server split off (`reasoning_content`, or vLLM's `reasoning`), if any.
    public var reasoning: String?
    public var finishReason: String?
    /// `usage.completion_tokens`: every generated token, reasoning and end-of-sequence included.
    public var completionTokens: Int
    public var promptTokens: Int
    /// `usage.completion_tokens_details.reasoning_tokens`, when the server reports it.
    public var reasoningTokens: Int?

    /// Parses an OpenAI chat-completion body.
    public static func parse(_ data: Data) throws -> ChatCompletion {
        let snippet = String(decoding: data.prefix(300), as: UTF8.self)
        guard let value = try? JSONValue.parse(data), case .object(let root) = value else {
            throw EvaluationError.badResponse(detail: "not a JSON object: \(snippet)")
        }
        guard case .array(let choices)? = root["choices"], case .object(let choice)? = choices.first,
              case .object(let message)? = choice["message"] else {
            throw EvaluationError.badResponse(detail: "no choices[0].message: \(snippet)")
        }
        guard case .object(let usage)? = root["usage"], case .number(let completion)? = usage["completion_tokens"] else {
            throw EvaluationError.badResponse(detail: "no usage.completion_tokens (token counts are required): \(snippet)")
        }
        var prompt = 0.0
        if case .number(let p)? = usage["prompt_tokens"] { prompt = p }
        var reasoningTokens: Int? = nil
        if case .object(let details)? = usage["completion_tokens_details"], case .number(let r)? = details["reasoning_tokens"] {
            reasoningTokens = Int(r)
        }
        let reasoning = message["reasoning_content"]?.textValue ?? message["reasoning"]?.textValue
        return ChatCompletion(content: message["content"]?.textValue, reasoning: reasoning,
                              finishReason: choice["finish_reason"]?.textValue, completionTokens: Int(completion),
                              promptTokens: Int(prompt), reasoningTokens: reasoningTokens)
    }
}

/// Plain HTTP GETs, for health checks.
public protocol HTTPGetter: Sendable {
    func status(of url: URL, timeout: Duration) async throws -> Int
}

/// An OpenAI-compatible client over AsyncHTTPClient: bounded connection pool sized for the
/// evaluation's concurrency, a per-request timeout, retries with backoff on transient failures only
/// (connection errors, 408, 429, 502, 503, 504). Call `shutdown()` when done.
public final class OpenAIClient: HTTPGetter, Sendable {
    public let baseURL: URL
    let http: HTTPClient
    let apiKey: String?
    let requestTimeout: Duration
    let maxRetries: Int

    /// `baseURL` is the server root (e.g. `http://127.0.0.1:8000`); paths such as `/v1/chat/completions` are appended.
    public init(baseURL: URL, apiKey: String? = nil, maxConnections: Int = 64, requestTimeout: Duration = .seconds(3600), maxRetries: Int = 4) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.requestTimeout = requestTimeout
        self.maxRetries = maxRetries
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnections))
        // A refused connection fails the request at once (a dead server is not waited for); the
        // retries with back-off below are the only ones. The connect timeout is short: servers are local or known.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(3)
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    public func status(of url: URL, timeout: Duration) async throws -> Int {
        let request = HTTPClientRequest(url: url.absoluteString)
        let response = try await http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
        _ = try? await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// POSTs `body` to `/v1/chat/completions` and parses the reply.
    public func chatCompletion(_ body: [String: JSONValue]) async throws -> ChatCompletion {
        let model = body["model"]?.textValue ?? "?"
        let (status, data) = try await post(path: "v1/chat/completions", body: .object(body))
        if status == 200 { return try ChatCompletion.parse(data) }
        let message = Self.errorMessage(data)
        if status == 404 || (status == 400 && Self.saysModelMissing(message)) {
            throw EvaluationError.modelNotFound(model: model, detail: message)
        }
        throw EvaluationError.httpError(status: status, body: message)
    }

    /// POSTs JSON to `path` (relative to the base URL), retrying transient failures.
    public func post(path: String, body: JSONValue?, timeout: Duration? = nil) async throws -> (Int, Data) {
        // Concatenated, not `appendingPathComponent`, which would escape a query ("sleep?level=2").
        let url = URL(string: baseURL.absoluteString.trimmingSuffix("/") + "/" + path)!
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(Array(body.jsonString().utf8))
        }
        return try await send(request, url: url, timeout: timeout ?? requestTimeout)
    }

    func send(_ request: HTTPClientRequest, url: URL, timeout: Duration) async throws -> (Int, Data) {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
                let buffer = try await response.body.collect(upTo: 256 << 20)
                let status = Int(response.status.code)
                if Self.transientStatuses.contains(status), attempt <= maxRetries {
                    try await Task.sleep(for: Self.backoff(attempt))
                    continue
                }
                return (status, Data(buffer.readableBytesView))
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                throw EvaluationError.unreachable(endpoint: url.absoluteString, detail: "no reply within \(timeout) (raise the request timeout for long generations)")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // Connection refused/reset, remote closed: transient (a server starting or restarting).
                if attempt <= maxRetries, !Task.isCancelled {
                    try await Task.sleep(for: Self.backoff(attempt))
                    continue
                }
                throw EvaluationError.unreachable(endpoint: url.absoluteString, detail: "\(error)")
            }
        }
    }

    static let transientStatuses: Set<Int> = [408, 429, 502, 503, 504]

    static func backoff(_ attempt: Int) -> Duration {
        .milliseconds(250 * (1 << min(attempt - 1, 5)))
    }

    /// The `error.message` (OpenAI, vLLM) or `detail` (FastAPI) of an error body, else its text.
    static func errorMessage(_ data: Data) -> String {
        if let value = try? JSONValue.parse(data), case .object(let root) = value {
            if case .object(let error)? = root["error"], let message = error["message"]?.textValue { return message }
            if let message = root["message"]?.textValue { return message }
            if let detail = root["detail"] { return detail.textValue ?? detail.jsonString() }
        }
        return String(decoding: data.prefix(500), as: UTF8.self)
    }

    static func saysModelMissing(_ message: String) -> Bool {
        let lower = message.lowercased()
        return lower.contains("does not exist") || lower.contains("not found") || lower.contains("no such model")
    }
}

extension String {
    func trimmingSuffix(_ suffix: Character) -> String {
        var s = self
        while s.last == suffix { s.removeLast() }
        return s
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
