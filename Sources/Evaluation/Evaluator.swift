import Foundation

/// How an evaluation runs (beyond sampling).
public struct EvaluationOptions: Sendable, Equatable {
    /// Samples per item (k); accuracy is averaged over them.
    public var samples: Int
    /// Requests in flight at once; high, so the server batches.
    public var concurrency: Int
    public var requestTimeout: Duration
    /// Retries per request on transient errors.
    public var maxRetries: Int
    public var prompts: PromptTemplates
    /// Extra request fields passed through from the study, e.g.
    /// `["chat_template_kwargs": ["enable_thinking": false]]`.
    public var extraRequestFields: [String: JSONValue]

    public init(samples: Int = 1, concurrency: Int = 256, requestTimeout: Duration = .seconds(3600), maxRetries: Int = 4,
                prompts: PromptTemplates = .standard, extraRequestFields: [String: JSONValue] = [:]) {
        self.samples = samples
        self.concurrency = concurrency
        self.requestTimeout = requestTimeout
        self.maxRetries = maxRetries
        self.prompts = prompts
        self.extraRequestFields = extraRequestFields
    }
}

/// Progress of one evaluation: replies received out of replies needed (items × samples, all benchmarks).
public struct EvaluationProgress: Sendable, Equatable {
    public var done: Int
    public var total: Int
}

/// Evaluates `model` on `benchmarks` through `backend`: asks the backend to serve the model, sends
/// every item k times (bounded concurrency), grades the full replies, and returns per-benchmark
/// metrics and per-item records. Fails with the server's last log lines if the server dies meanwhile.
/// The backend is left running (a worker reuses it for the next model); call `backend.shutdown()` at the end.
public func evaluate(model: String, benchmarks: [Benchmark], backend: any InferenceBackend, sampling: SamplingParameters,
                     options: EvaluationOptions = EvaluationOptions(),
                     progress: @escaping @Sendable (EvaluationProgress) -> Void = { _ in }) async throws -> EvaluationResult {
    guard options.samples >= 1 else { throw EvaluationError.invalidOption("samples must be at least 1 (got \(options.samples))") }
    guard options.concurrency >= 1 else { throw EvaluationError.invalidOption("concurrency must be at least 1 (got \(options.concurrency))") }
    guard sampling.maxTokens >= 1 else { throw EvaluationError.invalidOption("max tokens must be at least 1 (got \(sampling.maxTokens))") }
    var names = Set<String>()
    for benchmark in benchmarks where !names.insert(benchmark.name).inserted {
        throw EvaluationError.invalidOption("two benchmarks are named \(benchmark.name); rename one of the files")
    }
    let served = try await backend.prepare(model: model)
    let client = OpenAIClient(baseURL: served.baseURL, apiKey: served.apiKey, maxConnections: options.concurrency,
                              requestTimeout: options.requestTimeout, maxRetries: options.maxRetries)
    let jobs = (0..<options.samples).flatMap { sample in
        benchmarks.flatMap { benchmark in benchmark.items.map { EvaluationJob(benchmark: benchmark.name, item: $0, sample: sample) } }
    }
    enum Outcome: Sendable { case records([ItemRecord]), monitorEnded }
    do {
        let records = try await withThrowingTaskGroup(of: Outcome.self) { group -> [ItemRecord] in
            group.addTask {
                try await backend.monitor()
                return .monitorEnded
            }
            group.addTask {
                do {
                    return .records(try await runJobs(jobs, served: served, client: client, sampling: sampling, options: options, progress: progress))
                } catch {
                    // A failed request is most often the server dying: then say that, with its log,
                    // rather than what the request saw (a reset connection). Asked here, not left
                    // to a race with the monitor.
                    if !(error is CancellationError), let died = await backend.serverFailure(within: .seconds(2)) { throw died }
                    throw error
                }
            }
            while let outcome = try await group.next() {
                if case .records(let records) = outcome {
                    group.cancelAll()
                    return records
                }
            }
            throw CancellationError()
        }
        await client.shutdown()
        var result: [String: BenchmarkEvaluation] = [:]
        for benchmark in benchmarks {
            let order = Dictionary(uniqueKeysWithValues: benchmark.items.enumerated().map { ($0.element.id, $0.offset) })
            let mine = records.filter { $0.benchmark == benchmark.name }
                .sorted { (order[$0.id]!, $0.sample) < (order[$1.id]!, $1.sample) }
            result[benchmark.name] = BenchmarkEvaluation(metrics: BenchmarkMetrics.compute(mine), records: mine)
        }
        return EvaluationResult(benchmarks: result)
    } catch {
        await client.shutdown()
        throw error
    }
}

struct EvaluationJob: Sendable {
    var benchmark: String
    var item: BenchmarkItem
    var sample: Int
}

/// Sends every job with at most `options.concurrency` in flight; reports progress as replies arrive.
func runJobs(_ jobs: [EvaluationJob], served: ServedModel, client: OpenAIClient, sampling: SamplingParameters,
             options: EvaluationOptions, progress: @Sendable (EvaluationProgress) -> Void) async throws -> [ItemRecord] {
    try await withThrowingTaskGroup(of: ItemRecord.self) { group in
        var pending = jobs.makeIterator()
        func startNext() -> Bool {
            guard let job = pending.next() else { return false }
            group.addTask { try await runJob(job, served: served, client: client, sampling: sampling, options: options) }
            return true
        }
        for _ in 0..<options.concurrency where !startNext() { break }
        var records: [ItemRecord] = []
        records.reserveCapacity(jobs.count)
        progress(EvaluationProgress(done: 0, total: jobs.count))
        while let record = try await group.next() {
            records.append(record)
            progress(EvaluationProgress(done: records.count, total: jobs.count))
            _ = startNext()
        }
        return records
    }
}

func runJob(_ job: EvaluationJob, served: ServedModel, client: OpenAIClient, sampling: SamplingParameters,
            options: EvaluationOptions) async throws -> ItemRecord {
    var sampling = sampling
    if let seed = sampling.seed { sampling.seed = seed &+ job.sample }  // k samples must differ
    let body = ChatRequestBuilder.body(model: served.requestModel, messages: options.prompts.messages(for: job.item),
                                       sampling: sampling, dialect: served.dialect, extraFields: options.extraRequestFields)
    let completion = try await client.chatCompletion(body)
    let truncated = completion.finishReason == "length"
    let reply = Grader.fullReply(content: completion.content, reasoning: completion.reasoning, truncated: truncated)
    let graded = Grader.grade(reply, item: job.item)
    return ItemRecord(benchmark: job.benchmark, id: job.item.id, sample: job.sample, response: reply,
                      content: completion.content, reasoning: completion.reasoning, extracted: graded.extracted,
                      correct: graded.correct, tokens: completion.completionTokens, promptTokens: completion.promptTokens,
                      reasoningTokens: completion.reasoningTokens, finishReason: completion.finishReason)
}
