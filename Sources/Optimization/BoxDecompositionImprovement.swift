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
        let (minima, argmin) = subsetMinima(of: newPoints, objectiveCount: objectiveCount)
        let subsetCount = 1 << q
        var total = 0.0
        var gradient = [[Double]](repeating: [Double](repeating: 0, count: objectiveCount), count: q)
        var sides = [Double](repeating: 0, count: objectiveCount)
        for cell in cells {
            subsets: for mask in 1..<subsetCount {
                var product = 1.0
                for m in 0..<objectiveCount {
                    let side = min(minima[mask * objectiveCount + m], cell.upper[m]) - cell.lower[m]
                    if side <= 0 { continue subsets }
                    sides[m] = side
                    product *= side
                }
                let sign = mask.nonzeroBitCount & 1 == 1 ? 1.0 : -1.0
                total += sign * product
                if withGradient {
                    for m in 0..<objectiveCount where minima[mask * objectiveCount + m] < cell.upper[m] {
                        gradient[argmin[mask * objectiveCount + m]][m] += sign * product / sides[m]
                    }
                }
            }
        }
        return (total, gradient)
    }

    /// Component-wise minimum of every non-empty subset of `points` (bit i of the mask = point i) and the point
    /// attaining it, flattened as [mask · objectiveCount + m]; each subset is built from the one without its
    /// lowest point.
    static func subsetMinima(of points: [[Double]], objectiveCount: Int) -> (minima: [Double], argmin: [Int]) {
        let subsetCount = 1 << points.count
        var minima = [Double](repeating: .infinity, count: subsetCount * objectiveCount)
        var argmin = [Int](repeating: 0, count: subsetCount * objectiveCount)
        for mask in 1..<subsetCount {
            let lowest = mask.trailingZeroBitCount
            let rest = mask & (mask - 1)
            for m in 0..<objectiveCount {
                let value = points[lowest][m]
                if rest == 0 || value < minima[rest * objectiveCount + m] {
                    minima[mask * objectiveCount + m] = value
                    argmin[mask * objectiveCount + m] = lowest
                } else {
                    minima[mask * objectiveCount + m] = minima[rest * objectiveCount + m]
                    argmin[mask * objectiveCount + m] = argmin[rest * objectiveCount + m]
                }
            }
        }
        return (minima, argmin)
    }
}
