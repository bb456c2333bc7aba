import Foundation

/// The study `bambo demo` runs: where the demo family and benchmarks are, how `--budget` becomes an
/// optimizer plan, and the study file itself. Pure apart from the file-system look-ups.
enum DemoStudy {
    /// The model directories of the demo family (weight 0 = instruct, weight 1 = thinking; base for
    /// task-vector methods).
    static let modelNames = ["base", "instruct", "thinking"]
    /// The benchmark files, in `bench/` beside `family/`.
    static let benchmarkFiles = ["multiply.jsonl", "choice.jsonl"]
    /// Where the committed family lives inside the repository.
    static let familyPath = "cluster/demo/family"
    /// Trials proposed at once after the warm start.
    static let batch = 4
    /// The smallest budget: the warm start's anchors x = 0, x = 1 and x = ½.
    static let minimumBudget = 3

    /// The optimizer's plan for `budget` evaluations: a warm start of about a quarter of the budget
    /// (at least the 3 anchors), then as many qEHVI batches of `batch` as fit; the remainder goes to
    /// the warm start, so `initial + iterations × batch == budget` exactly.
    static func plan(budget: Int, batch: Int = DemoStudy.batch) -> (initial: Int, iterations: Int, batch: Int) {
        precondition(budget >= minimumBudget && batch >= 1)
        let warm = max(minimumBudget, budget / 4)
        let iterations = max(0, (budget - warm) / batch)
        return (budget - iterations * batch, iterations, batch)
    }

    /// Whether `directory` holds the three model directories (each with a config.json).
    static func isFamily(_ directory: URL) -> Bool {
        modelNames.allSatisfy { FileManager.default.fileExists(atPath: directory.appendingPathComponent("\($0)/config.json").path) }
    }

    /// The first `cluster/demo/family` holding a family, searching upward from each start directory.
    static func findFamily(from starts: [URL]) -> URL? {
        for start in starts {
            var directory = start.standardizedFileURL
            while true {
                let candidate = directory.appendingPathComponent(familyPath)
                if isFamily(candidate) { return candidate }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        return nil
    }

    /// The study file for the demo. `family`, `bench` absolute; `maxTokens` per reply.
    /// `seed` is the optimizer's (Sobol warm start and qEHVI); decoding is greedy either way.
    static func yaml(family: URL, bench: URL, backend: String, budget: Int, baselines: [Baseline] = [.grid], maxTokens: Int = 64, seed: Int = 0) -> String {
        let (initial, iterations, batch) = plan(budget: budget)
        let models = { (name: String) in family.appendingPathComponent(name).path }
        let benchmarks = benchmarkFiles.map { bench.appendingPathComponent($0).path }
        let alphas = gridAlphas(budget: budget).map { String($0) }.joined(separator: ", ")
        let strategies = (["bambo"] + baselines.map(\.rawValue)).joined(separator: ", ")
        let grid = baselines.contains(.grid) ? "\ngrid: {methods: [\(gridMethods.joined(separator: ", "))], alphas: [\(alphas)]}" : ""
        return """
            # Written by `bambo demo` (budget \(budget) = \(initial) warm-start trials + \(iterations) qEHVI batches of \(batch)).
            # The tiny Thinking/Instruct family of cluster/demo (6 layers) on two held-out benchmarks,
            # greedy decoding; objectives per the paper's Eq. 2, summed over both benchmarks.
            study: bambo-demo
            models:                       # weight 0 = instruct, weight 1 = thinking
              - {name: instruct, path: \(quoted(models("instruct")))}
              - {name: thinking, path: \(quoted(models("thinking")))}
            base: {name: base, path: \(quoted(models("base")))}
            partition: {blocks: 3, lambda: 1.0, norm: l2, strategy: hybrid}
            merge: {method: linear, dtype: float32}
            evaluator:
              kind: harness
              backend: \(backend)\(backend == "vllm" ? "\n  server_args: [--no-enable-sleep-mode, --dtype, float32]   # vLLM's CPU build: no sleep mode; the family is float32" : "")
              benchmarks: [\(benchmarks.map(quoted).joined(separator: ", "))]
              prompts: bare                 # the family was trained on bare questions
              sampling: {temperature: 0, max_tokens: \(maxTokens), seed: 0}
              samples: 1
              concurrency: 16
              request_timeout: 600
            objectives:
              - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
              - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
            optimizer: {initial: \(initial), iterations: \(iterations), batch: \(batch), acquisition: qehvi, seed: \(seed)}
            # bambo first: its corners x = 0 and x = 1 anchor Eq. 2 for every strategy. Baselines in the same
            # archive: layerwise = one block per layer, same budget; grid = model-level merges (paper §4.3).
            strategies: [\(strategies)]\(grid)

            """
    }

    /// Baseline strategies the demo can add beside the block-wise search, in the same archive.
    enum Baseline: String, CaseIterable, Sendable { case layerwise, grid }

    /// The grid baseline's methods: linear interpolation (the model-level counterpart of the search)
    /// and TIES over the shared base.
    static let gridMethods = ["linear", "ties"]

    /// The grid's α values: one point for tiny budgets, else five.
    static func gridAlphas(budget: Int) -> [Double] { budget < 16 ? [0.5] : [0.1, 0.3, 0.5, 0.7, 0.9] }

    /// Evaluations the baselines add on top of the block-wise `budget`.
    static func baselineTrials(budget: Int, baselines: [Baseline]) -> Int {
        baselines.reduce(0) { total, baseline in
            switch baseline {
            case .layerwise: total + budget
            case .grid: total + gridMethods.count * gridAlphas(budget: budget).count
            }
        }
    }

    /// A YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
