import BamboProtocol
import Foundation
import Merging
import Partitioning
import Yams

/// A study file (`study.yaml`), parsed and validated. Relative model paths are resolved against the
/// directory of the YAML file. Stored in the archive as JSON (the archive alone resumes a study).
///
/// ```yaml
/// study: synthetic-demo
/// models:
///   - {name: instruct, path: ckpt/instruct}
///   - {name: thinking, path: ckpt/thinking}
/// partition: {blocks: 4, lambda: 1.0, norm: l2, strategy: hybrid}
/// merge: {method: linear, dtype: bfloat16}
/// evaluator: {kind: exec, command: ["python3", "eval.py"], timeout: 600}
/// objectives:
///   - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
///   - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
/// optimizer: {initial: 8, iterations: 5, batch: 4, acquisition: qehvi, seed: 0}
/// strategies: [bambo, layerwise, grid]     # or `strategy: bambo` (the default)
/// grid: {methods: [ties, della], alphas: [0.25, 0.5, 0.75], params: {ties: {density: 0.7}}}
/// ```
public struct StudyConfig: Codable, Sendable, Equatable {
    /// The study's name (WELCOME `study`).
    public var study: String
    /// Exactly two models: `models[0]` is weight 0, `models[1]` weight 1. Paths are absolute.
    public var models: [ModelRef]
    /// An optional shared base model (task-vector merge methods), absolute path.
    public var base: ModelRef?
    public var partition: PartitionSettings
    public var merge: MergeSettings
    /// Passed unchanged to workers in TASK `evaluator`; `kind` is validated (`exec`).
    public var evaluator: [String: JSONValue]
    public var objectives: [ObjectiveSettings]
    public var optimizer: OptimizerSettings
    /// The search strategies sharing the study's archive, in the study file's order (at least one
    /// that interpolates: `bambo` or `layerwise`). Archives written before strategies existed hold
    /// no such key and decode as `[bambo]`.
    public var strategies: [StudyStrategy]
    /// The `grid` strategy's methods, α values and parameters, defaults filled in; nil unless
    /// `strategies` has `grid`.
    public var grid: GridSettings?

    public struct PartitionSettings: Codable, Sendable, Equatable {
        public var blocks: Int
        public var lambda: Double
        public var norm: DifferenceNorm
        public var strategy: PartitionStrategy
    }

    public struct MergeSettings: Codable, Sendable, Equatable {
        public var method: String
        public var dtype: MergeDType
        public var params: [String: JSONValue]
        public var seed: Int
    }

    /// Which raw metric an objective is built from.
    public enum Metric: String, Codable, Sendable, CaseIterable {
        case accuracy, tokens
    }

    /// One normalized objective (paper Eq. 2), anchored on the `expert` and `base` models' trials.
    public struct ObjectiveSettings: Codable, Sendable, Equatable {
        public var name: String
        public var metric: Metric
        /// Name of the model (one of `models`) that scores 1.
        public var expert: String
        /// Name of the model that scores 0.
        public var base: String
        /// The benchmarks summed into this objective; nil sums every benchmark the trials report.
        public var benchmarks: [String]? = nil
    }

    public struct OptimizerSettings: Codable, Sendable, Equatable {
        /// Warm-start trials (corners, balanced point, Sobol).
        public var initial: Int
        /// Proposal rounds after the warm start.
        public var iterations: Int
        /// Trials proposed at once.
        public var batch: Int
        /// `qehvi`, `qnehvi` or `sobol`.
        public var acquisition: String
        public var seed: Int
    }

    /// The study's budget of trials: the sum of its strategies' budgets (`plans`); for `bambo`
    /// alone, initial + iterations × batch.
    public var budget: Int { plans.map(\.budget).reduce(0, +) }

    /// The evaluator kind (`exec`).
    public var evaluatorKind: String { evaluator["kind"]?.stringValue ?? "" }

    /// The index (0 or 1) of the model named `name`.
    public func modelIndex(named name: String) -> Int? { models.firstIndex { $0.name == name } }

