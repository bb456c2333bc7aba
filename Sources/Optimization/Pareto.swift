/// Pareto dominance and non-dominated filtering. All objectives are maximized.
public enum Pareto {
    /// Whether `a` dominates `b`: a ≥ b in every objective and a > b in at least one.
    /// - Precondition: equal counts (not checked; use on validated points).
    public static func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        var strictlyBetter = false
        for m in a.indices {
            if a[m] < b[m] { return false }
            if a[m] > b[m] { strictlyBetter = true }
        }
        return strictlyBetter
    }

    /// Indices, ascending, of the points no other point dominates. Of several identical non-dominated points
    /// only the first is kept unless `keepDuplicates`. Throws `ParetoError` for ragged or non-finite input.
    /// O(n log n) for two objectives, O(n · front size · M) otherwise.
    public static func nonDominatedIndices(_ points: [[Double]], keepDuplicates: Bool = false) throws -> [Int] {
        guard let first = points.first else { return [] }
        guard !first.isEmpty else { throw ParetoError.objectiveCountMismatch(what: "points", index: 0, expected: 1, found: 0) }
        try ParetoValidation.checkPoints(points, objectiveCount: first.count, what: "points")
        return nonDominatedIndicesUnchecked(points, keepDuplicates: keepDuplicates)
    }

    /// The non-dominated points themselves, in input order (see `nonDominatedIndices`).
    public static func nonDominated(_ points: [[Double]], keepDuplicates: Bool = false) throws -> [[Double]] {
        try nonDominatedIndices(points, keepDuplicates: keepDuplicates).map { points[$0] }
    }

    /// A reference point derived from the nadir of the non-dominated points, as BoTorch's
    /// `infer_reference_point` does: r_m = nadir_m − scale · (ideal_m − nadir_m), where nadir/ideal are the
    /// worst/best value of objective m over the front. Where the range is zero (one point, or a flat
    /// objective) |nadir_m| is used instead, and 1 if that is zero too, so r is strictly worse than every
    /// front point in every objective. Throws for empty or invalid input or a scale that is not > 0.
    public static func referencePoint(fromNadirOf points: [[Double]], scale: Double = 0.1) throws -> [Double] {
        guard scale > 0, scale.isFinite else {
            throw ParetoError.invalidArgument(name: "scale", value: "\(scale)", expected: "a finite number > 0")
        }
        guard !points.isEmpty else { throw ParetoError.empty(what: "points") }
        let front = try nonDominated(points)
        let objectiveCount = front[0].count
        return (0..<objectiveCount).map { m in
            let values = front.map { $0[m] }
            let nadir = values.min()!
            let ideal = values.max()!
            var range = ideal - nadir
            if range == 0 { range = abs(nadir) }
            if range == 0 { range = 1 }
            return nadir - scale * range
        }
    }

    /// `nonDominatedIndices` without input checks (points must be validated: equal counts ≥ 1, finite).
    static func nonDominatedIndicesUnchecked(_ points: [[Double]], keepDuplicates: Bool) -> [Int] {
        guard let first = points.first else { return [] }
        let objectiveCount = first.count
        // Lexicographically descending, ties by index: a dominating point always precedes what it dominates,
        // and identical points are adjacent with the first occurrence first.
        let order = points.indices.sorted { i, j in
            for m in 0..<objectiveCount where points[i][m] != points[j][m] {
                return points[i][m] > points[j][m]
            }
            return i < j
        }
        var kept: [Int] = []
        if objectiveCount == 1 {
            let best = points[order[0]][0]
            kept = keepDuplicates ? order.filter { points[$0][0] == best } : [order[0]]
        } else if objectiveCount == 2 {
            // Sorted by y0 descending: a point survives iff its y1 beats every earlier y1 (or it repeats the last kept point).
            var bestSecond = -Double.infinity
            for index in order {
                let point = points[index]
                if point[1] > bestSecond {
                    kept.append(index)
                    bestSecond = point[1]
                } else if keepDuplicates, let last = kept.last, points[last] == point {
                    kept.append(index)
                }
            }
        } else {
            // Any dominator of p precedes p, and a dominated dominator is itself dominated by a kept point.
            for index in order {
                let point = points[index]
                var survives = true
                for keptIndex in kept {
                    let other = points[keptIndex]
                    if dominates(other, point) || (!keepDuplicates && other == point) {
                        survives = false
                        break
                    }
                }
                if survives { kept.append(index) }
            }
        }
        return kept.sorted()
    }
}
