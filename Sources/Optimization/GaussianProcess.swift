import Foundation

// Surrogate models of the proposal step (paper Appendix B), and what the acquisitions build on.
//
// Fitting, per iteration:
//
//     let models = try IndependentGPs.fit(x: X, y: Y, lowerBounds: lo, upperBounds: hi,
//                                         seed: seed, warmStarts: previous?.hyperparameters)
//
// X is n × d (raw inputs in [lo, hi]), Y is n × M (all objectives as observed; standardization is
// internal). Each model is a `GaussianProcess`: constant mean, Matern-5/2 ARD kernel with output
// scale, homoscedastic noise ≥ `GPFitOptions.noiseFloor`, fitted by MAP with multi-start
// L-BFGS-B (priors: `GPPriors.classic` unless chosen otherwise).
//
// Reparameterized MC acquisition (qEHVI, qNEHVI), per objective m and candidate batch Xc (q × d):
//
//     let post = try models.models[m].posterior(at: Xc)        // mean (q), covariance (q × q), raw units
//     let chol = try post.covarianceCholesky()                  // jittered when needed (chol.jitter)
//     // samples: y⁽ˢ⁾ = post.mean + chol.lower · ε⁽ˢ⁾ with fixed QMC normal ε⁽ˢ⁾
//     // backward, given ∂A/∂y⁽ˢ⁾ from the hypervolume improvement:
//     //   ∂A/∂mean = Σₛ ∂A/∂y⁽ˢ⁾,   ∂A/∂L = Σₛ (∂A/∂y⁽ˢ⁾) ε⁽ˢ⁾ᵀ  (lower triangle)
//     let sigmaBar = try chol.backward(lowerGradient: lBar)
//     let xBar = try post.pullback(meanGradient: meanBar, covarianceGradient: sigmaBar)   // q × d
//     // sum xBar over objectives; maximize A with LBFGSB.minimize on −A and −xBar.
//
// qNEHVI samples jointly at [observed X ; Xc]: call `posterior(at:)` on the stacked rows (the
// covariance is then nearly singular at the observed points; `covarianceCholesky()` adds jitter)
// and ignore the rows of xBar that belong to the observed points. Cost per call O(n²(n + q)); a
// cached observed block (BoTorch's `cache_root`) would need a posterior cross-covariance API,
// which does not exist yet — `CholeskyFactor.appending(crossBlock:cornerBlock:)` is the factor
// half of it.

/// Errors from building or fitting a Gaussian process; each names the field and what was expected.
public enum GPError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidInput(String)
    /// No start of the hyper-parameter fit reached a finite objective.
    case fitFailed(String)

    public var description: String {
        switch self {
        case .invalidInput(let what): return "GP input: \(what)"
        case .fitFailed(let what): return "GP fit failed: \(what)"
        }
    }
}

/// Hyper-parameters of one GP, in the model's internal units: length-scales on the unit cube
/// (inputs normalized by the bounds), output scale σ_f², noise σ_n² and constant mean μ on the
/// standardized outputs.
public struct GPHyperparameters: Sendable, Equatable {
    /// ARD length-scales ℓ₁…ℓ_d (unit-cube units).
    public var lengthscales: [Double]
    /// Signal variance σ_f².
    public var outputscale: Double
    /// Observation-noise variance σ_n².
    public var noise: Double
    /// Constant mean μ.
    public var mean: Double

    public init(lengthscales: [Double], outputscale: Double, noise: Double, mean: Double) {
        self.lengthscales = lengthscales
        self.outputscale = outputscale
        self.noise = noise
        self.mean = mean
    }

    /// The optimization vector `[log ℓ₁, …, log ℓ_d, log σ_f², log σ_n², μ]` (length d + 3).
    public var vector: [Double] {
        lengthscales.map { log($0) } + [log(outputscale), log(noise), mean]
    }

