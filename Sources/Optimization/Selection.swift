/// Solution selection from a Pareto front (paper §3.4): for a preference vector, the Top-K points by cosine
/// similarity, then the one with the best overall performance (largest sum of normalized objectives);
/// plus the best point for each objective. Objectives are maximized and expected to be normalized by the
/// caller (the paper's Eq. 2 normalization, or `minMaxNormalized`).
public enum Selection {
    /// Each objective mapped affinely to [0, 1] over `points` (min → 0, max → 1); an objective that is
    /// constant over the points maps to 0. Throws for ragged or non-finite input.
    public static func minMaxNormalized(_ points: [[Double]]) throws -> [[Double]] {
        guard let first = points.first else { return [] }
        try ParetoValidation.checkPoints(points, objectiveCount: first.count, what: "points")
        let lows = first.indices.map { m in points.map { $0[m] }.min()! }
        let highs = first.indices.map { m in points.map { $0[m] }.max()! }
        return points.map { point in
            point.indices.map { m in highs[m] > lows[m] ? (point[m] - lows[m]) / (highs[m] - lows[m]) : 0 }
        }
    }

    /// a·b / (|a| |b|); 0 when either vector is zero.
    public static func cosineSimilarity(_ a: [Double], _ b: [Double]) -> Double {
        var dot = 0.0
        var normA = 0.0
        var normB = 0.0
        for m in a.indices {
            dot += a[m] * b[m]
            normA += a[m] * a[m]
            normB += b[m] * b[m]
        }
        guard normA > 0, normB > 0 else { return 0 }
        return dot / (normA.squareRoot() * normB.squareRoot())
    }

    /// Index into `objectives` of the point chosen for `preference`: among the `topK` points with the highest
    /// cosine similarity to the preference (ties: lower index first), the one with the largest sum of objectives
    /// (ties: higher similarity, then lower index). Throws for an empty set, a mismatched or non-finite
    /// preference, or topK < 1; topK larger than the set means the whole set.
    public static func bestForPreference(objectives: [[Double]], preference: [Double], topK: Int) throws -> Int {
        guard !objectives.isEmpty else { throw ParetoError.empty(what: "objectives") }
        guard topK >= 1 else { throw ParetoError.invalidArgument(name: "topK", value: "\(topK)", expected: "≥ 1") }
        try ParetoValidation.checkPoints([preference], objectiveCount: objectives[0].count, what: "preference")
        try ParetoValidation.checkPoints(objectives, objectiveCount: objectives[0].count, what: "objectives")
        let similarity = objectives.map { cosineSimilarity($0, preference) }
        let ranked = objectives.indices.sorted { similarity[$0] > similarity[$1] || (similarity[$0] == similarity[$1] && $0 < $1) }
        let candidates = ranked.prefix(topK)
        let sums = objectives.map { $0.reduce(0, +) }
        return candidates.min { i, j in
            if sums[i] != sums[j] { return sums[i] > sums[j] }
            if similarity[i] != similarity[j] { return similarity[i] > similarity[j] }
            return i < j
        }!
    }

    /// For each objective m, the index of the point with the largest value of m (ties: larger sum of
    /// objectives, then lower index). Throws for an empty, ragged or non-finite set.
    public static func perObjectiveBests(objectives: [[Double]]) throws -> [Int] {
        guard let first = objectives.first else { throw ParetoError.empty(what: "objectives") }
        try ParetoValidation.checkPoints(objectives, objectiveCount: first.count, what: "objectives")
        let sums = objectives.map { $0.reduce(0, +) }
        return first.indices.map { m in
            objectives.indices.min { i, j in
                if objectives[i][m] != objectives[j][m] { return objectives[i][m] > objectives[j][m] }
                if sums[i] != sums[j] { return sums[i] > sums[j] }
                return i < j
            }!
        }
    }

    /// The paper's selection: Das–Dennis preference vectors with `divisions` H, the chosen point for each
    /// (`bestForPreference` with `topK`), and the per-objective bests.
    public static func select(objectives: [[Double]], divisions: Int, topK: Int) throws -> FrontSelection {
        guard let first = objectives.first else { throw ParetoError.empty(what: "objectives") }
        let preferences = try DasDennis.referenceDirections(objectives: first.count, divisions: divisions)
        let choices = try preferences.map { try bestForPreference(objectives: objectives, preference: $0, topK: topK) }
        let bests = try perObjectiveBests(objectives: objectives)
        return FrontSelection(
            preferences: preferences, choiceForPreference: choices, perObjectiveBests: bests,
            selectedIndices: Array(Set(choices + bests)).sorted())
    }
}

/// What `Selection.select` chose; all indices point into the objectives it was given.
public struct FrontSelection: Equatable, Sendable {
    /// The Das–Dennis preference vectors, in `DasDennis.referenceDirections` order.
    public let preferences: [[Double]]
    /// The chosen point for each preference vector.
    public let choiceForPreference: [Int]
    /// The best point for each objective.
    public let perObjectiveBests: [Int]
    /// Every chosen index once, ascending.
    public let selectedIndices: [Int]
}
