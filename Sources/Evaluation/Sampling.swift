import Foundation

/// Sampling parameters of one study (sent with every request).
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Double
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    /// The most output tokens per reply (thinking included).
    public var maxTokens: Int
    public var seed: Int?

    public init(temperature: Double, topP: Double? = nil, topK: Int? = nil, minP: Double? = nil, maxTokens: Int, seed: Int? = nil) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.minP = minP
        self.maxTokens = maxTokens
        self.seed = seed
    }

    /// Qwen3's recommendation for thinking mode: T 0.6, top-p 0.95, top-k 20, min-p 0, 32,768 tokens.
    public static let qwen3Thinking = SamplingParameters(temperature: 0.6, topP: 0.95, topK: 20, minP: 0, maxTokens: 32768)
    /// Qwen3's recommendation for non-thinking (instruct) mode: T 0.7, top-p 0.8, top-k 20, min-p 0.
    public static let qwen3Instruct = SamplingParameters(temperature: 0.7, topP: 0.8, topK: 20, minP: 0, maxTokens: 32768)
    /// Greedy decoding.
    public static func greedy(maxTokens: Int) -> SamplingParameters {
        SamplingParameters(temperature: 0, maxTokens: maxTokens)
    }
}

/// How a server wants sampling parameters beyond the OpenAI schema.
public enum RequestDialect: Sendable, Equatable {
    /// vLLM, SGLang and most OpenAI-compatible servers: `top_k`, `min_p` as top-level fields.
    case openAICompatible
    /// `transformers serve`: rejects unknown fields; `top_k`, `min_p` and sampling on/off go into a
    /// `generation_config` JSON string, which replaces the model's own generation config (so that one
    /// is included: its end-of-sequence tokens must stay).
    case transformersServe(baseGenerationConfig: [String: JSONValue])
}

/// Builds `/v1/chat/completions` request bodies. Pure.
public enum ChatRequestBuilder {
    public static func body(model: String, messages: [ChatMessage], sampling: SamplingParameters,
                            dialect: RequestDialect, extraFields: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var body: [String: JSONValue] = [
            "model": .string(model),
            "messages": .array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) }),
            "max_tokens": .number(Double(sampling.maxTokens)),
            "temperature": .number(sampling.temperature),
            "stream": .bool(false),
        ]
        if let topP = sampling.topP { body["top_p"] = .number(topP) }
        if let seed = sampling.seed { body["seed"] = .number(Double(seed)) }
        switch dialect {
        case .openAICompatible:
            if let topK = sampling.topK { body["top_k"] = .number(Double(topK)) }
            if let minP = sampling.minP { body["min_p"] = .number(minP) }
        case .transformersServe(let base):
            // Greedy needs nothing beyond `temperature: 0`; sampling must switch `do_sample` on.
            if sampling.temperature > 0 {
                var config = base
                config["do_sample"] = .bool(true)
                if let topK = sampling.topK { config["top_k"] = .number(Double(topK)) }
                if let minP = sampling.minP, minP > 0 { config["min_p"] = .number(minP) }
                body["generation_config"] = .string(JSONValue.object(config).jsonString())
            }
        }
        for (key, value) in extraFields { body[key] = value }
        return body
    }
}

/// One chat message.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Prompt templates per answer kind, with placeholders `{question}`, and for multiple choice
/// `{choices}` ("A) …" one per line) and `{letters}` ("ABCD"). Defaults follow common practice for
/// reasoning models: "put your final answer within \boxed{}" (Qwen's math prompt) for integers and
/// exact answers, a final line "Answer: LETTER" (simple-evals' GPQA prompt) for multiple choice.
public struct PromptTemplates: Sendable, Equatable, Codable {
    public var system: String?
    public var multipleChoice: String
    public var integer: String
    public var exact: String

    public init(system: String? = nil, multipleChoice: String = Self.standard.multipleChoice,
                integer: String = Self.standard.integer, exact: String = Self.standard.exact) {
        self.system = system
        self.multipleChoice = multipleChoice
        self.integer = integer
        self.exact = exact
    }

    private init(standardSystem: String?, multipleChoice: String, integer: String, exact: String) {
        self.system = standardSystem
        self.multipleChoice = multipleChoice
        self.integer = integer
        self.exact = exact
    }

    public static let standard = PromptTemplates(
        standardSystem: nil,
        multipleChoice: """
        Answer the following multiple choice question. The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before answering.

        {question}

        {choices}
        """,
        integer: "{question}\nPlease reason step by step, and put your final answer within \\boxed{}.",
        exact: "{question}\nPlease reason step by step, and put your final answer within \\boxed{}."
    )

    /// Only the question, for models trained on bare questions (the tiny demo family).
    public static let bare = PromptTemplates(standardSystem: nil, multipleChoice: "{question}\n\n{choices}",
                                             integer: "{question}", exact: "{question}")

    /// The chat messages for `item`.
    public func messages(for item: BenchmarkItem) -> [ChatMessage] {
        let template: String
        switch item.kind {
        case .multipleChoice: template = multipleChoice
        case .integer: template = integer
        case .exact: template = exact
        }
        let choices = (item.choices ?? []).enumerated().map { "\(choiceLetter($0.offset))) \($0.element)" }.joined(separator: "\n")
        // Substitute in one pass so a question containing "{choices}" is not expanded again.
        let values = ["question": item.question, "choices": choices, "letters": item.choiceLetters.joined()]
        var text = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            text += rest[..<open]
            let afterOpen = rest.index(after: open)
            if let close = rest[afterOpen...].firstIndex(of: "}"), let value = values[String(rest[afterOpen..<close])] {
                text += value
                rest = rest[rest.index(after: close)...]
            } else {
                text += "{"
                rest = rest[afterOpen...]
            }
        }
        text += rest
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: text))
        return messages
    }
}
