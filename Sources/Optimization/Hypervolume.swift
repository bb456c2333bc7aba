/// Exact hypervolume indicators (all objectives maximized).
///
/// HV(P, r) is the Lebesgue measure of ∪_{y ∈ P} [r, y]; points not strictly better than r in every
/// objective contribute nothing. Two objectives: sort and sweep, O(n log n). Three: sweep over the third
/// objective with an incrementally updated 2-D staircase, O(n log n) comparisons plus array insertions.
/// Four or more: slicing along the last objective (HSO-style dimension sweep) down to the 3-D case,
/// O(n^(M−2) log n).
public enum Hypervolume {
    /// HV of `points` with respect to `referencePoint`. Throws `ParetoError` for ragged or non-finite input.
    public static func compute(_ points: [[Double]], referencePoint: [Double]) throws -> Double {
        try ParetoValidation.checkPoints(points, referencePoint: referencePoint, what: "points")
        return computeUnchecked(points, referencePoint: referencePoint)
    }

    /// HV(front ∪ newPoints) − HV(front): the improvement the new points bring.
    public static func improvement(of newPoints: [[Double]], over front: [[Double]], referencePoint: [Double]) throws
        -> Double
    {
        try ParetoValidation.checkPoints(front, referencePoint: referencePoint, what: "front")
        try ParetoValidation.checkPoints(newPoints, referencePoint: referencePoint, what: "newPoints")
        return computeUnchecked(front + newPoints, referencePoint: referencePoint)
            - computeUnchecked(front, referencePoint: referencePoint)
    }

    /// `compute` without input checks.
    static func computeUnchecked(_ points: [[Double]], referencePoint r: [Double]) -> Double {
        let relevant = points.filter { point in point.indices.allSatisfy { point[$0] > r[$0] } }
        if relevant.isEmpty { return 0 }
        switch r.count {
        case 1:
            return relevant.map { $0[0] }.max()! - r[0]
        case 2:
            return twoObjectives(relevant, referencePoint: r)
        case 3:
            return threeObjectives(relevant, referencePoint: r)
        default:
            let front = Pareto.nonDominatedIndicesUnchecked(relevant, keepDuplicates: false).map { relevant[$0] }
            return slicing(front, referencePoint: r)
        }
    }

    /// Sort by y0 descending; each point adds the strip its y1 gains over the best y1 so far.
    private static func twoObjectives(_ points: [[Double]], referencePoint r: [Double]) -> Double {
        let sorted = points.sorted { $0[0] > $1[0] || ($0[0] == $1[0] && $0[1] > $1[1]) }
        var area = 0.0
        var bestSecond = r[1]
        for point in sorted where point[1] > bestSecond {
            area += (point[0] - r[0]) * (point[1] - bestSecond)
            bestSecond = point[1]
        }
        return area
    }

    /// Sweep the third objective downwards; the dominated area of the (y0, y1) projections seen so far
    /// is kept on a staircase (x ascending, y descending) updated point by point.
    private static func threeObjectives(_ points: [[Double]], referencePoint r: [Double]) -> Double {
        let sorted = points.sorted { $0[2] > $1[2] }
        var staircase = Staircase(referenceX: r[0], referenceY: r[1])
        var volume = 0.0
        var previousLevel = sorted[0][2]
        for point in sorted {
            volume += staircase.area * (previousLevel - point[2])
            staircase.insert(x: point[0], y: point[1])
            previousLevel = point[2]
        }
        return volume + staircase.area * (previousLevel - r[2])
    }

    /// M ≥ 4: HV = Σ_k HV_{M−1}(first k points, last objective dropped) · (z_k − z_{k+1}) with points sorted
    /// by the last objective descending and z_{n+1} = r_M.
    private static func slicing(_ points: [[Double]], referencePoint r: [Double]) -> Double {
        let last = r.count - 1
        let sorted = points.sorted { $0[last] > $1[last] }
        let lowerReference = Array(r.dropLast())
        var projected: [[Double]] = []
        var volume = 0.0
        for (k, point) in sorted.enumerated() {
            projected.append(Array(point.dropLast()))
            let nextLevel = k + 1 < sorted.count ? sorted[k + 1][last] : r[last]
            let thickness = point[last] - nextLevel
            if thickness > 0 {
                volume += computeUnchecked(projected, referencePoint: lowerReference) * thickness
            }
        }
        return volume
    }
}

/// The 2-D non-dominated staircase (maximization) with its dominated area relative to a reference point.
struct Staircase {
    let referenceX: Double
    let referenceY: Double
    /// Non-dominated points, x strictly ascending and y strictly descending.
    private(set) var xs: [Double] = []
    private(set) var ys: [Double] = []
    /// Area of ∪ [r, (x_i, y_i)].
    private(set) var area = 0.0

    init(referenceX: Double, referenceY: Double) {
        self.referenceX = referenceX
        self.referenceY = referenceY
    }

    /// Adds (x, y) (both above the reference); does nothing if a staircase point weakly dominates it.
    mutating func insert(x: Double, y: Double) {
        // j: first index with xs[j] ≥ x; it has the largest y among points with x-coordinate ≥ x.
        var low = 0
        var high = xs.count
        while low < high {
            let mid = (low + high) / 2
            if xs[mid] < x { low = mid + 1 } else { high = mid }
        }
        let j = low
        if j < xs.count && ys[j] >= y { return }
        // Points (x', y') with x' ≤ x and y' ≤ y are dominated: a contiguous run [lo, hi) ending at j
        // (or j + 1 when xs[j] == x, whose y is then below y).
        let hi = (j < xs.count && xs[j] == x) ? j + 1 : j
        var lo = hi
        while lo > 0 && ys[lo - 1] <= y { lo -= 1 }
        let leftX = lo > 0 ? xs[lo - 1] : referenceX
        // Old heights over (leftX, x]: the removed points' steps, then the next point's (or the reference).
        var oldArea = 0.0
        var stepStart = leftX
        for i in lo..<hi {
            oldArea += (xs[i] - stepStart) * (ys[i] - referenceY)
            stepStart = xs[i]
        }
        let nextHeight = hi < ys.count ? ys[hi] : referenceY
        oldArea += (x - stepStart) * (nextHeight - referenceY)
        area += (x - leftX) * (y - referenceY) - oldArea
        xs.replaceSubrange(lo..<hi, with: [x])
        ys.replaceSubrange(lo..<hi, with: [y])
    }
}