    public init(
        study: String, models: [ModelRef], base: ModelRef?, partition: PartitionSettings, merge: MergeSettings,
        evaluator: [String: JSONValue], objectives: [ObjectiveSettings], optimizer: OptimizerSettings,
        strategies: [StudyStrategy] = [.bambo], grid: GridSettings? = nil
    ) {
        self.study = study
        self.models = models
        self.base = base
        self.partition = partition
        self.merge = merge
        self.evaluator = evaluator
        self.objectives = objectives
        self.optimizer = optimizer
        self.strategies = strategies
        self.grid = grid
    }

    /// Decodes a stored configuration; one from before strategies existed is a `bambo` study.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            study: try container.decode(String.self, forKey: .study), models: try container.decode([ModelRef].self, forKey: .models),
            base: try container.decodeIfPresent(ModelRef.self, forKey: .base),
            partition: try container.decode(PartitionSettings.self, forKey: .partition),
            merge: try container.decode(MergeSettings.self, forKey: .merge),
            evaluator: try container.decode([String: JSONValue].self, forKey: .evaluator),
            objectives: try container.decode([ObjectiveSettings].self, forKey: .objectives),
            optimizer: try container.decode(OptimizerSettings.self, forKey: .optimizer),
            strategies: try container.decodeIfPresent([StudyStrategy].self, forKey: .strategies) ?? [.bambo],
            grid: try container.decodeIfPresent(GridSettings.self, forKey: .grid))
    }
}

/// An invalid study file: names the file, the key and what was expected.
public struct StudyConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    /// The key path, e.g. `optimizer.batch`, `models[1].path`; empty for the whole file.
    public var key: String
    public var message: String
    public var description: String { key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)" }
}

/// Evaluator kinds a study may name, with the keys each takes.
public enum EvaluatorKinds {
    public static let known: [String: [String]] = [
        "exec": ["kind", "command", "timeout"],
        "harness": ["kind", "backend", "benchmarks", "sampling", "samples", "mode", "endpoint", "python", "server_args",
                    "chat_template_kwargs", "concurrency", "request_timeout", "prompts"],
    ]
    /// Backends the `harness` evaluator runs.
    public static let harnessBackends = ["transformers", "vllm", "sglang", "openai"]
    /// Keys of the `harness` evaluator's `sampling` mapping.
    public static let harnessSamplingKeys = ["temperature", "top_p", "top_k", "min_p", "max_tokens", "seed"]
}

/// Acquisitions a study may name.
public enum Acquisitions {
    public static let known = ["qehvi", "qnehvi", "qlogehvi", "qlognehvi", "sobol"]
}

extension StudyConfig {
    /// Reads and validates a study file.
    public static func load(from url: URL) throws -> StudyConfig {
        let name = url.lastPathComponent
        let text: String
        do {
            // Through a file handle: `String(contentsOf:)` refuses character devices (/dev/null, a pipe)
            // with a misleading "permission" error.
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            guard let decoded = String(data: try handle.readToEnd() ?? Data(), encoding: .utf8) else {
                throw StudyConfigError(file: url.path, key: "", message: "the file is not UTF-8 text")
            }
            text = decoded
        } catch let error as StudyConfigError {
            throw error
        } catch {
            throw StudyConfigError(file: url.path, key: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, fileName: name, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses and validates study YAML; relative paths are resolved against `baseDirectory`.
    public static func parse(yaml: String, fileName: String, baseDirectory: URL) throws -> StudyConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw StudyConfigError(file: fileName, key: "", message: "not valid YAML: \(error)")
        }
        guard let root else { throw StudyConfigError(file: fileName, key: "", message: "the file is empty") }
        let reader = YAMLReader(file: fileName, baseDirectory: baseDirectory)
        return try reader.study(root)
    }

    /// Checks what the file names on disk: each model (and the base) is a directory.
    public func validateFiles(fileName: String) throws {
        var entries = models.enumerated().map { ("models[\($0.offset)].path", $0.element.path) }
        if let base { entries.append(("base.path", base.path)) }
        for (key, path) in entries {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw StudyConfigError(file: fileName, key: key, message: "expected a model directory, but \(path) does not exist or is not a directory")
            }
        }
    }
}

/// Walks the YAML node tree, checking every key; errors name the key path.
struct YAMLReader {
    let file: String
    let baseDirectory: URL