    /// Inverse of `vector`; throws when the vector has fewer than 3 entries.
    public init(vector v: [Double]) throws {
        guard v.count >= 3 else {
            throw GPError.invalidInput("a hyper-parameter vector needs d + 3 ≥ 3 entries, got \(v.count)")
        }
        let d = v.count - 3
        lengthscales = v[0..<d].map { exp($0) }
        outputscale = exp(v[d])
        noise = exp(v[d + 1])
        mean = v[d + 2]
    }
}

// MARK: - Matern-5/2 pieces

let sqrt5 = 5.0.squareRoot()

/// k(r)/σ_f² = (1 + √5 r + 5/3 r²) e^{−√5 r}.
@inline(__always) func matern52(_ r: Double) -> Double {
    let s = sqrt5 * r
    return (1 + s + s * s / 3) * exp(-s)
}

/// −(dk/dr)/(σ_f² r) = 5/3 (1 + √5 r) e^{−√5 r}: finite at r = 0. Then
/// ∂k/∂xₖ = −σ_f² · this · (xₖ − x'ₖ)/ℓₖ² and ∂k/∂log ℓₖ = σ_f² · this · (xₖ − x'ₖ)²/ℓₖ².
@inline(__always) func matern52RadialFactor(_ r: Double) -> Double {
    let s = sqrt5 * r
    return (5.0 / 3.0) * (1 + s) * exp(-s)
}

/// (k(r)/σ_f², −(dk/dr)/(σ_f² r)) with one exponential.
@inline(__always) func matern52WithRadialFactor(_ r: Double) -> (value: Double, radial: Double) {
    let s = sqrt5 * r
    let e = exp(-s)
    return ((1 + s + s * s / 3) * e, (5.0 / 3.0) * (1 + s) * e)
}

/// Scaled distance r = ‖(a − b)/ℓ‖ for rows a, b of length d; `invLengthscaleSquared` = 1/ℓ².
@inline(__always) func scaledDistance(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
                                      _ invL2: UnsafePointer<Double>, _ d: Int) -> Double {
    var s = 0.0
    for k in 0..<d {
        let t = a[k] - b[k]
        s += t * t * invL2[k]
    }
    return s.squareRoot()
}

// MARK: - Training data

/// Observations of one objective, normalized for the GP: inputs mapped to the unit cube by
/// `(x − lower)/(upper − lower)`, outputs standardized by their mean and (n−1) standard deviation
/// (1 when n = 1 or when all outputs are equal).
public struct GPTrainingSet: Sendable {
    /// Number of observations n.
    public let count: Int
    /// Input dimension d.
    public let dimension: Int
    /// Normalized inputs, `n × d`.
    public let inputs: Matrix
    /// Standardized outputs.
    public let targets: [Double]
    /// Mean of the raw outputs.
    public let outputMean: Double
    /// Standard deviation used to standardize the raw outputs.
    public let outputStandardDeviation: Double
    /// Input bounds of the raw inputs.
    public let lowerBounds: [Double]
    public let upperBounds: [Double]

