import BamboProtocol
import Foundation

/// One evaluation to run: the merged model and what the study asked for.
public struct EvaluationJob: Sendable {
    public var attempt: AttemptRef
    /// The decision vector x of the TASK.
    public var weights: [Double]
    /// The merged checkpoint.
    public var modelDirectory: URL
    /// The attempt's scratch directory (the evaluator may write there; it is removed afterwards).
    public var workDirectory: URL
    /// The TASK's `evaluator` object, passed through unchanged.
    public var configuration: [String: JSONValue]
    /// Variables added to the evaluator's environment (e.g. `CUDA_VISIBLE_DEVICES`).
    public var environment: [String: String]

    public init(attempt: AttemptRef, weights: [Double], modelDirectory: URL, workDirectory: URL,
                configuration: [String: JSONValue], environment: [String: String] = [:]) {
        self.attempt = attempt
        self.weights = weights
        self.modelDirectory = modelDirectory
        self.workDirectory = workDirectory
        self.configuration = configuration
        self.environment = environment
    }
}

/// Progress an evaluator reports: items done of total (0 = unknown) and a note for people.
public struct EvaluationProgress: Sendable, Hashable {
    public var done: Int
    public var total: Int
    public var message: String?
    public init(done: Int, total: Int, message: String? = nil) {
        self.done = done
        self.total = total
        self.message = message
    }
}

/// Runs the benchmarks of a study on a merged model. One implementation per TASK `evaluator.kind`
/// (`exec` here; the benchmark `harness` plugs in the same way).
///
/// `evaluate` returns the metrics or throws an `AttemptFailure` with the spec's failure code
/// (`EVAL_FAILED`, `EVAL_TIMEOUT`, `BAD_OUTPUT`, `BAD_TASK` for a configuration it cannot run).
/// Cancelling the calling task stops the evaluation (child processes included) promptly; the
/// call then throws (its failure is ignored by the worker, which reports its own reason).
public protocol Evaluator: Sendable {
    /// The `evaluator.kind` this evaluator runs.
    var kind: String { get }
    func evaluate(_ job: EvaluationJob, progress: @escaping @Sendable (EvaluationProgress) -> Void) async throws(AttemptFailure) -> EvaluationOutput
}

/// Reads evaluator output: one JSON object `{"benchmarks": {NAME: {"accuracy": a, "tokens": t, …}}}`
/// (the shape `bambo eval --json` prints), optionally with `"items": [ItemRecord]`. Pure.
public enum EvaluationOutputParser {
    /// Parses `text` or throws `BAD_OUTPUT` naming what is wrong.
    public static func parse(_ text: String) throws(AttemptFailure) -> EvaluationOutput {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        func bad(_ reason: String) -> AttemptFailure { AttemptFailure(code: .badOutput, reason: "evaluator output: " + reason) }
        guard !trimmed.isEmpty else { throw bad("expected one JSON object on stdout, got nothing") }
        let value: JSONValue
        do {
            value = try JSONValue(json: Data(trimmed.utf8))
        } catch {
            let hint = trimmed.range(of: #"\b(NaN|-?Infinity)\b"#, options: .regularExpression) != nil
                ? " (NaN and Infinity are not JSON numbers)" : ""
            throw bad("not valid JSON\(hint): \(WorkerCore.clip(trimmed, 200))")
        }
        guard let object = value.objectValue else { throw bad("expected a JSON object, got \(WorkerCore.clip(trimmed, 200))") }
        guard let benchmarksValue = object["benchmarks"] else { throw bad("missing \"benchmarks\"") }
        guard let benchmarks = benchmarksValue.objectValue else { throw bad("\"benchmarks\": expected an object of benchmark name → metrics") }
        guard !benchmarks.isEmpty else { throw bad("\"benchmarks\" is empty; expected at least one benchmark") }
        var metrics: [String: BenchmarkMetrics] = [:]
        for (name, entry) in benchmarks.sorted(by: { $0.key < $1.key }) {
            guard let fields = entry.objectValue else { throw bad("benchmarks.\(name): expected an object with accuracy and tokens") }
            func number(_ key: String) throws(AttemptFailure) -> Double {
                guard let field = fields[key] else { throw bad("benchmarks.\(name).\(key): missing") }
                guard let value = field.numberValue else { throw bad("benchmarks.\(name).\(key): expected a number, got \(describe(field))") }
                guard value.isFinite else { throw bad("benchmarks.\(name).\(key): expected a finite number, got \(value)") }
                return value
            }
            let accuracy = try number("accuracy")
            guard (0...1).contains(accuracy) else { throw bad("benchmarks.\(name).accuracy: expected a number in [0, 1], got \(accuracy)") }
            let tokens = try number("tokens")
            guard tokens >= 0 else { throw bad("benchmarks.\(name).tokens: expected a number ≥ 0, got \(tokens)") }
            var items: Int?
            if let field = fields["items"], field != .null {
                guard let count = field.numberValue, count >= 0, count == count.rounded(), count < 9e15 else {
                    throw bad("benchmarks.\(name).items: expected an integer ≥ 0, got \(describe(field))")
                }
                items = Int(count)
            }
            let extra = fields.filter { !["accuracy", "tokens", "items"].contains($0.key) }
            metrics[name] = BenchmarkMetrics(accuracy: accuracy, tokens: tokens, items: items, extra: extra)
        }
        var records: [ItemRecord]?
        if let itemsValue = object["items"], itemsValue != .null {
            do {
                let data = try JSONEncoder().encode(itemsValue)
                records = try JSONDecoder().decode([ItemRecord].self, from: data)
            } catch {
                throw bad("\"items\": expected an array of {benchmark, id, response, extracted, correct, tokens}")
            }
            if let stray = records?.first(where: { metrics[$0.benchmark] == nil }) {
                throw bad("items: benchmark \"\(stray.benchmark)\" of item \"\(stray.id)\" is not in \"benchmarks\"")
            }
        }
        return EvaluationOutput(metrics: Metrics(benchmarks: metrics), items: records)
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .number(let number): "\(number)"
        case .string(let text): "\"\(WorkerCore.clip(text, 40))\""
        case .array: "an array"
        case .object: "an object"
        }
    }
}