    func fail(_ key: String, _ message: String) -> StudyConfigError {
        StudyConfigError(file: file, key: key, message: message)
    }

    func study(_ root: Node) throws -> StudyConfig {
        let top = try mapping(
            root, key: "", allowed: ["study", "models", "base", "partition", "merge", "evaluator", "objectives", "optimizer", "strategy", "strategies", "grid"])
        let name = try string(try required(top, "study", in: ""), key: "study")
        guard !name.isEmpty else { throw fail("study", "expected a non-empty name") }

        let modelNodes = try sequence(try required(top, "models", in: ""), key: "models")
        guard modelNodes.count == 2 else { throw fail("models", "expected exactly 2 models (weight 0 and weight 1), got \(modelNodes.count)") }
        let models = try modelNodes.enumerated().map { try model($0.element, key: "models[\($0.offset)]") }
        guard models[0].name != models[1].name else { throw fail("models[1].name", "expected a name different from models[0], got \"\(models[1].name)\" twice") }
        let base = try top["base"].map { try model($0, key: "base") }

        let partition = try partitionSettings(try required(top, "partition", in: ""))
        let merge = try mergeSettings(try required(top, "merge", in: ""))
        let evaluator = try evaluatorSettings(try required(top, "evaluator", in: ""))

        let objectiveNodes = try sequence(try required(top, "objectives", in: ""), key: "objectives")
        guard !objectiveNodes.isEmpty else { throw fail("objectives", "expected at least one objective") }
        var objectives: [StudyConfig.ObjectiveSettings] = []
        for (index, node) in objectiveNodes.enumerated() {
            let key = "objectives[\(index)]"
            let fields = try mapping(node, key: key, allowed: ["name", "metric", "expert", "base", "benchmarks"])
            let objectiveName = try string(try required(fields, "name", in: key), key: key + ".name")
            guard !objectiveName.isEmpty else { throw fail(key + ".name", "expected a non-empty name") }
            guard !objectives.contains(where: { $0.name == objectiveName }) else {
                throw fail(key + ".name", "expected a unique name, \"\(objectiveName)\" is used twice")
            }
            let metric = try choice(try required(fields, "metric", in: key), key: key + ".metric", StudyConfig.Metric.self)
            let names = models.map(\.name)
            let expert = try string(try required(fields, "expert", in: key), key: key + ".expert")
            guard names.contains(expert) else { throw fail(key + ".expert", "expected one of the models (\(names.joined(separator: ", "))), got \"\(expert)\"") }
            let baseName = try string(try required(fields, "base", in: key), key: key + ".base")
            guard names.contains(baseName) else { throw fail(key + ".base", "expected one of the models (\(names.joined(separator: ", "))), got \"\(baseName)\"") }
            guard baseName != expert else { throw fail(key + ".base", "expected a model other than the expert \"\(expert)\"") }
            var benchmarks: [String]?
            if let node = fields["benchmarks"] {
                let list = try sequence(node, key: key + ".benchmarks").enumerated().map { try string($0.element, key: key + ".benchmarks[\($0.offset)]") }
                guard !list.isEmpty, Set(list).count == list.count else {
                    throw fail(key + ".benchmarks", "expected a non-empty list of distinct benchmark names (leave the key out to sum every benchmark)")
                }
                benchmarks = list
            }
            objectives.append(.init(name: objectiveName, metric: metric, expert: expert, base: baseName, benchmarks: benchmarks))
        }

        let optimizer = try optimizerSettings(try required(top, "optimizer", in: ""))
        let strategies = try strategyList(top)
        try checkPerBlockParams(merge.params, blocks: partition.blocks, strategies: strategies)
        var grid: GridSettings?
        if strategies.contains(.grid) {
            grid = try gridSettings(top["grid"], hasBase: base != nil)
        } else if top["grid"] != nil {
            throw fail("grid", "given, but grid is not among the strategies (\(strategies.map(\.rawValue).joined(separator: ", "))): add it to strategies or remove this key")
        }
        return StudyConfig(
            study: name, models: models, base: base, partition: partition, merge: merge, evaluator: evaluator,
            objectives: objectives, optimizer: optimizer, strategies: strategies, grid: grid)
    }