    /// - Parameters:
    ///   - x: raw inputs, one row per observation (`n × d`, n ≥ 1).
    ///   - y: raw outputs (n values).
    ///   - lowerBounds, upperBounds: the search box (d values each, lower < upper).
    /// - Throws: `GPError.invalidInput` naming the offending field.
    public init(x: Matrix, y: [Double], lowerBounds: [Double], upperBounds: [Double]) throws {
        let n = x.rows, d = x.columns
        guard n >= 1 else { throw GPError.invalidInput("x has no rows; at least one observation is needed") }
        guard y.count == n else { throw GPError.invalidInput("y has \(y.count) values, x has \(n) rows") }
        guard lowerBounds.count == d, upperBounds.count == d else {
            throw GPError.invalidInput("bounds have \(lowerBounds.count)/\(upperBounds.count) entries, x has \(d) columns")
        }
        for k in 0..<d where !(lowerBounds[k].isFinite && upperBounds[k].isFinite && lowerBounds[k] < upperBounds[k]) {
            throw GPError.invalidInput("bounds[\(k)] must be finite with lower < upper, got [\(lowerBounds[k]), \(upperBounds[k])]")
        }
        if let i = x.elements.firstIndex(where: { !$0.isFinite }) {
            throw GPError.invalidInput("x[\(i / max(d, 1))][\(i % max(d, 1))] is not finite")
        }
        if let i = y.firstIndex(where: { !$0.isFinite }) {
            throw GPError.invalidInput("y[\(i)] is not finite")
        }
        count = n
        dimension = d
        self.lowerBounds = lowerBounds
        self.upperBounds = upperBounds
        inputs = normalize(x, lower: lowerBounds, upper: upperBounds)
        let mean = y.reduce(0, +) / Double(n)
        var variance = 0.0
        for v in y { variance += (v - mean) * (v - mean) }
        var sd = n > 1 ? (variance / Double(n - 1)).squareRoot() : 1
        if !(sd > 1e-12 * max(1, abs(mean))) { sd = 1 }
        outputMean = mean
        outputStandardDeviation = sd
        targets = y.map { ($0 - mean) / sd }
    }

    /// Log marginal likelihood (paper Eq. 17) of the standardized targets and its gradient with
    /// respect to `h.vector`: ∂/∂θ = ½ tr((ααᵀ − K⁻¹) ∂K/∂θ), ∂/∂μ = Σα, α = K⁻¹(y − μ).
    /// - Throws: `GPError.invalidInput` for a wrong number of length-scales, or
    ///   `LinearAlgebraError.notPositiveDefinite` when K cannot be factored.
    public func logMarginalLikelihood(_ h: GPHyperparameters, jitter: JitterPolicy = .standard) throws
        -> (value: Double, gradient: [Double]) {
        try logMarginalLikelihood(h, jitter: jitter, workspace: GPLikelihoodWorkspace(count: count))
    }

    /// As `logMarginalLikelihood(_:jitter:)`, computing in `workspace` (reused across the
    /// evaluations of one fit, so that they allocate no n × n buffers).
    func logMarginalLikelihood(_ h: GPHyperparameters, jitter: JitterPolicy, workspace ws: GPLikelihoodWorkspace) throws
        -> (value: Double, gradient: [Double]) {
        let n = count, d = dimension
        guard h.lengthscales.count == d else {
            throw GPError.invalidInput("\(h.lengthscales.count) length-scales for \(d) input dimensions")
        }
        precondition(ws.count == n, "workspace size")
        let invL2 = h.lengthscales.map { 1 / ($0 * $0) }
        let sf2 = h.outputscale
        let k = ws.kernel, l = ws.factor, alpha = ws.alpha
        // K in the lower triangle, the radial factors −(dk/dr)/(σ²r) in the strict upper triangle.
        inputs.elements.withUnsafeBufferPointer { xp in
            invL2.withUnsafeBufferPointer { lp in
                for i in 0..<n {
                    let xi = xp.baseAddress! + i * d
                    for j in 0..<i {
                        let r = scaledDistance(xi, xp.baseAddress! + j * d, lp.baseAddress!, d)
                        let (value, factor) = matern52WithRadialFactor(r)
                        k[i * n + j] = sf2 * value
                        k[j * n + i] = factor
                    }
                    k[i * n + i] = sf2 + h.noise
                }
            }
        }
        var factored = false, lastShift = 0.0
        for shift in jitter.shifts(meanDiagonal: sf2 + h.noise) {
            lastShift = shift
            if DenseKernels.cholesky(of: k, shift: shift, into: l, n) { factored = true; break }
        }
        guard factored else { throw LinearAlgebraError.notPositiveDefinite(dimension: n, largestJitter: lastShift) }
        var logDet = 0.0
        for i in 0..<n {
            alpha[i] = targets[i] - h.mean
            logDet += 2 * log(l[i * n + i])
        }
        var quadratic = 0.0
        DenseKernels.forwardSolve(l, alpha, n)
        for i in 0..<n { quadratic += alpha[i] * alpha[i] }
        DenseKernels.backSolve(l, alpha, n)
        let value = -0.5 * quadratic - 0.5 * logDet - 0.5 * Double(n) * log(2 * Double.pi)

        // W = ααᵀ − K⁻¹, used through its lower triangle.
        DenseKernels.lowerInverse(l, into: ws.scratch, n)
        DenseKernels.lowerGram(ws.scratch, into: ws.inverse, n)
        let kinv = ws.inverse
        var gradient = [Double](repeating: 0, count: d + 3)
        var gOutput = 0.0, traceW = 0.0, sumAlpha = 0.0
        var gl = [Double](repeating: 0, count: d)
        inputs.elements.withUnsafeBufferPointer { xp in
            gl.withUnsafeMutableBufferPointer { gp in
                for i in 0..<n {
                    let xi = xp.baseAddress! + i * d
                    let wii = alpha[i] * alpha[i] - kinv[i * n + i]
                    traceW += wii
                    gOutput += 0.5 * wii * sf2
                    sumAlpha += alpha[i]
                    for j in 0..<i {
                        let w = alpha[i] * alpha[j] - kinv[i * n + j]  // counted twice: (i, j) and (j, i)
                        gOutput += w * k[i * n + j]
                        let a = w * sf2 * k[j * n + i]
                        let xj = xp.baseAddress! + j * d
                        for c in 0..<d {
                            let t = xi[c] - xj[c]
                            gp[c] += a * t * t
                        }
                    }
                }
            }
        }
        for c in 0..<d { gradient[c] = gl[c] * invL2[c] }  // ½ · 2 (symmetry) · Σ w·σ²·R·Δ²/ℓ²
        gradient[d] = gOutput
        gradient[d + 1] = 0.5 * h.noise * traceW
        gradient[d + 2] = sumAlpha
        return (value, gradient)
    }
}

