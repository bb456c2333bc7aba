import Foundation
import SafeTensors
import Yams

/// Everything that determines a merge's tensors, in the style of a mergekit YAML file. Written to
/// `bambo-merge.yaml` beside the shards and (as JSON) into every shard's `__metadata__`, and read
/// by `bambo merge --config`:
///
/// ```yaml
/// merge_method: ties
/// models:
///   - model: ckpt/instruct
///   - model: ckpt/thinking
/// base_model: ckpt/base
/// blocks: [[0, 5], [6, 11]]          # or, in --config files only: partition: partition.json
/// weights: [0.0, 0.25, 0.75, 1.0]    # two models: β per block (embedding, B1…BK, head);
///                                    # N models: one list of N weights per block
/// parameters: {density: 0.5}           # numeric parameters: one value, or one per block
///                                    # (density: [0.9, 0.5, 0.3, 0.9] for K = 2)
/// dtype: bfloat16                    # optional: output dtype
/// seed: 0
/// ```
public struct MergeRecipe: Codable, Sendable, Equatable {
    public static let fileName = "bambo-merge.yaml"
    /// The `__metadata__` key of the shards holding the recipe as JSON.
    public static let metadataKey = "bambo_merge"

    public struct ModelEntry: Codable, Sendable, Equatable {
        public var model: String
        public init(model: String) { self.model = model }
    }

    public var mergeMethod: MergeMethod
    public var models: [ModelEntry]
    public var baseModel: String?
    /// K layer blocks `[first, last]` (0-based, inclusive).
    public var blocks: [[Int]]?
    /// A partition file to take the blocks from (`--config` files; relative to the file).
    public var partition: String?
    public var weights: BlockWeights
    public var parameters: MergeParameters?
    /// Output dtype: bfloat16, float16 or float32 (absent: as the inputs).
    public var dtype: String?
    public var seed: UInt64?
    /// The bambo version that wrote it.
    public var bamboVersion: String?

    enum CodingKeys: String, CodingKey {
        case mergeMethod = "merge_method", models, baseModel = "base_model", blocks, partition, weights, parameters, dtype, seed
        case bamboVersion = "bambo_version"
    }

    public init(
        mergeMethod: MergeMethod, models: [String], baseModel: String?, blocks: [[Int]]?, partition: String? = nil,
        weights: BlockWeights, parameters: MergeParameters?, dtype: DType?, seed: UInt64?, bamboVersion: String? = nil
    ) {
        self.mergeMethod = mergeMethod
        self.models = models.map(ModelEntry.init)
        self.baseModel = baseModel
        self.blocks = blocks
        self.partition = partition
        self.weights = weights
        self.parameters = parameters
        self.dtype = dtype.map(Self.dtypeName)
        self.seed = seed
        self.bamboVersion = bamboVersion
    }

    init(request: MergeRequest, blocks: [[Int]]) {
        self.init(
            mergeMethod: request.method, models: request.models.map(\.path),
            baseModel: request.method.needsBase ? request.base?.path : nil, blocks: blocks,
            weights: request.weights, parameters: request.parameters.setNames.isEmpty ? nil : request.parameters,
            dtype: request.outputDType, seed: request.method.sparsification == .random || request.method == .della ? request.seed : nil,
            bamboVersion: bamboLibraryVersion)
    }

    /// The output dtype named in `dtype`, if any.
    public func outputDType() throws -> DType? {
        guard let dtype else { return nil }
        guard let value = Self.dtype(named: dtype) else {
            throw MergeError(.invalidRequest("dtype \"\(dtype)\": expected bfloat16, float16 or float32"))
        }
        return value
    }

    public static func dtypeName(_ dtype: DType) -> String {
        switch dtype {
        case .bf16: "bfloat16"
        case .f16: "float16"
        default: "float32"
        }
    }

    public static func dtype(named name: String) -> DType? {
        switch name.lowercased() {
        case "bfloat16", "bf16": .bf16
        case "float16", "f16", "half": .f16
        case "float32", "f32", "float": .f32
        default: nil
        }
    }

    /// YAML text with a comment header (written by hand: flow lists, plain decimal numbers, so
    /// YAML 1.1 readers such as PyYAML read the same values).
    public func yamlText() -> String {
        var lines = [
            "# bambo merge recipe: `bambo merge --config \(Self.fileName) --out DIR` merges the same tensors again.",
            "merge_method: \(mergeMethod.rawValue)",
            "models:",
        ]
        lines += models.map { "  - model: \(MergekitExport.quoted($0.model))" }
        if let baseModel { lines.append("base_model: \(MergekitExport.quoted(baseModel))") }
        if let blocks { lines.append("blocks: [\(blocks.map { "[\($0.map(String.init).joined(separator: ", "))]" }.joined(separator: ", "))]") }
        if let partition { lines.append("partition: \(MergekitExport.quoted(partition))") }
        if let betas = weights.betas {
            lines.append("weights: [\(betas.map(formatNumber).joined(separator: ", "))]")
        } else {
            lines.append("weights: [\(weights.perBlock.map { "[\($0.map(formatNumber).joined(separator: ", "))]" }.joined(separator: ", "))]")
        }
        if let parameters, !parameters.setNames.isEmpty {
            lines.append("parameters:")
            if let v = parameters.density { lines.append("  density: \(v.yamlText)") }
            if let v = parameters.gamma { lines.append("  gamma: \(v.yamlText)") }
            if let v = parameters.epsilon { lines.append("  epsilon: \(v.yamlText)") }
            if let v = parameters.lambda { lines.append("  lambda: \(v.yamlText)") }
            if let v = parameters.normalize { lines.append("  normalize: \(v)") }
            if let v = parameters.rescale { lines.append("  rescale: \(v)") }
        }
        if let dtype { lines.append("dtype: \(dtype)") }
        if let seed { lines.append("seed: \(seed)") }
        if let bamboVersion { lines.append("bambo_version: \(MergekitExport.quoted(bamboVersion))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Compact JSON with sorted keys (for `__metadata__`).
    public func compactJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }

    /// Reads a recipe or `--config` file; errors name the file and the field.
    public static func load(yaml text: String, file: String) throws -> MergeRecipe {
        guard text.contains(where: { !$0.isWhitespace }) else {
            throw MergeError(.invalidRequest("\(file): the file is empty (expected a merge recipe: models, method, …)"))
        }
        do {
            return try YAMLDecoder().decode(MergeRecipe.self, from: text)
        } catch let error as DecodingError {
            throw MergeError(.invalidRequest("\(file): \(describe(error))"))
        } catch {
            throw MergeError(.invalidRequest("\(file): \(error)"))
        }
    }
}

/// The library version recorded in recipes.
public let bamboLibraryVersion = "0.1.0"
