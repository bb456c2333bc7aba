import Testing
import Foundation
@testable import Partitioning

/// Naive cost of one block, written independently of the prefix-sum implementation.
private func naiveCost(_ d: [Double], _ block: ClosedRange<Int>, target: Double, wVar: Double, wBal: Double) -> Double {
    let values = block.map { d[$0] }
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
    let deviation = values.reduce(0, +) - target
    return wVar * variance + wBal * deviation * deviation
}

/// Every composition of L layers into K non-empty contiguous blocks.
private func allPartitions(layers: Int, blocks: Int) -> [[ClosedRange<Int>]] {
    if blocks == 1 { return [[0...(layers - 1)]] }
    var result: [[ClosedRange<Int>]] = []
    // The last block starts at s; the first s layers go to blocks − 1 blocks.
    for s in (blocks - 1)..<layers {
        for prefix in allPartitions(layers: s, blocks: blocks - 1) {
            result.append(prefix + [s...(layers - 1)])
        }
    }
    return result
}

private struct LCG {
    var state: UInt64
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
}

@Test("DP equals brute force over all partitions (L ≤ 12, every K, every optimizing strategy)")
func dynamicProgramMatchesBruteForce() throws {
    var rng = LCG(state: 42)
    for trial in 0..<40 {
        let layers = 1 + trial % 12
        // Mix of scales and repeated values, so ties and skew both occur.
        let d = (0..<layers).map { _ in (rng.next() < 0.2 ? 0.5 : rng.next() * 3) * (1 + Double(trial % 3)) }
        let lambda = [0.0, 0.3, 1.0, 7.5][trial % 4]
        for k in 1...layers {
            let target = d.reduce(0, +) / Double(k)
            let candidates = allPartitions(layers: layers, blocks: k)
            #expect(candidates.count == binomial(layers - 1, k - 1))
            for (strategy, weights) in [(PartitionStrategy.hybrid, (1.0, lambda)), (.variance, (1.0, 0.0)), (.balance, (0.0, 1.0))] {
                let brute = candidates.map { p in p.map { naiveCost(d, $0, target: target, wVar: weights.0, wBal: weights.1) }.reduce(0, +) }.min()!
                let result = try partitionLayers(differences: d, blocks: k, lambda: lambda, strategy: strategy)
                let tolerance = 1e-9 * max(1, abs(brute))
                #expect(abs(result.cost - brute) <= tolerance, "L=\(layers) K=\(k) \(strategy): DP \(result.cost) vs brute \(brute)")
                // The returned blocks really have that cost, and they cover 0..<L in order.
                let own = result.blocks.map { naiveCost(d, $0, target: target, wVar: weights.0, wBal: weights.1) }.reduce(0, +)
                #expect(abs(own - result.cost) <= tolerance)
                #expect(result.blocks.count == k)
                #expect(result.blockOfLayer == (0..<layers).map { l in result.blocks.firstIndex { $0.contains(l) }! })
                #expect(result.blocks.first?.lowerBound == 0 && result.blocks.last?.upperBound == layers - 1)
                for (a, b) in zip(result.blocks, result.blocks.dropFirst()) { #expect(a.upperBound + 1 == b.lowerBound) }
            }
        }
    }
}

private func binomial(_ n: Int, _ k: Int) -> Int {
    guard k >= 0, k <= n else { return 0 }
    var result = 1
    for i in 0..<k { result = result * (n - i) / (i + 1) }
    return result
}

@Test("Fisher–Jenks on two obvious clusters splits between them")
func varianceOnlyFindsNaturalBreak() throws {
    let d = [1.0, 1.1, 0.9, 1.0, 9.0, 9.2, 8.8]
    let result = try partitionLayers(differences: d, blocks: 2, strategy: .variance)
    #expect(result.blocks == [0...3, 4...6])
}

@Test("Hybrid splits the heavy deep layers finer than the light shallow ones (paper Figure 2 shape)")
func hybridIsolatesDeepLayers() throws {
    // 24 layers, differences growing with depth as in the paper's Qwen3-4B profile.
    let d = (0..<24).map { l in 0.2 + pow(Double(l) / 23, 3) * 10 }
    let result = try partitionLayers(differences: d, blocks: 6)
    let sizes = result.blocks.map(\.count)
    #expect(sizes.first! > sizes.last!, "sizes \(sizes)")
    // Balance alone gives more balanced masses than variance alone, and hybrid lies between the two.
    let variance = try partitionLayers(differences: d, blocks: 6, strategy: .variance)
    let balance = try partitionLayers(differences: d, blocks: 6, strategy: .balance)
    #expect(balance.balanceTerm <= result.balanceTerm + 1e-9 && result.balanceTerm <= variance.balanceTerm + 1e-9)
    #expect(variance.varianceTerm <= result.varianceTerm + 1e-9 && result.varianceTerm <= balance.varianceTerm + 1e-9)
}

@Test("Uniform split sizes, and the uniform cost is the hybrid J of those blocks")
func uniformSplit() throws {
    #expect(uniformBlocks(layers: 10, blocks: 3) == [0...3, 4...6, 7...9])
    #expect(uniformBlocks(layers: 4, blocks: 4) == [0...0, 1...1, 2...2, 3...3])
    let d = [3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    let uniform = try partitionLayers(differences: d, blocks: 3, lambda: 0.5, strategy: .uniform)
    let evaluated = try evaluatePartition(differences: d, blocks: [0...3, 4...6, 7...9], lambda: 0.5)
    #expect(uniform.cost == evaluated.cost)
    let optimal = try partitionLayers(differences: d, blocks: 3, lambda: 0.5)
    #expect(optimal.cost <= uniform.cost)
}

@Test("Bad inputs give specific errors", arguments: [
    ([Double](), 1, 1.0, PartitioningError.noLayers),
    ([1.0, 2.0], 3, 1.0, PartitioningError.blocksOutOfRange(blocks: 3, layers: 2)),
    ([1.0, 2.0], 0, 1.0, PartitioningError.blocksOutOfRange(blocks: 0, layers: 2)),
    ([1.0, .nan], 1, 1.0, PartitioningError.nonFiniteDifference(layer: 1, value: .nan)),
    ([1.0, 2.0], 1, -1.0, PartitioningError.invalidLambda(-1)),
])
func badInputs(d: [Double], k: Int, lambda: Double, expected: PartitioningError) {
    do {
        _ = try partitionLayers(differences: d, blocks: k, lambda: lambda)
        Issue.record("expected \(expected)")
    } catch let error as PartitioningError {
        // NaN never equals itself: compare the case through the message.
        #expect(error.description == expected.description)
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test("K = L puts every layer in its own block; K = 1 takes all")
func extremes() throws {
    let d = [0.5, 2, 1, 7]
    #expect(try partitionLayers(differences: d, blocks: 4).blocks == [0...0, 1...1, 2...2, 3...3])
    let one = try partitionLayers(differences: d, blocks: 1)
    #expect(one.blocks == [0...3])
    #expect(one.balanceTerm == 0)
}