/// Buffers for repeated likelihood evaluations on one training set (not shared across threads).
final class GPLikelihoodWorkspace {
    let count: Int
    private let storage: UnsafeMutablePointer<Double>
    /// Kernel matrix (lower) and radial factors (strict upper), n × n.
    var kernel: UnsafeMutablePointer<Double> { storage }
    /// Cholesky factor, n × n.
    var factor: UnsafeMutablePointer<Double> { storage + count * count }
    /// L⁻¹, n × n.
    var scratch: UnsafeMutablePointer<Double> { storage + 2 * count * count }
    /// K⁻¹, n × n.
    var inverse: UnsafeMutablePointer<Double> { storage + 3 * count * count }
    /// α, n.
    var alpha: UnsafeMutablePointer<Double> { storage + 4 * count * count }

    init(count n: Int) {
        count = n
        let size = max(1, 4 * n * n + n)
        storage = .allocate(capacity: size)
        storage.initialize(repeating: 0, count: size)
    }

    deinit { storage.deallocate() }
}

/// (x − lower)/(upper − lower) row by row.
func normalize(_ x: Matrix, lower: [Double], upper: [Double]) -> Matrix {
    var out = x
    let d = x.columns
    for i in 0..<x.rows {
        for k in 0..<d { out.elements[i * d + k] = (x.elements[i * d + k] - lower[k]) / (upper[k] - lower[k]) }
    }
    return out
}

// MARK: - The conditioned model

/// A Gaussian process with constant mean and a Matern-5/2 ARD kernel with output scale (paper
/// Appendix B), conditioned on its training set for fixed hyper-parameters.
///
/// All public inputs and outputs are in raw units: inputs in the box given by the training set's
/// bounds, outputs on the scale of the observed y. Posteriors are of the latent function f (no
/// observation noise).
public struct GaussianProcess: Sendable {
    public let trainingSet: GPTrainingSet
    public let hyperparameters: GPHyperparameters
    /// Cholesky factor of K + σ_n² I on the training inputs.
    public let cholesky: CholeskyFactor
    /// K⁻¹ (y − μ) on the standardized targets.
    let alpha: [Double]
    let inverseLengthscaleSquared: [Double]
    /// The log marginal likelihood (standardized targets) at `hyperparameters`.
    public let logMarginalLikelihood: Double

