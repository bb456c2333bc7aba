import Foundation

/// A parameter-level merge method, applied per tensor with the weights of the tensor's block.
///
/// With models M_1…M_N, block weights w_1…w_N and (where needed) a base B, task vectors
/// δ_i = M_i − B are sparsified per model, weighted and mixed:
///
/// | method | sparsification of δ_i | sign election | `normalize` default |
/// |---|---|---|---|
/// | `linear` | — (Σ w_i·M_i, no base) | — | — |
/// | `task_arithmetic` | none | no | false |
/// | `ties` | keep the top `density` fraction by magnitude | yes | true |
/// | `dare_linear` | keep each with probability `density`, rescale 1/density | no | false |
/// | `dare_ties` | as `dare_linear` | yes | false |
/// | `breadcrumbs` | drop the top `gamma` fraction and the smallest, keep `density` | no | false |
/// | `della` | keep with probability p_i ∈ [density − ε, density + ε] rising with the magnitude rank in its row, rescale 1/p_i | yes | true |
///
/// Then mixed = Σ w_i·s_i (over the models whose weighted delta has the elected sign, when electing),
/// divided by Σ w_i over the same models when `normalize`, scaled by `lambda`, and added to B.
/// The names and defaults are mergekit's (`weight`, `density`, `gamma`, `epsilon`, `lambda`,
/// `normalize`, `rescale`); rescaling follows the papers (1/keep-probability).
public enum MergeMethod: String, Codable, Sendable, CaseIterable {
    case linear
    case taskArithmetic = "task_arithmetic"
    case ties
    case dareLinear = "dare_linear"
    case dareTies = "dare_ties"
    case breadcrumbs
    case della

    /// How task vectors are sparsified before mixing.
    public enum Sparsification: Sendable, Equatable {
        /// Keep the `density` fraction of largest magnitudes (TIES).
        case magnitude
        /// Keep each element with probability `density` (DARE).
        case random
        /// Drop the `gamma` fraction of largest magnitudes and the smallest, keeping `density` (Breadcrumbs).
        case magnitudeOutliers
        /// Keep with a probability that rises with the magnitude rank in the row (DELLA's MAGPRUNE).
        case rankedRandom
    }

    /// Whether the method works on task vectors against a base model.
    public var needsBase: Bool { self != .linear }

    public var sparsification: Sparsification? {
        switch self {
        case .linear, .taskArithmetic: nil
        case .ties: .magnitude
        case .dareLinear, .dareTies: .random
        case .breadcrumbs: .magnitudeOutliers
        case .della: .rankedRandom
        }
    }

    /// Whether conflicting signs are resolved by TIES' sign election (sum of weighted deltas).
    public var electsSign: Bool { self == .ties || self == .dareTies || self == .della }

    /// Whether the method needs whole-tensor magnitude statistics (an extra streaming pass).
    public var needsTensorStatistics: Bool { sparsification == .magnitude || sparsification == .magnitudeOutliers }

    /// mergekit's default for `normalize`.
    public var defaultNormalize: Bool { self == .ties || self == .della }

    /// The `--param` names the method accepts.
    public var parameterNames: [String] {
        switch self {
        case .linear: []
        case .taskArithmetic: ["lambda", "normalize"]
        case .ties: ["density", "lambda", "normalize"]
        case .dareLinear, .dareTies: ["density", "lambda", "normalize", "rescale"]
        case .breadcrumbs: ["density", "gamma", "lambda", "normalize"]
        case .della: ["density", "epsilon", "lambda", "normalize", "rescale"]
        }
    }
}