    /// `merge.params` lists of the per-block parameters (density, gamma, epsilon, lambda; one value
    /// per block, as workers read them; other params pass through unchecked): numbers, K + 2 of them
    /// (embedding, the partition's K blocks, head); layerwise trials have other blocks, so a list
    /// and that strategy do not go together.
    func checkPerBlockParams(_ params: [String: JSONValue], blocks: Int, strategies: [StudyStrategy]) throws {
        for (name, value) in params.sorted(by: { $0.key < $1.key }) where MergeParameters.blockParameterNames.contains(name) {
            guard case .array(let items) = value else { continue }
            let key = "merge.params.\(name)"
            for (index, item) in items.enumerated() {
                guard case .number = item else { throw fail("\(key)[\(index)]", "expected a number, got \(describe(item))") }
            }
            guard items.count == blocks + 2 else {
                throw fail(key, "expected \(blocks + 2) values, one per block (embedding, the \(blocks) blocks of partition.blocks, head), or a single number; got \(items.count)")
            }
            if strategies.contains(.layerwise) {
                throw fail(key, "a list has one value per block of the bambo strategy's partition, but layerwise trials have one block per layer: give a single number or leave layerwise out")
            }
        }
    }

    /// `strategy: NAME` or `strategies: [NAME, …]` (not both); default `[bambo]`.
    func strategyList(_ top: [String: Node]) throws -> [StudyStrategy] {
        let names = StudyStrategy.allCases.map(\.rawValue).joined(separator: ", ")
        if top["strategy"] != nil, top["strategies"] != nil {
            throw fail("strategies", "give either strategy (one) or strategies (a list), not both")
        }
        var list: [StudyStrategy] = [.bambo]
        var key = "strategy"
        if let node = top["strategy"] {
            guard case .scalar = node else { throw fail("strategy", "expected one of \(names), got \(kindName(node)) (use strategies: for a list)") }
            list = [try choice(node, key: "strategy", StudyStrategy.self)]
        } else if let node = top["strategies"] {
            key = "strategies"
            let nodes: [Node]
            if case .scalar = node { nodes = [node] } else { nodes = try sequence(node, key: key) }
            guard !nodes.isEmpty else { throw fail(key, "expected at least one of \(names)") }
            list = []
            for (index, item) in nodes.enumerated() {
                let strategy = try choice(item, key: "\(key)[\(index)]", StudyStrategy.self)
                guard !list.contains(strategy) else { throw fail("\(key)[\(index)]", "\(strategy.rawValue) is listed twice") }
                list.append(strategy)
            }
        }
        guard list.contains(where: \.interpolates) else {
            throw fail(key, "grid alone has no anchor trials for the objectives (the corners x = 0 and x = 1): add bambo or layerwise")
        }
        return list
    }

