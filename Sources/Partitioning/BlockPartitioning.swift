/// Hybrid Optimal Block Partitioning (BAMBO paper §3.2, Algorithm 1, Appendix A).
///
/// Given per-layer differences d_0 … d_{L−1} (paper Eq. 4), split the layers into K contiguous blocks
/// minimizing J = Σ_k Cost(B_k) with
///
///     Cost(i, j) = Σ_{t=i..j} (d_t − μ_ij)²  +  λ · (Σ_{t=i..j} d_t − Target)²,   Target = Σ_t d_t / K
///
/// The first term (homogeneity, "Var") keeps layers with similar differences together; the second
/// (balance, "Dev") keeps the difference mass of every block near an equal share. λ trades them:
/// λ = 0 is Fisher–Jenks natural breaks (variance only); a large λ approaches equal-mass blocks.
/// Because d is not normalized, the two terms are in the same units (d²), so λ = 1 weighs a unit of
/// within-block spread the same as a unit of mass imbalance.
///
/// Everything here is pure: values in, values out.

/// How blocks are chosen. `hybrid` is the paper's method; `variance` and `balance` are the two ablations
/// of the paper's Figure 2; `uniform` is the naive equal-size split.
public enum PartitionStrategy: String, Codable, Sendable, CaseIterable {
    /// Minimize Var + λ·Dev (paper Eq. 5).
    case hybrid
    /// Minimize Var only (Fisher–Jenks natural breaks).
    case variance
    /// Minimize Dev only (equal difference mass per block).
    case balance
    /// Equal numbers of layers; the first L mod K blocks take one extra layer.
    case uniform
}

/// A partition of layers 0..<L into contiguous blocks, with its cost.
public struct BlockPartition: Sendable, Equatable {
    /// Inclusive 0-based layer ranges, in order, covering 0..<L exactly once.
    public var blocks: [ClosedRange<Int>]
    /// The objective the strategy minimized, evaluated at `blocks` (for `uniform`: the hybrid J).
    public var cost: Double
    /// Σ_k Var(B_k): the homogeneity term, unweighted.
    public var varianceTerm: Double
    /// Σ_k Dev(B_k): the balance term, unweighted.
    public var balanceTerm: Double

    public init(blocks: [ClosedRange<Int>], cost: Double, varianceTerm: Double, balanceTerm: Double) {
        self.blocks = blocks
        self.cost = cost
        self.varianceTerm = varianceTerm
        self.balanceTerm = balanceTerm
    }

    /// The block index of every layer (length L).
    public var blockOfLayer: [Int] {
        var result: [Int] = []
        for (index, block) in blocks.enumerated() {
            result.append(contentsOf: repeatElement(index, count: block.count))
        }
        return result
    }
}

/// Why a partition cannot be computed.
public enum PartitioningError: Error, Equatable, CustomStringConvertible {
    case noLayers
    case blocksOutOfRange(blocks: Int, layers: Int)
    case nonFiniteDifference(layer: Int, value: Double)
    case invalidLambda(Double)

    public var description: String {
        switch self {
        case .noLayers:
            return "no layer differences given: need at least one layer"
        case let .blocksOutOfRange(blocks, layers):
            return "cannot split \(layers) layer(s) into \(blocks) block(s): the number of blocks must be between 1 and the number of layers (\(layers))"
        case let .nonFiniteDifference(layer, value):
            return "layer \(layer) has a non-finite difference (\(value)); expected a finite number"
        case let .invalidLambda(value):
            return "lambda must be a finite number ≥ 0, got \(value)"
        }
    }
}

/// O(1) segment statistics over a fixed sequence through prefix sums.
struct SegmentCosts {
    private let prefix: [Double]
    private let prefixSquares: [Double]
    let target: Double

    init(differences: [Double], blocks: Int) {
        var prefix = [0.0]
        var prefixSquares = [0.0]
        prefix.reserveCapacity(differences.count + 1)
        prefixSquares.reserveCapacity(differences.count + 1)
        for d in differences {
            prefix.append(prefix.last! + d)
            prefixSquares.append(prefixSquares.last! + d * d)
        }
        self.prefix = prefix
        self.prefixSquares = prefixSquares
        self.target = prefix.last! / Double(blocks)
    }

    /// Σ_{t=i..j} (d_t − μ)² for the inclusive segment [i, j].
    func variance(_ i: Int, _ j: Int) -> Double {
        let n = Double(j - i + 1)
        let sum = prefix[j + 1] - prefix[i]
        let squares = prefixSquares[j + 1] - prefixSquares[i]
        return max(0, squares - sum * sum / n)
    }

    /// (Σ_{t=i..j} d_t − Target)² for the inclusive segment [i, j].
    func deviation(_ i: Int, _ j: Int) -> Double {
        let excess = prefix[j + 1] - prefix[i] - target
        return excess * excess
    }
}

