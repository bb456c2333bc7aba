/// An axis-aligned box {z : lower ≤ z ≤ upper} in objective space. `upper` may hold +∞ (unbounded cells of
/// the non-dominated region); `lower` is always finite.
public struct HyperRectangle: Equatable, Hashable, Sendable {
    public var lower: [Double]
    public var upper: [Double]

    public init(lower: [Double], upper: [Double]) {
        self.lower = lower
        self.upper = upper
    }

    /// Π (upper_m − lower_m); +∞ for an unbounded box.
    public var volume: Double {
        var product = 1.0
        for m in lower.indices { product *= upper[m] - lower[m] }
        return product
    }

    /// Volume of the intersection with `other` (0 when they only touch).
    public func intersectionVolume(with other: HyperRectangle) -> Double {
        var product = 1.0
        for m in lower.indices {
            let side = min(upper[m], other.upper[m]) - max(lower[m], other.lower[m])
            if side <= 0 { return 0 }
            product *= side
        }
        return product
    }
}

/// Which part of the objective space above the reference point r a box decomposition partitions.
public enum BoxDecompositionRegion: Sendable {
    /// ∪_{y ∈ front} [r, y]: finite cells whose volumes sum to the hypervolume.
    case dominated
    /// {z ≥ r : no front point y ≥ z}: cells with lower ≥ r, unbounded (+∞) above in some objectives.
    case nonDominated
}

/// Box decompositions of the objective space around a Pareto front (all objectives maximized), the
/// cell bounds qEHVI/qNEHVI need (Daulton et al. 2020, §4).
///
/// For new points Y = {y_1 … y_q} the hypervolume improvement over the front is
///
///     HVI(Y) = Σ_{cells [l, u] of the non-dominated region} Σ_{∅ ≠ S ⊆ Y} (−1)^{|S|+1}
///              Π_m max(0, min(min_{i ∈ S} y_{i,m}, u_m) − l_m)
///
/// because the union ∪_i [r, y_i] meets each cell in ∪_i [l, min(y_i, u)], whose volume is given by
/// inclusion–exclusion (the intersection of boxes sharing the corner l is the box at their minimum).
/// `hypervolumeImprovement(of:cells:)` evaluates exactly this and `hypervolumeImprovementWithGradient`
/// adds ∂HVI/∂y. qEHVI = the mean of HVI over MC samples Y⁽ˢ⁾ = μ + L ε⁽ˢ⁾ (ε from
/// `SobolSequence.normalSamples`), with the cells computed once per front; qNEHVI computes the cells per
/// posterior sample of the in-sample front. Pending points: sample them jointly with the candidates and
/// put them in Y (as BoTorch does); E[HVI(Y_pending)] is a constant, so the argmax is that of the expected
/// improvement of the candidates given the pending points. Upper bounds of +∞ need no clamping.
///
/// Algorithm (exact for every M, robust to ties and duplicates): a dimension sweep. The points are sorted
/// by the last objective descending; between consecutive distinct levels the cross-section of the region is
/// the (M−1)-objective region of the points at or above the level, decomposed recursively (one objective:
/// an interval). A cross-section box that stays identical over several slabs is emitted once, spanning them
/// all. For M = 2 that gives the n + 1 staircase cells (n dominated ones); for M = 3 in general position
/// exactly 2n + 1 non-dominated cells, the number of local upper bounds (Klamroth, Lacour & Vanderpooten
/// 2015; tested); for M ≥ 4 no minimality is claimed: measured on random spherical fronts, about 5n
/// non-dominated cells for M = 4 (n = 10…67) and 9–18n for M = 5 (n = 10…77). Cost: O(n² log n) for M = 3,
/// each level re-decomposing the (M−1)-objective cross-section.
/// Cells are disjoint except on shared faces; order is deterministic.
public enum BoxDecomposition {
    /// Cells partitioning `region` for the non-dominated subset of `front` (points not strictly better than
    /// the reference point in every objective are ignored). Throws `ParetoError` for ragged or non-finite input.
    public static func cells(front: [[Double]], referencePoint: [Double], region: BoxDecompositionRegion) throws
        -> [HyperRectangle]
    {
        try ParetoValidation.checkPoints(front, referencePoint: referencePoint, what: "front")
        let relevant = front.filter { point in point.indices.allSatisfy { point[$0] > referencePoint[$0] } }
        let nonDominated = Pareto.nonDominatedIndicesUnchecked(relevant, keepDuplicates: false).map { relevant[$0] }
        return decompose(nonDominated, referencePoint: referencePoint, region: region)
    }

    /// Shorthand for `cells(front:referencePoint:region: .nonDominated)`: what qEHVI integrates over.
    public static func nonDominatedCells(front: [[Double]], referencePoint: [Double]) throws -> [HyperRectangle] {
        try cells(front: front, referencePoint: referencePoint, region: .nonDominated)
    }

    /// Shorthand for `cells(front:referencePoint:region: .dominated)`: their volumes sum to the hypervolume.
    public static func dominatedCells(front: [[Double]], referencePoint: [Double]) throws -> [HyperRectangle] {
        try cells(front: front, referencePoint: referencePoint, region: .dominated)
    }

    /// The dimension sweep on validated, non-dominated points strictly better than `r`.
    static func decompose(_ points: [[Double]], referencePoint r: [Double], region: BoxDecompositionRegion)
        -> [HyperRectangle]
    {
        let objectiveCount = r.count
        if objectiveCount == 1 {
            let best = points.map { $0[0] }.max()
            switch region {
            case .dominated:
                return best.map { [HyperRectangle(lower: [r[0]], upper: [$0])] } ?? []
            case .nonDominated:
                return [HyperRectangle(lower: [best ?? r[0]], upper: [.infinity])]
            }
        }
        let last = objectiveCount - 1
        let lowerReference = Array(r.dropLast())
        let sorted = points.sorted { $0[last] > $1[last] }

        struct OpenBox {
            let box: HyperRectangle
            let top: Double
        }
        var output: [HyperRectangle] = []
        var open: [OpenBox] = []
        var openSet = Set<HyperRectangle>()
        if region == .nonDominated {
            // Above the highest point the cross-section is the whole (M−1)-space above r.
            let whole = HyperRectangle(lower: lowerReference, upper: Array(repeating: .infinity, count: last))
            open.append(OpenBox(box: whole, top: .infinity))
            openSet.insert(whole)
        }
        func close(_ entry: OpenBox, at level: Double) {
            output.append(HyperRectangle(lower: entry.box.lower + [level], upper: entry.box.upper + [entry.top]))
        }

        var active: [[Double]] = []
        var k = 0
        while k < sorted.count {
            let level = sorted[k][last]
            while k < sorted.count && sorted[k][last] == level {
                active.append(Array(sorted[k].dropLast()))
                k += 1
            }
            let projectedFront = Pareto.nonDominatedIndicesUnchecked(active, keepDuplicates: false).map { active[$0] }
            active = projectedFront
            let section = decompose(projectedFront, referencePoint: lowerReference, region: region)
            let sectionSet = Set(section)
            var stillOpen: [OpenBox] = []
            for entry in open {
                if sectionSet.contains(entry.box) {
                    stillOpen.append(entry)
                } else {
                    close(entry, at: level)
                    openSet.remove(entry.box)
                }
            }
            for box in section where !openSet.contains(box) {
                stillOpen.append(OpenBox(box: box, top: level))
                openSet.insert(box)
            }
            open = stillOpen
        }
        for entry in open { close(entry, at: r[last]) }
        return output
    }
}
