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

/// The method's scalar parameters (the same in every block; block weights carry the per-block part).
/// `nil` means the method's default.
public struct MergeParameters: Codable, Sendable, Equatable {
    /// Fraction of each task vector kept, in [0, 1] (default 1: keep everything).
    public var density: Double?
    /// Breadcrumbs: fraction of the largest magnitudes removed, in [0, 1] (default 0.01).
    public var gamma: Double?
    /// DELLA: half-width of the keep-probability range, 0 ≤ ε, density ± ε within (0, 1] (default 0.15).
    public var epsilon: Double?
    /// Scale of the mixed task vector (default 1).
    public var lambda: Double?
    /// Divide the mixed delta by the sum of the weights that contributed (default: see ``MergeMethod``).
    public var normalize: Bool?
    /// DARE/DELLA: divide kept elements by their keep probability (default true).
    public var rescale: Bool?

    public init(density: Double? = nil, gamma: Double? = nil, epsilon: Double? = nil, lambda: Double? = nil,
                normalize: Bool? = nil, rescale: Bool? = nil) {
        self.density = density
        self.gamma = gamma
        self.epsilon = epsilon
        self.lambda = lambda
        self.normalize = normalize
        self.rescale = rescale
    }

    /// Sets `name=value` as given on the command line (`density=0.5`, `normalize=true`).
    public mutating func set(_ name: String, to value: String) throws {
        func number() throws -> Double {
            guard let d = Double(value.trimmingCharacters(in: .whitespaces)), d.isFinite else {
                throw MergeError(.invalidParameter("\(name)=\(value): expected a finite number"))
            }
            return d
        }
        func flag() throws -> Bool {
            switch value.lowercased().trimmingCharacters(in: .whitespaces) {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw MergeError(.invalidParameter("\(name)=\(value): expected true or false"))
            }
        }
        switch name {
        case "density": density = try number()
        case "gamma": gamma = try number()
        case "epsilon": epsilon = try number()
        case "lambda": lambda = try number()
        case "normalize": normalize = try flag()
        case "rescale": rescale = try flag()
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

    /// All values resolved against `method`'s defaults, after checking they apply and are in range.
    public func resolved(for method: MergeMethod) throws -> ResolvedMergeParameters {
        for name in setNames where !method.parameterNames.contains(name) {
            let accepted = method.parameterNames.isEmpty ? "none" : method.parameterNames.joined(separator: ", ")
            throw MergeError(.invalidParameter("\(method.rawValue) takes no parameter \"\(name)\" (accepted: \(accepted))"))
        }
        let r = ResolvedMergeParameters(
            density: density ?? 1, gamma: gamma ?? 0.01, epsilon: epsilon ?? 0.15, lambda: lambda ?? 1,
            normalize: normalize ?? method.defaultNormalize, rescale: rescale ?? true)
        func check(_ ok: Bool, _ why: String) throws { if !ok { throw MergeError(.invalidParameter(why)) } }
        try check(r.density >= 0 && r.density <= 1, "density = \(r.density): expected a number in [0, 1]")
        try check(r.gamma >= 0 && r.gamma <= 1, "gamma = \(r.gamma): expected a number in [0, 1]")
        try check(r.lambda.isFinite, "lambda = \(r.lambda): expected a finite number")
        if method == .della, r.density < 1 {
            try check(r.epsilon >= 0 && r.density - r.epsilon > 0 && r.density + r.epsilon <= 1,
                      "epsilon = \(r.epsilon) with density = \(r.density): expected ε ≥ 0 and density ± ε within (0, 1]")
        }
        return r
    }
}

/// ``MergeParameters`` with every default filled in and validated.
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