/// A numeric method parameter: one value for every block, or one value per block in the order of
/// the block weights (embedding, B_1…B_K, head). YAML/JSON: a number or a list of numbers;
/// command line: `0.5` or `0.3,0.5,0.7,0.5` (blocks separated by commas, as in `--weights`).
public enum BlockParameter: Codable, Sendable, Equatable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    /// The same value in every block.
    case all(Double)
    /// One value per block: embedding, B_1…B_K, head.
    case perBlock([Double])

    public init(floatLiteral value: Double) { self = .all(value) }
    public init(integerLiteral value: Int) { self = .all(Double(value)) }
    public init(arrayLiteral values: Double...) { self = .perBlock(values) }

    /// The value in block `b` (0 = embedding, 1…K, K+1 = head); for `perBlock`, `b` must be in range.
    public func value(inBlock b: Int) -> Double {
        switch self {
        case .all(let v): v
        case .perBlock(let values): values[b]
        }
    }

    /// The single value, when the same in every block.
    public var scalar: Double? {
        if case .all(let v) = self { return v }
        return nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Double.self) {
            self = .all(v)
        } else if let values = try? container.decode([Double].self) {
            self = .perBlock(values)
        } else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "expected a number or a list of numbers, one per block (embedding, B1…BK, head)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .all(let v): try container.encode(v)
        case .perBlock(let values): try container.encode(values)
        }
    }

    /// YAML flow text: `0.5` or `[0.3, 0.5, 0.7]`.
    public var yamlText: String {
        switch self {
        case .all(let v): formatNumber(v)
        case .perBlock(let values): "[\(values.map(formatNumber).joined(separator: ", "))]"
        }
    }

    /// The command-line text: `0.5` or `0.3,0.5,0.7`.
    public var commandLineText: String {
        switch self {
        case .all(let v): formatNumber(v)
        case .perBlock(let values): values.map(formatNumber).joined(separator: ",")
        }
    }

    /// Parses the command-line text of parameter `name`: a number, or numbers separated by commas
    /// (optionally in brackets) for one value per block.
    public static func parse(_ text: String, name: String) throws -> BlockParameter {
        var body = text.trimmingCharacters(in: .whitespaces)
        let bracketed = body.hasPrefix("[") && body.hasSuffix("]")
        if bracketed { body = String(body.dropFirst().dropLast()) }
        let parts = body.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var values: [Double] = []
        for (b, part) in parts.enumerated() {
            guard let d = Double(part), d.isFinite else {
                let which = parts.count == 1 && !bracketed ? "" : " (block \(b + 1) of \(parts.count))"
                throw MergeError(.invalidParameter("\(name)=\(text)\(which): \"\(part)\" is not a finite number; expected a number, or one number per block separated by commas"))
            }
            values.append(d)
        }
        return values.count == 1 && !bracketed ? .all(values[0]) : .perBlock(values)
    }
}

/// The method's parameters. The numeric ones (`density`, `gamma`, `epsilon`, `lambda`) may differ
/// per block (``BlockParameter``), like the block weights; `normalize` and `rescale` hold for the
/// whole merge. `nil` means the method's default.
public struct MergeParameters: Codable, Sendable, Equatable {
    /// Fraction of each task vector kept, in (0, 1] (default 1: keep everything).
    public var density: BlockParameter?
    /// Breadcrumbs: fraction of the largest magnitudes removed, in [0, 1] (default 0.01).
    public var gamma: BlockParameter?
    /// DELLA: half-width of the keep-probability range, 0 ≤ ε, density ± ε within (0, 1] (default 0.15).
    public var epsilon: BlockParameter?
    /// Scale of the mixed task vector (default 1).
    public var lambda: BlockParameter?
    /// Divide the mixed delta by the sum of the weights that contributed (default: see ``MergeMethod``).
    public var normalize: Bool?
    /// DARE/DELLA: divide kept elements by their keep probability (default true).
    public var rescale: Bool?

    public init(density: BlockParameter? = nil, gamma: BlockParameter? = nil, epsilon: BlockParameter? = nil, lambda: BlockParameter? = nil,
                normalize: Bool? = nil, rescale: Bool? = nil) {
        self.density = density
        self.gamma = gamma
        self.epsilon = epsilon
        self.lambda = lambda
        self.normalize = normalize
        self.rescale = rescale
    }

    /// The parameters that may take one value per block.
    public static let blockParameterNames = ["density", "gamma", "epsilon", "lambda"]

    /// Sets `name=value` as given on the command line (`density=0.5`, `density=0.3,0.5,0.7`,
    /// `normalize=true`).
    public mutating func set(_ name: String, to value: String) throws {
        func flag() throws -> Bool {
            switch value.lowercased().trimmingCharacters(in: .whitespaces) {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw MergeError(.invalidParameter("\(name)=\(value): expected true or false"))
            }
        }
        switch name {
        case "normalize": normalize = try flag()
        case "rescale": rescale = try flag()
        default: try set(name, to: try BlockParameter.parse(value, name: name))
        }
    }

    /// Sets a numeric parameter to one value or one value per block.
    public mutating func set(_ name: String, to value: BlockParameter) throws {
        switch name {
        case "density": density = value
        case "gamma": gamma = value
        case "epsilon": epsilon = value
        case "lambda": lambda = value
        case "normalize", "rescale":
            throw MergeError(.invalidParameter("\(name): expected true or false, not a number or a list"))
        default:
            throw MergeError(.invalidParameter("unknown parameter \"\(name)\"; expected one of density, gamma, epsilon, lambda, normalize, rescale"))
        }
    }

    /// The names of the parameters that are set.
    public var setNames: [String] {
        var names: [String] = []
        if density != nil { names.append("density") }
        if gamma != nil { names.append("gamma") }
        if epsilon != nil { names.append("epsilon") }
        if lambda != nil { names.append("lambda") }
        if normalize != nil { names.append("normalize") }
        if rescale != nil { names.append("rescale") }
        return names
    }

