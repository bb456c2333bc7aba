import Foundation

/// One reply to one item: what was asked for, what came back, how it graded.
public struct ItemRecord: Sendable, Equatable, Codable {
    public var benchmark: String
    public var id: String
    /// Which of the k samples (0-based).
    public var sample: Int
    /// The full reply that was graded (reasoning rejoined, see `Grader.fullReply`).
    public var response: String
    public var content: String?
    public var reasoning: String?
    public var extracted: String?
    public var correct: Bool
    /// `usage.completion_tokens`, as the server reported it.
    public var tokens: Int
    public var promptTokens: Int
    public var reasoningTokens: Int?
    public var finishReason: String?

    enum CodingKeys: String, CodingKey {
        case benchmark, id, sample, response, content, reasoning, extracted, correct, tokens
        case promptTokens = "prompt_tokens", reasoningTokens = "reasoning_tokens", finishReason = "finish_reason"
    }

    public var truncated: Bool { finishReason == "length" }
}

/// Per-benchmark metrics. JSON keys (`accuracy`, `tokens`, `items`, …) are a contract other components read.
public struct BenchmarkMetrics: Sendable, Equatable, Codable {
    /// Mean over items of the fraction of correct samples.
    public var accuracy: Double
    /// Mean output tokens per reply (`usage.completion_tokens`, reasoning included).
    public var tokens: Double
    public var items: Int
    /// Samples per item (k).
    public var samples: Int
    /// Standard errors of the two means, over items (each item's k samples averaged first).
    public var accuracyStderr: Double
    public var tokensStderr: Double
    /// Replies cut off by the token limit (`finish_reason == "length"`).
    public var truncated: Int
    /// Mean reasoning tokens per reply, when the server reports them (`completion_tokens_details`).
    public var reasoningTokens: Double?

    enum CodingKeys: String, CodingKey {
        case accuracy, tokens, items, samples, truncated
        case accuracyStderr = "accuracy_stderr", tokensStderr = "tokens_stderr", reasoningTokens = "reasoning_tokens"
    }

    /// Metrics of one benchmark's records (every item's samples). Pure.
    public static func compute(_ records: [ItemRecord]) -> BenchmarkMetrics {
        var byItem: [String: [ItemRecord]] = [:]
        for record in records { byItem[record.id, default: []].append(record) }
        let groups = Array(byItem.values)
        let correctMeans = groups.map { group in Double(group.filter(\.correct).count) / Double(group.count) }
        let tokenMeans = groups.map { group in Double(group.map(\.tokens).reduce(0, +)) / Double(group.count) }
        let reasoning = records.compactMap(\.reasoningTokens)
        return BenchmarkMetrics(
            accuracy: mean(correctMeans), tokens: mean(tokenMeans), items: groups.count,
            samples: groups.map(\.count).max() ?? 0,
            accuracyStderr: standardError(correctMeans), tokensStderr: standardError(tokenMeans),
            truncated: records.filter(\.truncated).count,
            reasoningTokens: !records.isEmpty && reasoning.count == records.count ? Double(reasoning.reduce(0, +)) / Double(reasoning.count) : nil)
    }

    static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    /// Sample standard deviation / √n; 0 for fewer than two values.
    static func standardError(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let m = mean(values)
        let variance = values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)
        return (variance / Double(values.count)).squareRoot()
    }
}

/// One benchmark's outcome: metrics and the per-item records behind them.
public struct BenchmarkEvaluation: Sendable, Equatable {
    public var metrics: BenchmarkMetrics
    public var records: [ItemRecord]
}

/// What `evaluate` returns: per benchmark name, metrics and records.
public struct EvaluationResult: Sendable, Equatable {
    public var benchmarks: [String: BenchmarkEvaluation]

    /// `{"benchmarks": {"NAME": {"accuracy": a, "tokens": t, "items": n, …}}}`.
    public func metricsJSON() throws -> Data {
        struct Document: Encodable { var benchmarks: [String: BenchmarkMetrics] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(Document(benchmarks: benchmarks.mapValues(\.metrics)))
    }

    /// Every record, one JSON object per line (benchmarks by name, items in benchmark order).
    public func recordsJSONL() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        for name in benchmarks.keys.sorted() {
            for record in benchmarks[name]!.records {
                out.append(try encoder.encode(record))
                out.append(0x0A)
            }
        }
        return out
    }
}

/// Grading of stored responses (`bambo grade`): JSONL lines `{"id", "response"}`, optionally with
/// `"benchmark"` (lines of other benchmarks are skipped, so `bambo eval --records` output can be regraded).
public enum StoredResponses {
    public struct Report: Sendable, Equatable {
        /// Correct responses / responses graded.
        public var accuracy: Double
        public var items: [(id: String, extracted: String?, correct: Bool)]

        public static func == (a: Report, b: Report) -> Bool {
            a.accuracy == b.accuracy && a.items.elementsEqual(b.items) { $0.id == $1.id && $0.extracted == $1.extracted && $0.correct == $1.correct }
        }
    }

    public static func grade(_ benchmark: Benchmark, responsesText: String, file: String) throws -> Report {
        let itemsByID = Dictionary(benchmark.items.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var graded: [(id: String, extracted: String?, correct: Bool)] = []
        for (line, record) in try jsonLines(responsesText, file: file) {
            if let name = record["benchmark"]?.textValue, name != benchmark.name { continue }
            guard let id = record["id"]?.textValue else {
                throw EvaluationError.badInput(file: file, line: line, message: "field \"id\" is missing")
            }
            guard let response = record["response"]?.textValue else {
                throw EvaluationError.badInput(file: file, line: line, message: "field \"response\" is missing or not a string")
            }
            guard let item = itemsByID[id] else {
                throw EvaluationError.badInput(file: file, line: line, message: "id \"\(id)\" is not an item of benchmark \(benchmark.name)")
            }
            let result = Grader.grade(response, item: item)
            graded.append((id, result.extracted, result.correct))
        }
        guard !graded.isEmpty else {
            throw EvaluationError.badInput(file: file, line: 0, message: "no responses for benchmark \(benchmark.name)")
        }
        return Report(accuracy: Double(graded.filter(\.correct).count) / Double(graded.count), items: graded)
    }
}
