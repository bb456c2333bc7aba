/// Das–Dennis (1998) reference directions: the simplex lattice {w ∈ ℝ^M : w_m = k_m / H, k_m ∈ ℕ, Σ k_m = H}.
public enum DasDennis {
    /// Largest number of directions `referenceDirections` will build.
    public static let maximumCount = 1_000_000

    /// C(H + M − 1, M − 1), the number of lattice points; nil if it overflows `Int`.
    public static func count(objectives: Int, divisions: Int) -> Int? {
        guard objectives >= 1, divisions >= 0 else { return nil }
        // C(n, k) built incrementally: after step i it is C(n − k + i, i), always an integer.
        let n = divisions + objectives - 1
        let k = objectives - 1
        var result = 1
        for i in stride(from: 1, through: k, by: 1) {
            let (product, overflow) = result.multipliedReportingOverflow(by: n - k + i)
            if overflow { return nil }
            result = product / i
        }
        return result
    }

    /// All lattice points for M `objectives` and H `divisions`, in lexicographically descending order of
    /// (k_1, …, k_M) (so the first is (1, 0, …, 0)). Each sums to 1 (up to rounding of k/H).
    /// Throws `ParetoError.invalidArgument` unless M ≥ 1, H ≥ 1 (H ≥ 0 when M = 1) and the count ≤ `maximumCount`.
    public static func referenceDirections(objectives: Int, divisions: Int) throws -> [[Double]] {
        guard objectives >= 1 else {
            throw ParetoError.invalidArgument(name: "objectives", value: "\(objectives)", expected: "≥ 1")
        }
        guard divisions >= 1 else {
            throw ParetoError.invalidArgument(name: "divisions", value: "\(divisions)", expected: "≥ 1")
        }
        guard let total = count(objectives: objectives, divisions: divisions), total <= maximumCount else {
            throw ParetoError.invalidArgument(
                name: "divisions", value: "\(divisions)",
                expected: "a value giving at most \(maximumCount) directions for \(objectives) objectives")
        }
        var directions: [[Double]] = []
        directions.reserveCapacity(total)
        var counts = [Int](repeating: 0, count: objectives)
        let h = Double(divisions)
        func fill(_ m: Int, remaining: Int) {
            if m == objectives - 1 {
                counts[m] = remaining
                directions.append(counts.map { Double($0) / h })
                return
            }
            for k in stride(from: remaining, through: 0, by: -1) {
                counts[m] = k
                fill(m + 1, remaining: remaining - k)
            }
        }
        fill(0, remaining: divisions)
        return directions
    }
}