    /// The numeric parameters that are set, by name, in ``blockParameterNames`` order.
    public var blockParameters: [(name: String, value: BlockParameter)] {
        [("density", density), ("gamma", gamma), ("epsilon", epsilon), ("lambda", lambda)].compactMap { name, value in
            value.map { (name, $0) }
        }
    }

    /// Whether any numeric parameter has one value per block.
    public var hasPerBlockValues: Bool { blockParameters.contains { $0.value.scalar == nil } }

    /// Checks that every parameter applies to `method` and every value is in range, without knowing
    /// the number of blocks: per-block lists must have the same length, at least 3 (embedding, a
    /// layer block, head).
    public func validate(for method: MergeMethod) throws {
        var count: Int?
        for (name, value) in blockParameters {
            guard case .perBlock(let values) = value else { continue }
            guard values.count >= 3 else {
                throw MergeError(.invalidParameter("\(name) has \(values.count) value\(values.count == 1 ? "" : "s"); expected a single number or one per block (embedding, the layer blocks, head: at least 3)"))
            }
            if let count, count != values.count {
                throw MergeError(.invalidParameter("\(name) has \(values.count) values where another parameter has \(count); expected one per block in each"))
            }
            count = values.count
        }
        _ = try resolved(for: method, blockCount: count ?? 3)
    }

    /// The values of every block resolved against `method`'s defaults, after checking they apply,
    /// that each per-block list has `blockCount` values (embedding, K layer blocks, head) and that
    /// every value is in range. Errors name the parameter and, for lists, the block.
    public func resolved(for method: MergeMethod, blockCount: Int) throws -> [ResolvedMergeParameters] {
        for name in setNames where !method.parameterNames.contains(name) {
            let accepted = method.parameterNames.isEmpty ? "none" : method.parameterNames.joined(separator: ", ")
            throw MergeError(.invalidParameter("\(method.rawValue) takes no parameter \"\(name)\" (accepted: \(accepted))"))
        }
        for (name, value) in blockParameters {
            guard case .perBlock(let values) = value else { continue }
            if values.count != blockCount {
                let layerBlocks = blockCount - 2
                throw MergeError(.invalidParameter(
                    "\(name) has \(values.count) value\(values.count == 1 ? "" : "s"); expected \(blockCount), one per block (embedding, \(layerBlocks) layer block\(layerBlocks == 1 ? "" : "s"), head), or a single number"))
            }
        }
        /// "density" or "density[2] (block 2)", for messages.
        func label(_ name: String, _ value: BlockParameter?, _ b: Int) -> String {
            guard case .perBlock(let values)? = value else { return name }
            return "\(name)[\(b)] (\(BlockWeights.blockName(b, of: values.count)))"
        }
        func at(_ value: BlockParameter?, _ b: Int) -> Double? { value?.value(inBlock: b) }
        var blocks: [ResolvedMergeParameters] = []
        for b in 0..<blockCount {
            let r = ResolvedMergeParameters(
                density: at(density, b) ?? 1, gamma: at(gamma, b) ?? 0.01, epsilon: at(epsilon, b) ?? 0.15, lambda: at(lambda, b) ?? 1,
                normalize: normalize ?? method.defaultNormalize, rescale: rescale ?? true)
            func check(_ ok: Bool, _ why: String) throws { if !ok { throw MergeError(.invalidParameter(why)) } }
            try check(r.density > 0 && r.density <= 1, "\(label("density", density, b)) = \(formatNumber(r.density)): expected a number in (0, 1]")
            try check(r.gamma >= 0 && r.gamma <= 1, "\(label("gamma", gamma, b)) = \(formatNumber(r.gamma)): expected a number in [0, 1]")
            try check(r.lambda.isFinite, "\(label("lambda", lambda, b)) = \(r.lambda): expected a finite number")
            if method == .della, r.density < 1 {
                try check(r.epsilon >= 0 && r.density - r.epsilon > 0 && r.density + r.epsilon <= 1,
                          "\(label("epsilon", epsilon, b)) = \(formatNumber(r.epsilon)) with \(label("density", density, b)) = \(formatNumber(r.density)): expected ε ≥ 0 and density ± ε within (0, 1]")
            }
            blocks.append(r)
        }
        return blocks
    }
}

/// ``MergeParameters`` of one block with every default filled in and validated.
public struct ResolvedMergeParameters: Sendable, Equatable {
    public var density: Double
    public var gamma: Double
    public var epsilon: Double
    public var lambda: Double
    public var normalize: Bool
    public var rescale: Bool
}

