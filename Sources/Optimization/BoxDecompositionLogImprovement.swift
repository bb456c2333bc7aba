import Foundation

/// The fat softplus of Ament et al. 2023 ("Unexpected Improvements to Expected Improvement", §4 and App. A):
/// a smooth, positive, increasing stand-in for max(0, x) whose left tail decays like a Cauchy density, not
/// exponentially, so that its logarithm falls only like −2 log|x| far below zero (finite, informative
/// gradients −2/x instead of an exactly flat zero):
///
///     fatplus(x; τ) = τ · [softplus(x/τ) + α / (1 + (x/τ)²)],   α = 0.1.
///
/// It tends to max(0, x) as τ → 0 and is increasing for α < 0.77 (softplus′ ≥ ½ where the Cauchy term falls).
public enum FatSoftplus {
    /// Weight of the Cauchy tail.
    public static let alpha = 0.1

    /// log fatplus(x; τ) and its derivative in x.
    public static func log(_ x: Double, temperature tau: Double) -> (value: Double, derivative: Double) {
        let u = x / tau
        if u < -40 {
            // softplus(u) < 5e-18 is negligible next to α/(1+u²) ≥ 6e-5 (relative error < 1e-13).
            let value = Foundation.log(tau) + Foundation.log(alpha) - 2 * Foundation.log(-u) - Foundation.log1p(1 / (u * u))
            return (value, -2 * u / ((1 + u * u) * tau))
        }
        let softplus = u > 0 ? u + Foundation.log1p(exp(-u)) : Foundation.log1p(exp(u))
        let sigmoid = u > 0 ? 1 / (1 + exp(-u)) : exp(u) / (1 + exp(u))
        let cauchy = 1 / (1 + u * u)
        let f = softplus + alpha * cauchy
        let fPrime = sigmoid - 2 * alpha * u * cauchy * cauchy
        return (Foundation.log(tau) + Foundation.log(f), fPrime / (f * tau))
    }
}

/// log(e^a − e^b) for a ≥ b (−∞ when they are equal).
func logDifferenceExp(_ a: Double, _ b: Double) -> Double {
    guard b > -.infinity else { return a }
    let d = b - a
    guard d < 0 else { return -.infinity }
    // log(1 − e^d): two regimes for accuracy (Mächler 2012).
    return a + (d > -0.693 ? log(-expm1(d)) : log1p(-exp(d)))
}

/// log Σ exp(values) (−∞ for none).
func logSumExp(_ values: [Double]) -> Double {
    guard let top = values.max(), top > -.infinity else { return -.infinity }
    if top == .infinity { return .infinity }
    var sum = 0.0
    for v in values { sum += exp(v - top) }
    return top + log(sum)
}

extension BoxDecomposition {
    /// The logarithm of a smoothed hypervolume improvement: the inclusion–exclusion sum of
    /// `hypervolumeImprovement(of:cells:)` with every side max(0, min(min_{i∈S} y_{i,m}, u_m) − l_m) replaced by
    /// `FatSoftplus` of the same difference (the minima stay exact), all in log space: per term
    /// Σ_m log fatplus(side_m), the positive (odd |S|) and negative (even |S|) terms each combined by
    /// log-sum-exp over subsets and cells, then log(e^pos − e^neg).
    ///
    /// Since fatplus is increasing, fatplus(min_i s_i) = min_i fatplus(s_i): the smoothed sum is the volume of a
    /// union of boxes, so it is positive and at least its largest single-point term (no cancellation below
    /// that). Where the exact improvement is 0 the value stays finite, with a gradient pointing towards
    /// improvement; as τ → 0 it tends to log HVI wherever HVI > 0.
    /// - Returns: the log value and ∂/∂y_{i,m} of it (empty gradient when `withGradient` is false).
    public static func logSmoothedHypervolumeImprovement(of newPoints: [[Double]], cells: [HyperRectangle],
                                                         temperature: Double, withGradient: Bool = true) throws
        -> (value: Double, gradient: [[Double]])
    {
        guard newPoints.count <= maximumNewPoints else {
            throw ParetoError.invalidArgument(
                name: "newPoints.count", value: "\(newPoints.count)", expected: "at most \(maximumNewPoints)")
        }
        guard temperature > 0, temperature.isFinite else {
            throw ParetoError.invalidArgument(name: "temperature", value: "\(temperature)", expected: "a finite value > 0")
        }
        guard let firstCell = cells.first, !newPoints.isEmpty else {
            return (-.infinity, newPoints.map { [Double](repeating: 0, count: $0.count) })
        }
        let objectiveCount = firstCell.lower.count
        try ParetoValidation.checkPoints(newPoints, objectiveCount: objectiveCount, what: "newPoints")
        let q = newPoints.count
        let (minima, argmin) = subsetMinima(of: newPoints, objectiveCount: objectiveCount)
        let subsetCount = 1 << q
        // Terms (cell-major, then subset) and, per term and objective, the log-side derivative.
        let termCount = cells.count * (subsetCount - 1)
        var logTerms = [Double](repeating: 0, count: termCount)
        var sideDerivatives = [Double](repeating: 0, count: withGradient ? termCount * objectiveCount : 0)
        var positive: [Double] = [], negative: [Double] = []
        positive.reserveCapacity(termCount)
        negative.reserveCapacity(termCount)
        var t = 0
        for cell in cells {
            for mask in 1..<subsetCount {
                var logTerm = 0.0
                for m in 0..<objectiveCount {
                    let side = min(minima[mask * objectiveCount + m], cell.upper[m]) - cell.lower[m]
                    let l = FatSoftplus.log(side, temperature: temperature)
                    logTerm += l.value
                    if withGradient { sideDerivatives[t * objectiveCount + m] = l.derivative }
                }
                logTerms[t] = logTerm
                if mask.nonzeroBitCount & 1 == 1 { positive.append(logTerm) } else { negative.append(logTerm) }
                t += 1
            }
        }
        let value = logDifferenceExp(logSumExp(positive), logSumExp(negative))
        var gradient = [[Double]](repeating: [Double](repeating: 0, count: objectiveCount), count: q)
        guard withGradient, value.isFinite else { return (value, withGradient ? gradient : []) }
        t = 0
        for cell in cells {
            for mask in 1..<subsetCount {
                let sign = mask.nonzeroBitCount & 1 == 1 ? 1.0 : -1.0
                let weight = sign * exp(logTerms[t] - value)
                for m in 0..<objectiveCount where minima[mask * objectiveCount + m] < cell.upper[m] {
                    gradient[argmin[mask * objectiveCount + m]][m] += weight * sideDerivatives[t * objectiveCount + m]
                }
                t += 1
            }
        }
        return (value, gradient)
    }
}
