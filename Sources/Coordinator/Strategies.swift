import BamboProtocol
import Foundation
import Merging

/// A search strategy of a study. Several may share one archive (`strategies: [bambo, layerwise, grid]`)
/// so that one report compares them at their own budgets (paper §4.3).
public enum StudyStrategy: String, Codable, Sendable, CaseIterable {
    /// Block-wise: K blocks from the study's `partition`, warm start then qEHVI/qNEHVI (the paper's method).
    case bambo
    /// Layer-wise: one block per layer (K = L), the same warm start, acquisition and budget as `bambo`.
    case layerwise
    /// Model-level baseline: every tensor gets weight α, for each method × α of `grid`.
    case grid

    /// Whether the strategy searches block weights with the warm start (corners, balanced point, Sobol)
    /// and the acquisition; the first such strategy's corner trials anchor the objectives (Eq. 2).
    public var interpolates: Bool { self != .grid }
}

/// The `grid` strategy's settings: merge methods × interpolation weights α, with per-method parameters.
public struct GridSettings: Codable, Sendable, Equatable {
    /// Merge methods (`MergeMethod` names), in order.
    public var methods: [String]
    /// Weights α ∈ (0, 1) of `models[1]`, in order.
    public var alphas: [Double]
    /// Merge parameters per method (defaults of `GridSettings.defaultParams`, overridden by the study file).
    public var params: [String: [String: JSONValue]]

    public init(methods: [String], alphas: [Double], params: [String: [String: JSONValue]]) {
        self.methods = methods
        self.alphas = alphas
        self.params = params
    }

    /// α = 0.1, 0.2, …, 0.9 (paper §4.3).
    public static let defaultAlphas: [Double] = (1...9).map { Double($0) / 10 }

    /// The paper's model-level baselines that the study's models allow: task vectors need a base
    /// model, so without one only `linear` (weight averaging) is left.
    public static func defaultMethods(hasBase: Bool) -> [MergeMethod] {
        hasBase ? [.taskArithmetic, .ties, .dareTies, .breadcrumbs, .della] : [.linear]
    }

    /// Parameters for a method when the study file gives none: the density 0.5 of the TIES, DARE and
    /// DELLA papers' usual settings (mergekit's default of 1 would keep every delta, i.e. no
    /// sparsification), Breadcrumbs keeping 90 % after dropping the top 1 %, DELLA's ε = 0.1.
    public static func defaultParams(for method: MergeMethod) -> [String: JSONValue] {
        switch method {
        case .linear, .taskArithmetic: [:]
        case .ties, .dareLinear, .dareTies: ["density": .number(0.5)]
        case .breadcrumbs: ["density": .number(0.9), "gamma": .number(0.01)]
        case .della: ["density": .number(0.5), "epsilon": .number(0.1)]
        }
    }

    /// Defaults for a study with (`hasBase`) or without a base model.
    public static func defaults(hasBase: Bool) -> GridSettings {
        let methods = defaultMethods(hasBase: hasBase)
        return GridSettings(
            methods: methods.map(\.rawValue), alphas: defaultAlphas,
            params: Dictionary(uniqueKeysWithValues: methods.map { ($0.rawValue, defaultParams(for: $0)) }))
    }

    /// The number of grid points: methods × alphas.
    public var count: Int { methods.count * alphas.count }

    /// Grid point `index` (method-major: every α of the first method, then the next method).
    public func point(_ index: Int) -> (method: String, alpha: Double) {
        (methods[index / alphas.count], alphas[index % alphas.count])
    }

    /// The trials for grid points `start ..< start + count` (clipped to the grid): x = [α] × D for a
    /// partition of `dimension` blocks, and the merge spec of the point's method, with the study's
    /// dtype and seed.
    public func trials(from start: Int, count: Int, dimension: Int, merge: StudyConfig.MergeSettings) -> [(x: [Double], merge: MergeSpec)] {
        let end = min(self.count, start + count)
        guard start < end else { return [] }
        return (start..<end).map { index in
            let (method, alpha) = point(index)
            return (Array(repeating: alpha, count: dimension),
                    MergeSpec(method: method, dtype: merge.dtype, params: params[method] ?? [:], seed: merge.seed))
        }
    }
}

/// One strategy's share of the study: its warm-start size, batch and budget of trials.
public struct StrategyPlan: Sendable, Hashable {
    public var strategy: StudyStrategy
    /// Trials of the warm start (0 for `grid`).
    public var initial: Int
    /// Trials proposed at once after the warm start.
    public var batch: Int
    /// Trials in all.
    public var budget: Int
    public init(strategy: StudyStrategy, initial: Int, batch: Int, budget: Int) {
        self.strategy = strategy
        self.initial = initial
        self.batch = batch
        self.budget = budget
    }
}

extension StudyConfig {
    /// The strategies' plans, the anchor strategy (the first that interpolates) first, then the others
    /// in the study file's order. `bambo` and `layerwise` both get `optimizer`'s budget (equal
    /// evaluations), `grid` one trial per method × α, proposed `optimizer.batch` at a time.
    public var plans: [StrategyPlan] {
        let ordered = strategies.filter { $0 == anchorStrategy } + strategies.filter { $0 != anchorStrategy }
        return ordered.map { strategy in
            switch strategy {
            case .bambo, .layerwise:
                StrategyPlan(strategy: strategy, initial: optimizer.initial, batch: optimizer.batch,
                             budget: optimizer.initial + optimizer.iterations * optimizer.batch)
            case .grid:
                StrategyPlan(strategy: .grid, initial: 0, batch: optimizer.batch, budget: (grid ?? .defaults(hasBase: base != nil)).count)
            }
        }
    }

    /// The strategy whose corner trials (x = 0 and x = 1) anchor the objectives: the first of
    /// `strategies` that interpolates (validation ensures there is one).
    public var anchorStrategy: StudyStrategy { strategies.first(where: \.interpolates) ?? .bambo }

    /// The budget of one strategy (0 when the study does not run it).
    public func budget(of strategy: StudyStrategy) -> Int { plans.first { $0.strategy == strategy }?.budget ?? 0 }
}

/// The layer-wise partition: one block per layer, K = L (no profiling needed).
public func layerwisePartition(layers: Int) -> PartitionSpec {
    PartitionSpec(blocks: (0..<layers).map { [$0, $0] }, layers: layers)
}

/// The model-level partition of `grid` trials: one block over all layers (x = [α, α, α]).
public func modelLevelPartition(layers: Int) -> PartitionSpec {
    PartitionSpec(blocks: [[0, layers - 1]], layers: layers)
}