/// The per-segment cost a strategy minimizes: weights of the variance and balance terms.
private func termWeights(_ strategy: PartitionStrategy, lambda: Double) -> (variance: Double, balance: Double) {
    switch strategy {
    case .hybrid, .uniform: return (1, lambda)
    case .variance: return (1, 0)
    case .balance: return (0, 1)
    }
}

/// Validates inputs shared by every entry point.
private func validate(_ differences: [Double], blocks: Int, lambda: Double) throws {
    guard !differences.isEmpty else { throw PartitioningError.noLayers }
    guard blocks >= 1, blocks <= differences.count else {
        throw PartitioningError.blocksOutOfRange(blocks: blocks, layers: differences.count)
    }
    if let bad = differences.firstIndex(where: { !$0.isFinite }) {
        throw PartitioningError.nonFiniteDifference(layer: bad, value: differences[bad])
    }
    guard lambda.isFinite, lambda >= 0 else { throw PartitioningError.invalidLambda(lambda) }
}

/// Evaluates a given partition: its strategy cost and both unweighted terms.
public func evaluatePartition(
    differences: [Double], blocks: [ClosedRange<Int>], lambda: Double = 1, strategy: PartitionStrategy = .hybrid
) throws -> BlockPartition {
    try validate(differences, blocks: blocks.count, lambda: lambda)
    let costs = SegmentCosts(differences: differences, blocks: blocks.count)
    let weights = termWeights(strategy, lambda: lambda)
    var variance = 0.0
    var balance = 0.0
    for block in blocks {
        variance += costs.variance(block.lowerBound, block.upperBound)
        balance += costs.deviation(block.lowerBound, block.upperBound)
    }
    return BlockPartition(
        blocks: blocks, cost: weights.variance * variance + weights.balance * balance,
        varianceTerm: variance, balanceTerm: balance)
}

/// Splits layers into `blocks` contiguous blocks with the chosen strategy.
///
/// For `hybrid`, `variance` and `balance` the result is the global minimum of the strategy's cost,
/// found by the dynamic program of Algorithm 1 in O(K·L²) time with prefix sums. On ties the
/// earliest split point wins (the paper's strict `<`).
/// - Throws: `PartitioningError` when K ∉ 1…L, a difference is not finite, or λ < 0.
public func partitionLayers(
    differences: [Double], blocks: Int, lambda: Double = 1, strategy: PartitionStrategy = .hybrid
) throws -> BlockPartition {
    try validate(differences, blocks: blocks, lambda: lambda)
    let layerCount = differences.count

    if strategy == .uniform {
        return try evaluatePartition(
            differences: differences, blocks: uniformBlocks(layers: layerCount, blocks: blocks),
            lambda: lambda, strategy: .uniform)
    }

    let costs = SegmentCosts(differences: differences, blocks: blocks)
    let weights = termWeights(strategy, lambda: lambda)
    func cost(_ i: Int, _ j: Int) -> Double {
        weights.variance * costs.variance(i, j) + weights.balance * costs.deviation(i, j)
    }

    // best[k][l]: minimum cost of the first l layers in k blocks; split[k][l]: layers before the last block.
    let width = layerCount + 1
    var best = [Double](repeating: .infinity, count: (blocks + 1) * width)
    var split = [Int](repeating: -1, count: (blocks + 1) * width)
    best[0] = 0
    for k in 1...blocks {
        // The first l layers need at least k of them; the rest (L − l) must fill the remaining K − k blocks.
        for l in k...(layerCount - (blocks - k)) {
            var bestValue = Double.infinity
            var bestSplit = -1
            for m in (k - 1)..<l {
                let previous = best[(k - 1) * width + m]
                guard previous < .infinity else { continue }
                let candidate = previous + cost(m, l - 1)
                if candidate < bestValue {
                    bestValue = candidate
                    bestSplit = m
                }
            }
            best[k * width + l] = bestValue
            split[k * width + l] = bestSplit
        }
    }

    var ranges: [ClosedRange<Int>] = []
    var end = layerCount
    for k in stride(from: blocks, through: 1, by: -1) {
        let start = split[k * width + end]
        ranges.append(start...(end - 1))
        end = start
    }
    return try evaluatePartition(
        differences: differences, blocks: ranges.reversed(), lambda: lambda, strategy: strategy)
}

/// Equal-size contiguous blocks; the first L mod K blocks take one extra layer.
public func uniformBlocks(layers: Int, blocks: Int) -> [ClosedRange<Int>] {
    precondition(blocks >= 1 && blocks <= layers, "uniformBlocks needs 1 ≤ blocks ≤ layers")
    let base = layers / blocks
    let extra = layers % blocks
    var ranges: [ClosedRange<Int>] = []
    var start = 0
    for index in 0..<blocks {
        let size = base + (index < extra ? 1 : 0)
        ranges.append(start...(start + size - 1))
        start += size
    }
    return ranges
}