    /// Conditions on `trainingSet` with the given hyper-parameters (no fitting).
    /// - Throws: `GPError.invalidInput` when the hyper-parameters do not fit the data
    ///   (length-scale count, non-positive values), or a `LinearAlgebraError` when K cannot be factored.
    public init(trainingSet: GPTrainingSet, hyperparameters h: GPHyperparameters, jitter: JitterPolicy = .standard) throws {
        guard h.lengthscales.count == trainingSet.dimension else {
            throw GPError.invalidInput("\(h.lengthscales.count) length-scales for \(trainingSet.dimension) input dimensions")
        }
        guard h.lengthscales.allSatisfy({ $0 > 0 && $0.isFinite }), h.outputscale > 0, h.outputscale.isFinite,
              h.noise > 0, h.noise.isFinite, h.mean.isFinite else {
            throw GPError.invalidInput("hyper-parameters must be positive and finite (mean finite), got \(h)")
        }
        let n = trainingSet.count, d = trainingSet.dimension
        let invL2 = h.lengthscales.map { 1 / ($0 * $0) }
        var k = Matrix(rows: n, columns: n)
        trainingSet.inputs.elements.withUnsafeBufferPointer { xp in
            invL2.withUnsafeBufferPointer { lp in
                for i in 0..<n {
                    for j in 0..<i {
                        let r = scaledDistance(xp.baseAddress! + i * d, xp.baseAddress! + j * d, lp.baseAddress!, d)
                        k[i, j] = h.outputscale * matern52(r)
                    }
                    k[i, i] = h.outputscale + h.noise
                }
            }
        }
        let chol = try CholeskyFactor(k, policy: jitter)
        let residual = trainingSet.targets.map { $0 - h.mean }
        let alpha = try chol.solve(residual)
        self.trainingSet = trainingSet
        self.hyperparameters = h
        self.cholesky = chol
        self.alpha = alpha
        self.inverseLengthscaleSquared = invL2
        self.logMarginalLikelihood = -0.5 * dotArrays(residual, alpha) - 0.5 * chol.logDeterminant
            - 0.5 * Double(n) * log(2 * Double.pi)
    }

    /// Input dimension d.
    public var dimension: Int { trainingSet.dimension }