    /// The `grid` mapping (`methods`, `alphas`, `params`), each optional, checked against the merge
    /// methods and what the study's models allow (task-vector methods need `base`).
    func gridSettings(_ node: Node?, hasBase: Bool) throws -> GridSettings {
        var settings = GridSettings.defaults(hasBase: hasBase)
        guard let node else { return settings }
        let fields = try mapping(node, key: "grid", allowed: ["methods", "alphas", "params"])
        let known = MergeMethod.allCases.map(\.rawValue).joined(separator: ", ")
        if let methodsNode = fields["methods"] {
            let nodes = try sequence(methodsNode, key: "grid.methods")
            guard !nodes.isEmpty else { throw fail("grid.methods", "expected at least one merge method (\(known))") }
            var methods: [String] = []
            for (index, item) in nodes.enumerated() {
                let key = "grid.methods[\(index)]"
                let method = try choice(item, key: key, MergeMethod.self)
                guard !methods.contains(method.rawValue) else { throw fail(key, "\(method.rawValue) is listed twice") }
                if method.needsBase && !hasBase {
                    throw fail(key, "\(method.rawValue) merges task vectors and needs a base model: add base: {name, path} to the study, or use linear")
                }
                methods.append(method.rawValue)
            }
            settings.methods = methods
            settings.params = Dictionary(uniqueKeysWithValues: methods.map { ($0, GridSettings.defaultParams(for: MergeMethod(rawValue: $0)!)) })
        }
        if let alphasNode = fields["alphas"] {
            let nodes = try sequence(alphasNode, key: "grid.alphas")
            guard !nodes.isEmpty else { throw fail("grid.alphas", "expected at least one weight α in (0, 1)") }
            var alphas: [Double] = []
            for (index, item) in nodes.enumerated() {
                let key = "grid.alphas[\(index)]"
                let alpha = try number(item, key: key, atLeast: 0)
                guard alpha > 0, alpha < 1 else {
                    throw fail(key, "expected a weight α strictly between 0 and 1 (0 and 1 are the models themselves, the anchor trials), got \(alpha.formatted())")
                }
                guard !alphas.contains(alpha) else { throw fail(key, "\(alpha.formatted()) is listed twice") }
                alphas.append(alpha)
            }
            settings.alphas = alphas
        }
        if let paramsNode = fields["params"] {
            let perMethod = try mapping(paramsNode, key: "grid.params", allowed: settings.methods)
            for (method, valuesNode) in perMethod.sorted(by: { $0.key < $1.key }) {
                let key = "grid.params.\(method)"
                guard case .object(let values) = try json(valuesNode, key: key) else { throw fail(key, "expected a mapping of parameters, e.g. {density: 0.5}") }
                settings.params[method, default: [:]].merge(values) { _, new in new }
            }
        }
        for method in settings.methods {
            try checkMergeParams(settings.params[method] ?? [:], method: MergeMethod(rawValue: method)!, key: "grid.params.\(method)")
        }
        return settings
    }

    /// Checks merge parameters the way a worker reads them (names the method accepts, values in range).
    func checkMergeParams(_ params: [String: JSONValue], method: MergeMethod, key: String) throws {
        var parameters = MergeParameters()
        for (name, value) in params.sorted(by: { $0.key < $1.key }) {
            let text: String
            switch value {
            case .number(let number): text = String(number)
            case .bool(let flag): text = String(flag)
            default: throw fail("\(key).\(name)", "expected a number or a boolean, got \(describe(value))")
            }
            guard method.parameterNames.contains(name) else {
                let accepted = method.parameterNames.isEmpty ? "none" : method.parameterNames.joined(separator: ", ")
                throw fail("\(key).\(name)", "\(method.rawValue) takes no parameter \"\(name)\" (accepted: \(accepted))")
            }
            do { try parameters.set(name, to: text) } catch { throw fail("\(key).\(name)", "\(error)") }
        }
        do { try parameters.validate(for: method) } catch { throw fail(key, "\(error)") }
    }

    func model(_ node: Node, key: String) throws -> ModelRef {
        let fields = try mapping(node, key: key, allowed: ["name", "path"])
        let name = try string(try required(fields, "name", in: key), key: key + ".name")
        guard !name.isEmpty else { throw fail(key + ".name", "expected a non-empty name") }
        let path = try string(try required(fields, "path", in: key), key: key + ".path")
        guard !path.isEmpty else { throw fail(key + ".path", "expected a directory path") }
        let expanded = (path as NSString).expandingTildeInPath
        let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : baseDirectory.appendingPathComponent(expanded)
        return ModelRef(name: name, path: url.standardizedFileURL.path)
    }

    func partitionSettings(_ node: Node) throws -> StudyConfig.PartitionSettings {
        let fields = try mapping(node, key: "partition", allowed: ["blocks", "lambda", "norm", "strategy"])
        let blocks = try integer(try required(fields, "blocks", in: "partition"), key: "partition.blocks", atLeast: 1)
        let lambda = try fields["lambda"].map { try number($0, key: "partition.lambda", atLeast: 0) } ?? 1
        let norm = try fields["norm"].map { try choice($0, key: "partition.norm", DifferenceNorm.self) } ?? .l2
        let strategy = try fields["strategy"].map { try choice($0, key: "partition.strategy", PartitionStrategy.self) } ?? .hybrid
        return .init(blocks: blocks, lambda: lambda, norm: norm, strategy: strategy)
    }