/// The block weights x = [embedding, B_1…B_K, head]: for each of the K + 2 blocks, one weight per
/// model, non-negative and summing to 1 (the paper's Eq. 3). For two models, block b's weights are
/// (1 − β_b, β_b): β = 0 is the first model, 1 the second.
public struct BlockWeights: Codable, Sendable, Equatable {
    /// `perBlock[b][i]`: weight of model i in block b (0 = embedding, 1…K = layer blocks, K+1 = head).
    public var perBlock: [[Double]]

    /// Explicit weights per block and model.
    public init(perBlock: [[Double]]) { self.perBlock = perBlock }

    /// Two models: β per block, model weights (1 − β, β).
    public init(betas: [Double]) { perBlock = betas.map { [1 - $0, $0] } }

    /// Two models: a list of β per block; otherwise a list of per-model lists.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let betas = try? container.decode([Double].self) {
            self.init(betas: betas)
        } else {
            self.init(perBlock: try container.decode([[Double]].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let betas { try container.encode(betas) } else { try container.encode(perBlock) }
    }

    public var blockCount: Int { perBlock.count }

    /// β per block when every block has two weights.
    public var betas: [Double]? {
        perBlock.allSatisfy { $0.count == 2 } ? perBlock.map { $0[1] } : nil
    }

    /// Parses the command-line form: blocks separated by commas, in order embedding, B1…BK, head.
    /// For two models each block is one number β ∈ [0, 1]; for N models each block is N weights
    /// separated by colons (`0.2:0.3:0.5`), summing to 1.
    public static func parse(_ text: String, models: Int) throws -> BlockWeights {
        let blocks = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var perBlock: [[Double]] = []
        for (b, block) in blocks.enumerated() {
            let parts = block.split(separator: ":", omittingEmptySubsequences: false).map { String($0) }
            var numbers: [Double] = []
            for part in parts {
                guard let d = Double(part), d.isFinite else {
                    throw MergeError(.invalidWeights("block \(b + 1) of \(blocks.count) (\"\(block)\"): \"\(part)\" is not a number"))
                }
                numbers.append(d)
            }
            if numbers.count == 1, models == 2 {
                perBlock.append([1 - numbers[0], numbers[0]])
                if !(0...1).contains(numbers[0]) {
                    throw MergeError(.invalidWeights("block \(b + 1) (\(blockName(b, of: blocks.count))): β = \(numbers[0]) is outside [0, 1]"))
                }
            } else {
                perBlock.append(numbers)
            }
        }
        return BlockWeights(perBlock: perBlock)
    }

    /// The command-line form of these weights (β per block for two models).
    public var commandLineText: String {
        if let betas { return betas.map { formatNumber($0) }.joined(separator: ",") }
        return perBlock.map { $0.map { formatNumber($0) }.joined(separator: ":") }.joined(separator: ",")
    }

    /// Checks K + 2 blocks of `models` weights each, all in [0, 1], each block summing to 1 (±1e-6).
    public func validate(layerBlocks: Int, models: Int) throws {
        guard perBlock.count == layerBlocks + 2 else {
            throw MergeError(.invalidWeights("got \(perBlock.count) block weights; expected \(layerBlocks + 2) = embedding, \(layerBlocks) layer block\(layerBlocks == 1 ? "" : "s") of the partition, head"))
        }
        for (b, w) in perBlock.enumerated() {
            let name = Self.blockName(b, of: perBlock.count)
            guard w.count == models else {
                throw MergeError(.invalidWeights("block \(b + 1) (\(name)) has \(w.count) weight\(w.count == 1 ? "" : "s"); expected \(models), one per model\(models == 2 ? " (or a single β)" : "")"))
            }
            if let bad = w.first(where: { !($0 >= 0 && $0 <= 1) }) {
                throw MergeError(.invalidWeights("block \(b + 1) (\(name)): weight \(bad) is outside [0, 1]"))
            }
            let sum = w.reduce(0, +)
            guard abs(sum - 1) <= 1e-6 else {
                throw MergeError(.invalidWeights("block \(b + 1) (\(name)): weights \(w.map { formatNumber($0) }.joined(separator: ":")) sum to \(sum); expected 1"))
            }
        }
    }

    /// "embedding", "block k", or "head" for block index `b` of `count`.
    public static func blockName(_ b: Int, of count: Int) -> String {
        b == 0 ? "embedding" : b == count - 1 ? "head" : "block \(b)"
    }
}

/// Shortest decimal text that reads back as the same Double, always with a digit after a point
/// before an exponent (`1.0e-05`), which YAML 1.1 readers need to see a number.
func formatNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    var text = "\(x)"
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<e].contains(".") {
        text.insert(contentsOf: ".0", at: e)
    }
    return text
}
