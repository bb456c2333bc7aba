import Foundation

/// Errors of the acquisition functions and their optimizer.
public enum AcquisitionError: Error, Equatable, CustomStringConvertible, Sendable {
    /// An argument does not fit (wrong lengths, counts, values); the text says which and what was expected.
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return "acquisition: \(s)"
        }
    }
}

/// A batch acquisition function over the unit cube: the value of a fixed number of candidate points and
/// its gradient with respect to their coordinates (what `AcquisitionOptimizer` maximizes).
public protocol BatchAcquisitionFunction: Sendable {
    /// Number of candidate points evaluated jointly.
    var candidateCount: Int { get }
    /// Input dimension of a candidate.
    var dimension: Int { get }
    /// The acquisition value of `candidates` (`candidateCount` points of `dimension` coordinates).
    func value(_ candidates: [[Double]]) throws -> Double
    /// The value and ∂value/∂candidates[i][c].
    func valueAndGradient(_ candidates: [[Double]]) throws -> (value: Double, gradient: [[Double]])
}

/// Monte-Carlo expected hypervolume improvement of q candidates, in its two variants (all objectives
/// maximized, one independent GP per objective):
///
/// - **qEHVI** (Daulton, Balandat & Bakshy 2020): the improvement over the observed Pareto front, cells of
///   the non-dominated region fixed.
/// - **qNEHVI** (Daulton, Balandat & Bakshy 2021): the front itself is uncertain (noisy observations), so
///   for every MC sample the front is that of the sampled values f at the (pruned) observed inputs, and the
///   candidates are sampled jointly with them; the cells are cached per sample.
///
/// Both take *pending* points (dispatched, not yet evaluated). They form, with the qNEHVI baseline, the
/// *conditioning block* B: sampled jointly with the candidates C, and per sample s the region the
/// candidates may improve is the non-dominated region of F ∪ f_B⁽ˢ⁾ (F = observed front for qEHVI, empty
/// for qNEHVI). For qEHVI that makes the value E[HVI(f_P ∪ f_C)] − E[HVI(f_P)] over F, the pending points'
/// own (constant) expected improvement removed.
///
/// Sampling (reparameterization, fixed quasi-random base samples ε from `SobolSequence.normalSamples`,
/// identical at every evaluation so that the MC estimate is a smooth deterministic function): per
/// objective, the joint posterior of [B; C] has the block Cholesky factor [[L_BB, 0], [L_CB, L_CC]];
/// f_B = μ_B + L_BB ε_B (fixed, computed once), f_C = μ_C + L_CB ε_B + L_CC ε_C. The gradient runs
/// HVI → samples → (μ_C, L_CB, L_CC) → (Σ_CB, Σ_CC) by the Cholesky backward → inputs by
/// `JointPosterior.pullback`.
///
/// **Log variants** (qLogEHVI / qLogNEHVI, after Ament et al. 2023): with `logTemperature` τ set, the value is
/// log E[smoothed HVI] instead of E[HVI], each sample's improvement replaced by
/// `BoxDecomposition.logSmoothedHypervolumeImprovement` (fat-softplus sides, τ in units of each objective's
/// training standard deviation, see `objectiveScales`) and the mean over samples taken by log-mean-exp. The
/// exact HVI is exactly 0 (and flat) wherever no sample improves, which for a confident model is almost all
/// of the cube; the log variant stays finite there and its gradient points towards improvement. Same argmax
/// structure as τ → 0: log of the exact qEHVI (in scaled units) wherever that is positive.
public struct HypervolumeAcquisition: BatchAcquisitionFunction {
    /// Which variant.
    public enum Kind: String, Sendable, CaseIterable {
        case qehvi, qnehvi
    }

    public let kind: Kind
    public let models: IndependentGPs
    public let referencePoint: [Double]
    public let candidateCount: Int
    /// The conditioning block B (qNEHVI: pruned observed inputs, then pending; qEHVI: pending).
    public let conditioningPoints: [[Double]]
    /// Number of MC samples.
    public let sampleCount: Int
    /// nil: the exact MC qEHVI/qNEHVI; τ: the log variant (see the type's documentation).
    public let logTemperature: Double?
    /// Per objective, the unit of the log variant's objective space (the model's training-output standard
    /// deviation): its value is log E[HVI] of y_m / scale_m. All 1 for the exact variant.
    public let objectiveScales: [Double]