    /// The joint posterior of f at the q rows of `x` (raw units, `q × d`).
    /// Cost O(n·q·d + n²·q + q²·d).
    /// - Throws: `GPError.invalidInput` when `x` has the wrong number of columns or non-finite entries.
    public func posterior(at x: Matrix) throws -> JointPosterior {
        guard x.columns == dimension else {
            throw GPError.invalidInput("posterior points have \(x.columns) columns, the model has \(dimension) inputs")
        }
        if let i = x.elements.firstIndex(where: { !$0.isFinite }) {
            throw GPError.invalidInput("posterior point entry \(i) is not finite")
        }
        let n = trainingSet.count, d = dimension, q = x.rows
        let xn = normalize(x, lower: trainingSet.lowerBounds, upper: trainingSet.upperBounds)
        let sf2 = hyperparameters.outputscale
        var cross = Matrix(rows: n, columns: q)  // K(X_train, x)
        var prior = Matrix(rows: q, columns: q)
        trainingSet.inputs.elements.withUnsafeBufferPointer { tp in
            xn.elements.withUnsafeBufferPointer { xp in
                inverseLengthscaleSquared.withUnsafeBufferPointer { lp in
                    for i in 0..<n {
                        for a in 0..<q {
                            let r = scaledDistance(tp.baseAddress! + i * d, xp.baseAddress! + a * d, lp.baseAddress!, d)
                            cross[i, a] = sf2 * matern52(r)
                        }
                    }
                    for a in 0..<q {
                        prior[a, a] = sf2
                        for b in 0..<a {
                            let r = scaledDistance(xp.baseAddress! + a * d, xp.baseAddress! + b * d, lp.baseAddress!, d)
                            let v = sf2 * matern52(r)
                            prior[a, b] = v
                            prior[b, a] = v
                        }
                    }
                }
            }
        }
        let v = try cholesky.solveLower(cross)  // L⁻¹ K(X, x), n × q
        let sd = trainingSet.outputStandardDeviation
        var mean = [Double](repeating: 0, count: q)
        for a in 0..<q {
            var s = 0.0
            for i in 0..<n { s += cross[i, a] * alpha[i] }
            mean[a] = trainingSet.outputMean + sd * (hyperparameters.mean + s)
        }
        var cov = prior
        let sd2 = sd * sd
        for a in 0..<q {
            for b in 0...a {
                var s = 0.0
                for i in 0..<n { s += v[i, a] * v[i, b] }
                let c = sd2 * (prior[a, b] - s)
                cov[a, b] = c
                cov[b, a] = c
            }
        }
        return JointPosterior(model: self, normalizedPoints: xn, whitenedCross: v, mean: mean, covariance: cov)
    }

    /// Marginal posterior means and variances of f at the rows of `x` (raw units), without the
    /// q × q covariance: O(n·q·d + n²·q), for scoring many points at once.
    public func marginals(at x: Matrix) throws -> (mean: [Double], variance: [Double]) {
        guard x.columns == dimension else {
            throw GPError.invalidInput("points have \(x.columns) columns, the model has \(dimension) inputs")
        }
        if let i = x.elements.firstIndex(where: { !$0.isFinite }) {
            throw GPError.invalidInput("point entry \(i) is not finite")
        }
        let n = trainingSet.count, d = dimension, q = x.rows
        let xn = normalize(x, lower: trainingSet.lowerBounds, upper: trainingSet.upperBounds)
        let sf2 = hyperparameters.outputscale
        var cross = Matrix(rows: n, columns: q)
        trainingSet.inputs.elements.withUnsafeBufferPointer { tp in
            xn.elements.withUnsafeBufferPointer { xp in
                inverseLengthscaleSquared.withUnsafeBufferPointer { lp in
                    for i in 0..<n {
                        for a in 0..<q {
                            cross[i, a] = sf2 * matern52(scaledDistance(tp.baseAddress! + i * d, xp.baseAddress! + a * d, lp.baseAddress!, d))
                        }
                    }
                }
            }
        }
        let v = try cholesky.solveLower(cross)
        let sd = trainingSet.outputStandardDeviation
        var mean = [Double](repeating: 0, count: q), variance = [Double](repeating: 0, count: q)
        for i in 0..<n {
            for a in 0..<q {
                mean[a] += cross[i, a] * alpha[i]
                variance[a] += v[i, a] * v[i, a]
            }
        }
        for a in 0..<q {
            mean[a] = trainingSet.outputMean + sd * (hyperparameters.mean + mean[a])
            variance[a] = sd * sd * max(sf2 - variance[a], 0)
        }
        return (mean, variance)
    }
}

/// The joint Gaussian posterior of f at q points, with the reverse-mode derivative the
/// reparameterized Monte-Carlo acquisitions need.
///
/// Typical use (qEHVI): `let p = try gp.posterior(at: X)`, `let c = try p.covarianceCholesky()`,
/// samples `y = p.mean + c.lower · ε`; backward: ∂/∂L from the samples →
/// `c.backward(lowerGradient:)` gives ∂/∂Σ, then `p.pullback(meanGradient:covarianceGradient:)`
/// gives ∂/∂X.
public struct JointPosterior: Sendable {
    let model: GaussianProcess
    let normalizedPoints: Matrix
    let whitenedCross: Matrix
    /// Posterior means (raw output units), q values.
    public let mean: [Double]
    /// Posterior covariance (raw output units squared), `q × q`, symmetric.
    public let covariance: Matrix

