/// Hypervolume improvement of new points from the non-dominated cells of a front: the quantity qEHVI averages
/// over posterior samples, with its gradient for reparameterized optimization.
extension BoxDecomposition {
    /// Largest number of new points accepted (2^q − 1 subsets per cell).
    public static let maximumNewPoints = 20

    /// HV(front ∪ newPoints) − HV(front) by inclusion–exclusion over the non-dominated `cells` of the front
    /// (see `BoxDecomposition`). Throws for ragged or non-finite points or more than `maximumNewPoints`
    /// points; an empty set (or no cells) improves nothing.
    public static func hypervolumeImprovement(of newPoints: [[Double]], cells: [HyperRectangle]) throws -> Double {
        try improvement(of: newPoints, cells: cells, withGradient: false).value
    }

    /// The improvement and its gradient with respect to every coordinate of every new point
    /// (gradient[i][m] = ∂HVI/∂y_{i,m}). HVI is piecewise polynomial in y: each inclusion–exclusion term
    /// Π_m s_m, s_m = min(min_{i∈S} y_{i,m}, u_m) − l_m > 0, passes ∂/∂s_m = Π_{m'≠m} s_{m'} to the point
    /// attaining the minimum when that minimum lies below u_m. At kinks (ties in the minimum, y on a cell face)
    /// one one-sided derivative is returned, as automatic differentiation of min would.
    public static func hypervolumeImprovementWithGradient(of newPoints: [[Double]], cells: [HyperRectangle]) throws
        -> (value: Double, gradient: [[Double]])
    {
        let result = try improvement(of: newPoints, cells: cells, withGradient: true)
        return (result.value, result.gradient)
    }

    private static func improvement(of newPoints: [[Double]], cells: [HyperRectangle], withGradient: Bool) throws
        -> (value: Double, gradient: [[Double]])
    {
        guard newPoints.count <= maximumNewPoints else {
            throw ParetoError.invalidArgument(
                name: "newPoints.count", value: "\(newPoints.count)", expected: "at most \(maximumNewPoints)")
        }
        guard let firstCell = cells.first, !newPoints.isEmpty else {
            return (0, newPoints.map { [Double](repeating: 0, count: $0.count) })
        }
        let objectiveCount = firstCell.lower.count
        try ParetoValidation.checkPoints(newPoints, objectiveCount: objectiveCount, what: "newPoints")
        let q = newPoints.count
        var scratch = ImprovementScratch(pointCount: q, objectiveCount: objectiveCount)
        let value = scratch.improvement(of: newPoints.flatMap { $0 }, cells: FlatCells(cells), withGradient: withGradient)
        let gradient = (0..<q).map { Array(scratch.gradient[($0 * objectiveCount)..<(($0 + 1) * objectiveCount)]) }
        return (value, gradient)
    }

    /// Component-wise minimum of every non-empty subset of `points` (bit i of the mask = point i) and the point
    /// attaining it, flattened as [mask · objectiveCount + m]; each subset is built from the one without its
    /// lowest point.
    static func subsetMinima(of points: [[Double]], objectiveCount: Int) -> (minima: [Double], argmin: [Int]) {
        let subsetCount = 1 << points.count
        var minima = [Double](repeating: .infinity, count: subsetCount * objectiveCount)
        var argmin = [Int](repeating: 0, count: subsetCount * objectiveCount)
        let flat = points.flatMap { $0 }
        flat.withUnsafeBufferPointer { y in
            minima.withUnsafeMutableBufferPointer { minima in
                argmin.withUnsafeMutableBufferPointer { argmin in
                    fillSubsetMinima(y, pointCount: points.count, objectiveCount: objectiveCount, minima: minima, argmin: argmin)
                }
            }
        }
        return (minima, argmin)
    }