    let objectiveCount: Int
    /// Base samples: per sample s, per objective m, the `conditioningPoints.count + candidateCount` normals.
    let normals: [[[Double]]]
    /// Per objective: L_BB (nil when B is empty).
    let conditioningFactors: [CholeskyFactor?]
    /// Non-dominated cells per sample (one shared entry when B is empty), in units of `objectiveScales`:
    /// the log variant's; empty for exact qEHVI.
    let cellsPerSample: [[HyperRectangle]]
    /// The same cells flattened: exact qEHVI's inner loop; empty for the log variant.
    let flatCellsPerSample: [FlatCells]

    public var dimension: Int { models.models[0].dimension }

    static let jitter = JitterPolicy(initialRelative: 1e-8, growth: 10, maxRetries: 6)

    /// Default τ of the log variants (BoTorch's `TAU_RELU`), in units of `objectiveScales`.
    public static let defaultLogTemperature = 1e-6

    /// qEHVI over the observed outcomes `observedY` (n × M, all maximized).
    /// - Parameters:
    ///   - pending: inputs already dispatched but not evaluated.
    ///   - candidateCount: q, the number of points evaluated jointly (1 for sequential-greedy use).
    ///   - samples: MC samples (128 is BoTorch's default).
    ///   - seed: seeds the base samples.
    ///   - logTemperature: nil for qEHVI, τ > 0 for qLogEHVI.
    public static func qEHVI(models: IndependentGPs, observedY: [[Double]], referencePoint: [Double],
                             pending: [[Double]] = [], candidateCount: Int = 1, samples: Int = 128,
                             seed: UInt64 = 0, logTemperature: Double? = nil) throws -> HypervolumeAcquisition {
        try HypervolumeAcquisition(kind: .qehvi, models: models, fixedFront: observedY, conditioningPoints: pending,
                                   referencePoint: referencePoint, candidateCount: candidateCount, samples: samples,
                                   seed: seed, logTemperature: logTemperature)
    }

    /// qNEHVI over the observed inputs `observedX` (their outcomes enter only through the models).
    /// - Parameters:
    ///   - pruneBaseline: keep only observed inputs that are Pareto-optimal in at least one of `samples`
    ///     joint posterior samples (as BoTorch's `prune_baseline`); the others cannot change the sampled fronts
    ///     much and cost time.
    public static func qNEHVI(models: IndependentGPs, observedX: [[Double]], referencePoint: [Double],
                              pending: [[Double]] = [], candidateCount: Int = 1, samples: Int = 128,
                              seed: UInt64 = 0, pruneBaseline: Bool = true,
                              logTemperature: Double? = nil) throws -> HypervolumeAcquisition {
        var baseline = observedX
        if pruneBaseline && observedX.count > 1 {
            baseline = try prune(observedX, models: models, samples: samples, seed: seed ^ 0x5EED_BA5E)
        }
        return try HypervolumeAcquisition(kind: .qnehvi, models: models, fixedFront: [],
                                          conditioningPoints: baseline + pending, referencePoint: referencePoint,
                                          candidateCount: candidateCount, samples: samples, seed: seed,
                                          logTemperature: logTemperature)
    }