    func mergeSettings(_ node: Node) throws -> StudyConfig.MergeSettings {
        let fields = try mapping(node, key: "merge", allowed: ["method", "dtype", "params", "seed"])
        let method = try string(try required(fields, "method", in: "merge"), key: "merge.method")
        guard !method.isEmpty else { throw fail("merge.method", "expected a merge method name, e.g. linear") }
        let dtype = try fields["dtype"].map { try choice($0, key: "merge.dtype", MergeDType.self) } ?? .bfloat16
        var params: [String: JSONValue] = [:]
        if let node = fields["params"] {
            guard case .object(let object) = try json(node, key: "merge.params") else { throw fail("merge.params", "expected a mapping") }
            params = object
        }
        let seed = try fields["seed"].map { try integer($0, key: "merge.seed", atLeast: 0) } ?? 0
        return .init(method: method, dtype: dtype, params: params, seed: seed)
    }

    func evaluatorSettings(_ node: Node) throws -> [String: JSONValue] {
        guard case .object(let object) = try json(node, key: "evaluator") else { throw fail("evaluator", "expected a mapping with a kind") }
        guard let kindValue = object["kind"] else { throw fail("evaluator.kind", "missing (expected one of \(EvaluatorKinds.known.keys.sorted().joined(separator: ", ")))") }
        guard case .string(let kind) = kindValue, let allowed = EvaluatorKinds.known[kind] else {
            throw fail("evaluator.kind", "expected one of \(EvaluatorKinds.known.keys.sorted().joined(separator: ", ")), got \(describe(kindValue))")
        }
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw fail("evaluator.\(key)", unknownKeyMessage(key, allowed: allowed))
        }
        if kind == "exec" {
            guard let command = object["command"] else { throw fail("evaluator.command", "missing (expected a list of strings: the program and its arguments)") }
            guard case .array(let parts) = command, !parts.isEmpty else {
                throw fail("evaluator.command", "expected a non-empty list of strings, got \(describe(command))")
            }
            for (index, part) in parts.enumerated() {
                guard case .string(let text) = part, !text.isEmpty else {
                    throw fail("evaluator.command[\(index)]", "expected a non-empty string, got \(describe(part))")
                }
            }
            if let timeout = object["timeout"] {
                guard case .number(let seconds) = timeout, seconds > 0, seconds.isFinite else {
                    throw fail("evaluator.timeout", "expected a number of seconds > 0, got \(describe(timeout))")
                }
            }
        }
        if kind == "harness" { return try harnessSettings(object) }
        return object
    }

    /// Checks a `harness` evaluator and makes its benchmark paths absolute (relative to the study file).
    func harnessSettings(_ object: [String: JSONValue]) throws -> [String: JSONValue] {
        var result = object
        let backends = EvaluatorKinds.harnessBackends
        guard let backendValue = object["backend"] else { throw fail("evaluator.backend", "missing (expected one of \(backends.joined(separator: ", ")))") }
        guard case .string(let backend) = backendValue, backends.contains(backend) else {
            throw fail("evaluator.backend", "expected one of \(backends.joined(separator: ", ")), got \(describe(backendValue))")
        }
        guard let benchmarksValue = object["benchmarks"] else { throw fail("evaluator.benchmarks", "missing (expected a list of benchmark files)") }
        guard case .array(let entries) = benchmarksValue, !entries.isEmpty else {
            throw fail("evaluator.benchmarks", "expected a non-empty list of benchmark file paths, got \(describe(benchmarksValue))")
        }
        var paths: [JSONValue] = []
        for (index, entry) in entries.enumerated() {
            let key = "evaluator.benchmarks[\(index)]"
            guard case .string(let path) = entry, !path.isEmpty else { throw fail(key, "expected a file path, got \(describe(entry))") }
            let expanded = (path as NSString).expandingTildeInPath
            let url = (expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : baseDirectory.appendingPathComponent(expanded)).standardizedFileURL
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw fail(key, "expected a benchmark file (.jsonl or .csv), but \(url.path) does not exist or is a directory")
            }
            paths.append(.string(url.path))
        }
        result["benchmarks"] = .array(paths)
        func integer(_ key: String, atLeast minimum: Int, _ value: JSONValue?) throws {
            guard let value else { return }
            guard case .number(let number) = value, number == number.rounded(), number >= Double(minimum), number < 1e15 else {
                throw fail(key, "expected an integer ≥ \(minimum), got \(describe(value))")
            }
        }
        func number(_ key: String, in range: ClosedRange<Double>, _ value: JSONValue?) throws {
            guard let value else { return }
            guard case .number(let number) = value, number.isFinite, range.contains(number) else {
                throw fail(key, "expected a number in [\(range.lowerBound.formatted()), \(range.upperBound.formatted())], got \(describe(value))")
            }
        }
        func text(_ key: String, _ value: JSONValue?) throws {
            guard let value else { return }
            guard case .string(let string) = value, !string.isEmpty else { throw fail(key, "expected a non-empty string, got \(describe(value))") }
        }
        if let sampling = object["sampling"] {
            guard case .object(let fields) = sampling else {
                throw fail("evaluator.sampling", "expected a mapping of \(EvaluatorKinds.harnessSamplingKeys.joined(separator: ", ")), got \(describe(sampling))")
            }
            for key in fields.keys.sorted() where !EvaluatorKinds.harnessSamplingKeys.contains(key) {
                throw fail("evaluator.sampling.\(key)", unknownKeyMessage(key, allowed: EvaluatorKinds.harnessSamplingKeys))
            }
            try number("evaluator.sampling.temperature", in: 0...100, fields["temperature"])
            try number("evaluator.sampling.top_p", in: 0...1, fields["top_p"])
            try integer("evaluator.sampling.top_k", atLeast: -1, fields["top_k"])
            try number("evaluator.sampling.min_p", in: 0...1, fields["min_p"])
            try integer("evaluator.sampling.max_tokens", atLeast: 1, fields["max_tokens"])
            try integer("evaluator.sampling.seed", atLeast: 0, fields["seed"])
        }
        try integer("evaluator.samples", atLeast: 1, object["samples"])
        try integer("evaluator.concurrency", atLeast: 1, object["concurrency"])
        try number("evaluator.request_timeout", in: 0.001...1e9, object["request_timeout"])
        if let mode = object["mode"] {
            guard case .string(let name) = mode, ["thinking", "instruct"].contains(name) else {
                throw fail("evaluator.mode", "expected thinking or instruct, got \(describe(mode))")
            }
        }
        if let prompts = object["prompts"] {
            guard case .string(let name) = prompts, ["standard", "bare"].contains(name) else {
                throw fail("evaluator.prompts", "expected standard or bare, got \(describe(prompts))")
            }
        }
        try text("evaluator.endpoint", object["endpoint"])
        try text("evaluator.python", object["python"])
        if backend == "openai" && object["endpoint"] == nil {
            throw fail("evaluator.endpoint", "missing (the openai backend needs the server's URL, e.g. http://host:8000/v1)")
        }
        if let arguments = object["server_args"] {
            guard case .array(let parts) = arguments else { throw fail("evaluator.server_args", "expected a list of strings, got \(describe(arguments))") }
            for (index, part) in parts.enumerated() {
                guard case .string = part else { throw fail("evaluator.server_args[\(index)]", "expected a string, got \(describe(part))") }
            }
        }
        if let kwargs = object["chat_template_kwargs"] {
            guard case .object = kwargs else {
                throw fail("evaluator.chat_template_kwargs", "expected a mapping, e.g. {enable_thinking: false}, got \(describe(kwargs))")
            }
        }
        return result
    }

    func optimizerSettings(_ node: Node) throws -> StudyConfig.OptimizerSettings {
        let fields = try mapping(node, key: "optimizer", allowed: ["initial", "iterations", "batch", "acquisition", "seed"])
        let initial = try integer(try required(fields, "initial", in: "optimizer"), key: "optimizer.initial", atLeast: 1)
        let iterations = try integer(try required(fields, "iterations", in: "optimizer"), key: "optimizer.iterations", atLeast: 0)
        let batch = try integer(try required(fields, "batch", in: "optimizer"), key: "optimizer.batch", atLeast: 1)
        var acquisition = "qehvi"
        if let node = fields["acquisition"] {
            acquisition = try string(node, key: "optimizer.acquisition")
            guard Acquisitions.known.contains(acquisition) else {
                throw fail("optimizer.acquisition", "expected one of \(Acquisitions.known.joined(separator: ", ")), got \"\(acquisition)\"")
            }
        }
        let seed = try fields["seed"].map { try integer($0, key: "optimizer.seed", atLeast: 0) } ?? 0
        return .init(initial: initial, iterations: iterations, batch: batch, acquisition: acquisition, seed: seed)
    }

    // MARK: typed access

    func mapping(_ node: Node, key: String, allowed: [String]) throws -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw fail(key, "expected a mapping (key: value), got \(kindName(node))")
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let name = keyNode.scalar?.string else { throw fail(key, "expected string keys, got \(kindName(keyNode))") }
            let path = key.isEmpty ? name : key + "." + name
            guard allowed.contains(name) else { throw fail(path, unknownKeyMessage(name, allowed: allowed)) }
            guard result[name] == nil else { throw fail(path, "given twice") }
            result[name] = value
        }
        return result
    }

    func required(_ fields: [String: Node], _ name: String, in key: String) throws -> Node {
        guard let node = fields[name] else { throw fail(key.isEmpty ? name : key + "." + name, "missing (required)") }
        return node
    }

    func sequence(_ node: Node, key: String) throws -> [Node] {
        guard case .sequence(let sequence) = node else { throw fail(key, "expected a list, got \(kindName(node))") }
        return Array(sequence)
    }

    func string(_ node: Node, key: String) throws -> String {
        guard case .scalar(let scalar) = node, node.tag.rawValue == Tag.Name.str.rawValue else {
            throw fail(key, "expected a string, got \(kindName(node))")
        }
        return scalar.string
    }

    func integer(_ node: Node, key: String, atLeast minimum: Int) throws -> Int {
        guard node.tag.rawValue == Tag.Name.int.rawValue, let value = node.int, value >= minimum else {
            throw fail(key, "expected an integer ≥ \(minimum), got \(kindName(node))")
        }
        return value
    }

    func number(_ node: Node, key: String, atLeast minimum: Double) throws -> Double {
        guard node.tag.rawValue == Tag.Name.int.rawValue || node.tag.rawValue == Tag.Name.float.rawValue, let value = node.float, value.isFinite, value >= minimum else {
            throw fail(key, "expected a finite number ≥ \(minimum.formatted()), got \(kindName(node))")
        }
        return value
    }

    func choice<T: RawRepresentable & CaseIterable>(_ node: Node, key: String, _ type: T.Type) throws -> T where T.RawValue == String {
        let options = T.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .scalar(let scalar) = node, let value = T(rawValue: scalar.string) else {
            throw fail(key, "expected one of \(options), got \(kindName(node))")
        }
        return value
    }

    /// Any YAML node as JSON (for pass-through objects).
    func json(_ node: Node, key: String) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return .bool(node.bool ?? false)
            case .int:
                guard let value = node.int else { throw fail(key, "integer out of range: \(scalar.string)") }
                return .number(Double(value))
            case .float:
                guard let value = node.float, value.isFinite else { throw fail(key, "expected a finite number, got \(scalar.string)") }
                return .number(value)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .array(try sequence.enumerated().map { try json($0.element, key: "\(key)[\($0.offset)]") })
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (keyNode, value) in mapping {
                guard let name = keyNode.scalar?.string else { throw fail(key, "expected string keys") }
                guard object[name] == nil else { throw fail("\(key).\(name)", "given twice") }
                object[name] = try json(value, key: "\(key).\(name)")
            }
            return .object(object)
        case .alias:
            throw fail(key, "YAML aliases are not supported")
        }
    }

    func kindName(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .str: return "\"\(scalar.string)\""
            case .null: return "null"
            default: return scalar.string
            }
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }

    func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return "\"\(text)\""
        case .number(let number): return number.formatted()
        case .bool(let flag): return "\(flag)"
        case .null: return "null"
        case .array: return "a list"
        case .object: return "a mapping"
        }
    }

    func unknownKeyMessage(_ name: String, allowed: [String]) -> String {
        let closest = allowed.min { editDistance($0, name) < editDistance($1, name) }
        var message = "unknown key"
        if let closest, editDistance(closest, name) <= max(2, name.count / 3) {
            message += " (did you mean '\(closest)'?)"
        }
        return message + "; expected one of \(allowed.joined(separator: ", "))"
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