    /// `subsetMinima` on flat buffers (y: point a, objective m at a·M + m), written into `minima`/`argmin`.
    static func fillSubsetMinima(_ y: UnsafeBufferPointer<Double>, pointCount: Int, objectiveCount mCount: Int,
                                 minima: UnsafeMutableBufferPointer<Double>, argmin: UnsafeMutableBufferPointer<Int>) {
        for mask in 1..<(1 << pointCount) {
            let lowest = mask.trailingZeroBitCount, rest = mask & (mask - 1)
            for m in 0..<mCount {
                let value = y[lowest * mCount + m]
                if rest == 0 || value < minima[rest * mCount + m] {
                    minima[mask * mCount + m] = value
                    argmin[mask * mCount + m] = lowest
                } else {
                    minima[mask * mCount + m] = minima[rest * mCount + m]
                    argmin[mask * mCount + m] = argmin[rest * mCount + m]
                }
            }
        }
    }
}

/// The cells of a box decomposition in two flat arrays (cell c, objective m at c·M + m): what the MC
/// acquisition's inner loop reads, without a reference count touched per cell.
struct FlatCells: Sendable {
    let objectiveCount: Int
    let count: Int
    let lower: [Double]
    let upper: [Double]

    init(_ cells: [HyperRectangle]) {
        objectiveCount = cells.first?.lower.count ?? 0
        count = cells.count
        lower = cells.flatMap(\.lower)
        upper = cells.flatMap(\.upper)
    }
}

/// Reusable buffers for `improvement(of:cells:withGradient:)`: one per thread, kept across calls so that
/// the MC loop allocates nothing per sample.
struct ImprovementScratch {
    let pointCount: Int
    let objectiveCount: Int
    /// Subset minima and the point attaining each ([mask · M + m]).
    private var minima: [Double]
    private var argmin: [Int]
    private var sides: [Double]
    /// ∂HVI/∂y after a call with `withGradient` (point a, objective m at a·M + m).
    private(set) var gradient: [Double]

    init(pointCount: Int, objectiveCount: Int) {
        self.pointCount = pointCount
        self.objectiveCount = objectiveCount
        minima = [Double](repeating: .infinity, count: (1 << pointCount) * objectiveCount)
        argmin = [Int](repeating: 0, count: (1 << pointCount) * objectiveCount)
        sides = [Double](repeating: 0, count: objectiveCount)
        gradient = [Double](repeating: 0, count: pointCount * objectiveCount)
    }

    /// HV improvement of `points` (flat, q·M, unchecked) over `cells` by inclusion–exclusion; see
    /// `BoxDecomposition.hypervolumeImprovementWithGradient` for the gradient's definition.
    mutating func improvement(of points: [Double], cells: FlatCells, withGradient: Bool) -> Double {
        let q = pointCount, mCount = objectiveCount, subsetCount = 1 << q
        guard cells.count > 0, q > 0 else {
            if withGradient { for i in gradient.indices { gradient[i] = 0 } }
            return 0
        }
        var total = 0.0
        points.withUnsafeBufferPointer { y in
        minima.withUnsafeMutableBufferPointer { minima in
        argmin.withUnsafeMutableBufferPointer { argmin in
        sides.withUnsafeMutableBufferPointer { sides in
        gradient.withUnsafeMutableBufferPointer { gradient in
        cells.lower.withUnsafeBufferPointer { lower in
        cells.upper.withUnsafeBufferPointer { upper in
            BoxDecomposition.fillSubsetMinima(y, pointCount: q, objectiveCount: mCount, minima: minima, argmin: argmin)
            if withGradient { for i in 0..<gradient.count { gradient[i] = 0 } }
            for c in 0..<cells.count {
                let base = c * mCount
                subsets: for mask in 1..<subsetCount {
                    var product = 1.0
                    for m in 0..<mCount {
                        let side = min(minima[mask * mCount + m], upper[base + m]) - lower[base + m]
                        if side <= 0 { continue subsets }
                        sides[m] = side
                        product *= side
                    }
                    let sign = mask.nonzeroBitCount & 1 == 1 ? 1.0 : -1.0
                    total += sign * product
                    if withGradient {
                        for m in 0..<mCount where minima[mask * mCount + m] < upper[base + m] {
                            gradient[argmin[mask * mCount + m] * mCount + m] += sign * product / sides[m]
                        }
                    }
                }
            }
        }}}}}}}
        return total
    }
}