    /// Number of points q.
    public var count: Int { mean.count }

    /// Cholesky factor of `covariance`, with diagonal jitter per `policy` when it is numerically
    /// singular (duplicate points, points at noise-free observations).
    public func covarianceCholesky(policy: JitterPolicy = .standard) throws -> CholeskyFactor {
        try CholeskyFactor(covariance, policy: policy)
    }

    /// Vector–Jacobian product: given ∂L/∂mean (q values) and ∂L/∂covariance (`q × q`, entries
    /// treated as independent — a symmetric gradient such as `CholeskyFactor.backward`'s is fine),
    /// returns ∂L/∂X (`q × d`, raw input units) for the points this posterior was computed at.
    /// Cost O(n²·q + n·q·d + q²·d).
    public func pullback(meanGradient: [Double], covarianceGradient: Matrix) throws -> Matrix {
        let q = count
        guard meanGradient.count == q, covarianceGradient.rows == q, covarianceGradient.columns == q else {
            throw GPError.invalidInput(
                "pullback needs \(q) mean gradients and a \(q)×\(q) covariance gradient, got \(meanGradient.count) and \(covarianceGradient.rows)×\(covarianceGradient.columns)")
        }
        let ts = model.trainingSet
        let n = ts.count, d = ts.dimension
        let sd = ts.outputStandardDeviation
        let sf2 = model.hyperparameters.outputscale
        // Gradients with respect to the standardized mean and covariance; G = Ḡ + Ḡᵀ.
        var g = Matrix(rows: q, columns: q)
        for a in 0..<q { for b in 0..<q { g[a, b] = sd * sd * (covarianceGradient[a, b] + covarianceGradient[b, a]) } }
        let aMat = try model.cholesky.solveUpper(whitenedCross)  // K⁻¹ K(X, x), n × q
        var out = Matrix(rows: q, columns: d)
        var u = [Double](repeating: 0, count: n)
        let invL2 = model.inverseLengthscaleSquared
        ts.inputs.elements.withUnsafeBufferPointer { tp in
            normalizedPoints.elements.withUnsafeBufferPointer { xp in
                invL2.withUnsafeBufferPointer { lp in
                    for a in 0..<q {
                        // ∂L/∂k_a, k_a = K(X_train, x_a): ḡ_a·α − Σ_b G_ab K⁻¹ k_b.
                        let gm = sd * meanGradient[a]
                        for i in 0..<n {
                            var s = gm * model.alpha[i]
                            for b in 0..<q { s -= g[a, b] * aMat[i, b] }
                            u[i] = s
                        }
                        let xa = xp.baseAddress! + a * d
                        var grad = [Double](repeating: 0, count: d)
                        // Through the cross-covariances with the training points.
                        for i in 0..<n where u[i] != 0 {
                            let xi = tp.baseAddress! + i * d
                            let r = scaledDistance(xa, xi, lp.baseAddress!, d)
                            let f = -u[i] * sf2 * matern52RadialFactor(r)
                            for c in 0..<d { grad[c] += f * (xa[c] - xi[c]) * lp[c] }
                        }
                        // Through the prior covariance among the q points.
                        for b in 0..<q where b != a && g[a, b] != 0 {
                            let xb = xp.baseAddress! + b * d
                            let r = scaledDistance(xa, xb, lp.baseAddress!, d)
                            let f = -g[a, b] * sf2 * matern52RadialFactor(r)
                            for c in 0..<d { grad[c] += f * (xa[c] - xb[c]) * lp[c] }
                        }
                        for c in 0..<d { out[a, c] = grad[c] / (ts.upperBounds[c] - ts.lowerBounds[c]) }
                    }
                }
            }
        }
        return out
    }
}