    init(kind: Kind, models: IndependentGPs, fixedFront: [[Double]], conditioningPoints: [[Double]],
         referencePoint: [Double], candidateCount: Int, samples: Int, seed: UInt64, logTemperature: Double?) throws {
        let m = models.objectiveCount, d = models.models[0].dimension
        if let tau = logTemperature, !(tau > 0 && tau.isFinite) {
            throw AcquisitionError.invalidInput("logTemperature must be a finite value > 0, got \(tau)")
        }
        guard referencePoint.count == m, referencePoint.allSatisfy(\.isFinite) else {
            throw AcquisitionError.invalidInput("referencePoint needs \(m) finite values, got \(referencePoint)")
        }
        guard candidateCount >= 1, candidateCount <= BoxDecomposition.maximumNewPoints else {
            throw AcquisitionError.invalidInput(
                "candidateCount must be in 1…\(BoxDecomposition.maximumNewPoints); got \(candidateCount)")
        }
        guard samples >= 1 else { throw AcquisitionError.invalidInput("samples must be ≥ 1, got \(samples)") }
        for (i, y) in fixedFront.enumerated() where y.count != m || !y.allSatisfy(\.isFinite) {
            throw AcquisitionError.invalidInput("observed outcome \(i) must have \(m) finite values, got \(y)")
        }
        for (i, x) in conditioningPoints.enumerated() where x.count != d || !x.allSatisfy(\.isFinite) {
            throw AcquisitionError.invalidInput("\(kind == .qehvi ? "pending" : "baseline/pending") point \(i) must have \(d) finite coordinates")
        }
        let nb = conditioningPoints.count
        let width = m * (nb + candidateCount)
        guard width <= SobolSequence.maximumDimension else {
            throw AcquisitionError.invalidInput(
                "\(nb) conditioning points + \(candidateCount) candidates × \(m) objectives exceed the \(SobolSequence.maximumDimension) Sobol dimensions")
        }
        let flat = try SobolSequence.normalSamples(count: samples, dimension: width, seed: seed)
        let normals = flat.map { row in (0..<m).map { j in Array(row[(j * (nb + candidateCount))..<((j + 1) * (nb + candidateCount))]) } }

        var factors: [CholeskyFactor?] = Array(repeating: nil, count: m)
        var cellsPerSample: [[HyperRectangle]]
        if nb == 0 {
            cellsPerSample = [try BoxDecomposition.nonDominatedCells(front: fixedFront, referencePoint: referencePoint)]
        } else {
            let xb = try Matrix(conditioningPoints)
            var sampled = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: m), count: nb),
                                       count: samples)
            for j in 0..<m {
                let post = try models.models[j].posterior(at: xb)
                let factor = try Self.factor(post.covariance, model: models.models[j])
                factors[j] = factor
                for s in 0..<samples {
                    let eps = normals[s][j]
                    for a in 0..<nb {
                        var v = post.mean[a]
                        for b in 0...a { v += factor.lower[a, b] * eps[b] }
                        sampled[s][a][j] = v
                    }
                }
            }
            cellsPerSample = try sampled.map { fb in
                try BoxDecomposition.nonDominatedCells(front: fixedFront + fb, referencePoint: referencePoint)
            }
        }
        self.kind = kind
        self.models = models
        self.referencePoint = referencePoint
        self.candidateCount = candidateCount
        self.conditioningPoints = conditioningPoints
        self.sampleCount = samples
        self.objectiveCount = m
        self.normals = normals
        self.conditioningFactors = factors
        let scales = logTemperature == nil ? [Double](repeating: 1, count: m)
            : models.models.map { $0.trainingSet.outputStandardDeviation }.map { $0 > 0 && $0.isFinite ? $0 : 1 }
        self.logTemperature = logTemperature
        self.objectiveScales = scales
        self.cellsPerSample = logTemperature == nil ? [] : cellsPerSample.map { cells in
            cells.map { HyperRectangle(lower: zip($0.lower, scales).map { $0 / $1 }, upper: zip($0.upper, scales).map { $0 / $1 }) }
        }
        self.flatCellsPerSample = logTemperature == nil ? cellsPerSample.map(FlatCells.init) : []
    }

    /// Cholesky factor of a posterior covariance block, its diagonal first floored at 10⁻¹⁰ of the model's
    /// prior variance: a point at a pending or noise-free observed point has (numerically) zero conditional
    /// variance, where relative jitter alone cannot help.
    static func factor(_ covariance: Matrix, model: GaussianProcess) throws -> CholeskyFactor {
        let sd = model.trainingSet.outputStandardDeviation
        let floor = 1e-10 * sd * sd * model.hyperparameters.outputscale
        var c = covariance
        for a in 0..<c.rows where c[a, a] < floor { c[a, a] = floor }
        return try CholeskyFactor(c, policy: jitter)
    }

    public func value(_ candidates: [[Double]]) throws -> Double {
        try evaluate(candidates, withGradient: false).value
    }

    public func valueAndGradient(_ candidates: [[Double]]) throws -> (value: Double, gradient: [[Double]]) {
        try evaluate(candidates, withGradient: true)
    }

    /// Per objective, what sampling the candidates needs: μ_C, Vᵀ = L_CB (stored as V = L_BB⁻¹ Σ_BC,
    /// nb × q), L_CC, and the joint posterior (for the pullback).
    private struct ObjectiveSampler {
        let posterior: JointPosterior
        let mean: [Double]
        let v: Matrix
        let lcc: CholeskyFactor
    }

    private func sampler(objective j: Int, rows: Matrix) throws -> ObjectiveSampler {
        let nb = conditioningPoints.count, q = candidateCount
        let post = try models.models[j].posterior(at: rows)
        var scc = Matrix(rows: q, columns: q)
        for a in 0..<q { for b in 0..<q { scc[a, b] = post.covariance[nb + a, nb + b] } }
        var v = Matrix(rows: nb, columns: q)
        if let lbb = conditioningFactors[j] {
            var sbc = Matrix(rows: nb, columns: q)
            for i in 0..<nb { for a in 0..<q { sbc[i, a] = post.covariance[i, nb + a] } }
            v = try lbb.solveLower(sbc)
            for a in 0..<q {
                for b in 0...a {
                    var s = 0.0
                    for i in 0..<nb { s += v[i, a] * v[i, b] }
                    scc[a, b] -= s
                    scc[b, a] = scc[a, b]
                }
            }
        }
        let lcc = try Self.factor(scc, model: models.models[j])
        return ObjectiveSampler(posterior: post, mean: Array(post.mean[nb...]), v: v, lcc: lcc)
    }

    private func evaluate(_ candidates: [[Double]], withGradient: Bool) throws -> (value: Double, gradient: [[Double]]) {
        let q = candidateCount, d = dimension, m = objectiveCount, nb = conditioningPoints.count
        guard candidates.count == q, candidates.allSatisfy({ $0.count == d && $0.allSatisfy(\.isFinite) }) else {
            throw AcquisitionError.invalidInput("expected \(q) candidates of \(d) finite coordinates")
        }
        let rows = try Matrix(conditioningPoints + candidates)
        let samplers = try (0..<m).map { try sampler(objective: $0, rows: rows) }
        // Per sample: the improvement (exact) or its smoothed log (log variant), and its gradient in y.
        var perSample = [Double](repeating: 0, count: sampleCount)
        // ∂(sample s's improvement)/∂y[a][j] at (s·q + a)·M + j.
        var perSampleGradient = [Double](repeating: 0, count: withGradient ? sampleCount * q * m : 0)
        var y = [Double](repeating: 0, count: q * m)  // candidate a, objective j at a·M + j
        var scratch = ImprovementScratch(pointCount: q, objectiveCount: m)
        for s in 0..<sampleCount {
            for j in 0..<m {
                let eps = normals[s][j], sp = samplers[j]
                for a in 0..<q {
                    var value = sp.mean[a]
                    for i in 0..<nb { value += sp.v[i, a] * eps[i] }
                    for b in 0...a { value += sp.lcc.lower[a, b] * eps[nb + b] }
                    y[a * m + j] = value / objectiveScales[j]
                }
            }
            if let tau = logTemperature {
                let cells = cellsPerSample.count == 1 ? cellsPerSample[0] : cellsPerSample[s]
                let points = (0..<q).map { Array(y[($0 * m)..<(($0 + 1) * m)]) }
                let r = try BoxDecomposition.logSmoothedHypervolumeImprovement(of: points, cells: cells, temperature: tau,
                                                                               withGradient: withGradient)
                perSample[s] = r.value
                if withGradient {
                    for a in 0..<q { for j in 0..<m { perSampleGradient[(s * q + a) * m + j] = r.gradient[a][j] } }
                }
            } else {
                // Exact qEHVI: the flat inner loop, no allocation per sample.
                let cells = flatCellsPerSample.count == 1 ? flatCellsPerSample[0] : flatCellsPerSample[s]
                perSample[s] = scratch.improvement(of: y, cells: cells, withGradient: withGradient)
                if withGradient {
                    for k in 0..<(q * m) { perSampleGradient[s * q * m + k] = scratch.gradient[k] }
                }
            }
        }
        // The mean over samples (log variant: log-mean-exp) and each sample's weight in its gradient.
        let value: Double
        var weights: [Double]
        if logTemperature != nil {
            let lse = logSumExp(perSample)
            value = lse - log(Double(sampleCount))
            weights = lse.isFinite ? perSample.map { exp($0 - lse) } : [Double](repeating: 0, count: sampleCount)
        } else {
            value = perSample.reduce(0, +) / Double(sampleCount)
            weights = [Double](repeating: 1 / Double(sampleCount), count: sampleCount)
        }
        guard withGradient else { return (value, []) }
        // Gradients accumulated over samples: ∂/∂μ_C, ∂/∂L_CC, ∂/∂V.
        var dMean = [[Double]](repeating: [Double](repeating: 0, count: q), count: m)
        var dLcc = [Matrix](repeating: Matrix(rows: q, columns: q), count: m)
        var dV = [Matrix](repeating: Matrix(rows: nb, columns: q), count: m)
        for s in 0..<sampleCount where weights[s] != 0 {
            for j in 0..<m {
                let eps = normals[s][j]
                for a in 0..<q {
                    let g = weights[s] * perSampleGradient[(s * q + a) * m + j] / objectiveScales[j]
                    if g == 0 { continue }
                    dMean[j][a] += g
                    for i in 0..<nb { dV[j][i, a] += g * eps[i] }
                    for b in 0...a { dLcc[j][a, b] += g * eps[nb + b] }
                }
            }
        }
        var gradient = [[Double]](repeating: [Double](repeating: 0, count: d), count: q)
        for j in 0..<m {
            let sp = samplers[j]
            // Schur complement S = Σ_CC − VᵀV, L_CC = chol(S).
            let dS = try sp.lcc.backward(lowerGradient: dLcc[j])
            var covGrad = Matrix(rows: nb + q, columns: nb + q)
            for a in 0..<q { for b in 0..<q { covGrad[nb + a, nb + b] = dS[a, b] } }
            if nb > 0, let lbb = conditioningFactors[j] {
                // ∂/∂V = Σ_s w_s g ε_B − 2 V ∂S (∂S symmetric); V = L_BB⁻¹ Σ_BC ⇒ ∂/∂Σ_BC = L_BB⁻ᵀ ∂/∂V.
                var gv = dV[j]
                for i in 0..<nb {
                    for a in 0..<q {
                        var s = 0.0
                        for b in 0..<q { s += sp.v[i, b] * dS[b, a] }
                        gv[i, a] -= 2 * s
                    }
                }
                let dSbc = try lbb.solveUpper(gv)
                for i in 0..<nb { for a in 0..<q { covGrad[i, nb + a] = dSbc[i, a] } }
            }
            let meanGrad = [Double](repeating: 0, count: nb) + dMean[j]
            let dx = try sp.posterior.pullback(meanGradient: meanGrad, covarianceGradient: covGrad)
            for a in 0..<q { for c in 0..<d { gradient[a][c] += dx[nb + a, c] } }
        }
        return (value, gradient)
    }

    /// Observed inputs that are Pareto-optimal in at least one joint posterior sample.
    static func prune(_ x: [[Double]], models: IndependentGPs, samples: Int, seed: UInt64) throws -> [[Double]] {
        let n = x.count, m = models.objectiveCount
        guard n * m <= SobolSequence.maximumDimension else { return x }
        let xm = try Matrix(x)
        let eps = try SobolSequence.normalSamples(count: samples, dimension: n * m, seed: seed)
        var draws = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: m), count: n),
                                 count: samples)
        for j in 0..<m {
            let post = try models.models[j].posterior(at: xm)
            let l = try factor(post.covariance, model: models.models[j]).lower
            for s in 0..<samples {
                for a in 0..<n {
                    var v = post.mean[a]
                    for b in 0...a { v += l[a, b] * eps[s][j * n + b] }
                    draws[s][a][j] = v
                }
            }
        }
        var keep = [Bool](repeating: false, count: n)
        for draw in draws {
            for i in try Pareto.nonDominatedIndices(draw) { keep[i] = true }
        }
        return x.indices.filter { keep[$0] }.map { x[$0] }
    }
}
