@testable import Optimization

/// Seeded random point sets and brute-force references for the Pareto, hypervolume and box tests.
enum ParetoTestSupport {
    static func uniform(_ generator: inout SplitMix64) -> Double {
        Double(generator.next() >> 11) * 0x1p-53
    }

    /// n points near the positive unit sphere (radius 0.8…1), so many are mutually non-dominated.
    static func sphericalFront(count: Int, objectives: Int, seed: UInt64) -> [[Double]] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let direction = (0..<objectives).map { _ in uniform(&generator) + 0.05 }
            let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let radius = 0.8 + 0.2 * uniform(&generator)
            return direction.map { radius * $0 / norm }
        }
    }

    /// n points with integer coordinates in 1…levels (ties and duplicates are frequent).
    static func integerPoints(count: Int, objectives: Int, levels: Int, seed: UInt64) -> [[Double]] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            (0..<objectives).map { _ in Double(1 + Int(generator.next() % UInt64(levels))) }
        }
    }

    /// Exact HV of integer points w.r.t. the origin by counting the unit cells [c, c + 1] (c ∈ {0…levels−1}^M)
    /// that lie below some point.
    static func gridCountHypervolume(_ points: [[Double]], objectives: Int, levels: Int) -> Double {
        var total = 0
        var cell = [Int](repeating: 0, count: objectives)
        func visit(_ m: Int) {
            if m == objectives {
                if points.contains(where: { point in (0..<objectives).allSatisfy { Double(cell[$0] + 1) <= point[$0] } }) {
                    total += 1
                }
                return
            }
            for c in 0..<levels {
                cell[m] = c
                visit(m + 1)
            }
        }
        visit(0)
        return Double(total)
    }

    /// HV by inclusion–exclusion over all subsets: Σ_{S≠∅} (−1)^{|S|+1} Π_m (min_{i∈S} y_im − r_m)₊. Small n only.
    static func inclusionExclusionHypervolume(_ points: [[Double]], referencePoint r: [Double]) -> Double {
        var total = 0.0
        for mask in 1..<(1 << points.count) {
            var product = 1.0
            for m in r.indices {
                var lowest = Double.infinity
                for i in points.indices where mask & (1 << i) != 0 { lowest = min(lowest, points[i][m]) }
                product *= max(0, lowest - r[m])
            }
            total += mask.nonzeroBitCount % 2 == 1 ? product : -product
        }
        return total
    }

    /// O(n²) non-dominated filter: indices of points no other point dominates; of identical survivors the first.
    static func bruteForceNonDominated(_ points: [[Double]]) -> [Int] {
        points.indices.filter { i in
            !points.indices.contains { j in
                let better = zip(points[j], points[i]).allSatisfy { $0 >= $1 } && points[j] != points[i]
                let earlierTwin = j < i && points[j] == points[i]
                return better || earlierTwin
            }
        }
    }
}
