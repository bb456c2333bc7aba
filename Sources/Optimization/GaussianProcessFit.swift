import Foundation

/// Which hyper-parameter priors a fit uses (see `GPPriors`).
public enum GPPriorChoice: Sendable, Equatable {
    /// `GPPriors.classic` (the default).
    case classic
    /// `GPPriors.dimensionScaled(dimension:)` for the data's dimension.
    case dimensionScaled
    /// Explicit priors.
    case custom(GPPriors)

    func resolve(dimension: Int) -> GPPriors {
        switch self {
        case .classic: return .classic
        case .dimensionScaled: return .dimensionScaled(dimension: dimension)
        case .custom(let p): return p
        }
    }
}

/// How `GaussianProcess.fit` chooses hyper-parameters.
public struct GPFitOptions: Sendable, Equatable {
    public var priors: GPPriorChoice
    /// Random starts in addition to the prior-mode start (and the warm start, when given).
    public var randomRestarts: Int
    /// Lower bound of the noise variance on standardized outputs.
    public var noiseFloor: Double
    /// Upper bound of the noise variance on standardized outputs.
    public var noiseCeiling: Double
    /// Box of the length-scales (unit-cube units).
    public var lengthscaleBounds: ClosedRange<Double>
    /// Box of the output scale (standardized units).
    public var outputscaleBounds: ClosedRange<Double>
    /// Box of the constant mean (standardized units).
    public var meanBounds: ClosedRange<Double>
    /// Optimizer settings of each start.
    public var optimizer: LBFGSB.Options
    public var jitter: JitterPolicy

    public init(priors: GPPriorChoice = .classic, randomRestarts: Int = 3, noiseFloor: Double = 1e-6,
                noiseCeiling: Double = 10, lengthscaleBounds: ClosedRange<Double> = 1e-2...1e3,
                outputscaleBounds: ClosedRange<Double> = 1e-4...1e4, meanBounds: ClosedRange<Double> = -10...10,
                optimizer: LBFGSB.Options = LBFGSB.Options(maxIterations: 150, maxEvaluations: 400,
                                                           projectedGradientTolerance: 1e-5),
                jitter: JitterPolicy = .standard) {
        self.priors = priors
        self.randomRestarts = randomRestarts
        self.noiseFloor = noiseFloor
        self.noiseCeiling = noiseCeiling
        self.lengthscaleBounds = lengthscaleBounds
        self.outputscaleBounds = outputscaleBounds
        self.meanBounds = meanBounds
        self.optimizer = optimizer
        self.jitter = jitter
    }
}

/// What a fit did, for logs and benchmarks.
public struct GPFitReport: Sendable {
    /// Number of starts run.
    public let starts: Int
    /// Objective evaluations summed over the starts.
    public let evaluations: Int
    /// Index of the winning start (0 = warm start when given, else the prior-mode start).
    public let bestStart: Int
    /// log marginal likelihood + log prior at the optimum (standardized targets).
    public let logPosterior: Double
    /// The optimizer's termination of the winning start.
    public let termination: LBFGSB.Termination
}

extension GaussianProcess {
    /// Fits the hyper-parameters by maximizing log marginal likelihood + log priors (MAP) with
    /// multi-start L-BFGS-B on `GPHyperparameters.vector`, then conditions on the data.
    ///
    /// Minimized objective: −(log p(y | θ) + log p(θ)) / n (divided by n as in GPyTorch's
    /// `ExactMarginalLogLikelihood`, so that tolerances do not depend on n). Starts, in order:
    /// `warmStart` (e.g. the previous iteration's fit) when given; the prior modes
    /// (length-scales, output scale) with noise 10⁻² and mean 0; then `randomRestarts` starts with
    /// length-scales and output scale drawn from their priors (log-uniform in their bounds when
    /// flat) and noise log-uniform in [max(floor, 10⁻⁶), 10⁻¹]. The best end point wins.
    /// Deterministic for a given `seed`.
    /// - Throws: `GPError.invalidInput` for bad data, `GPError.fitFailed` when no start reaches a
    ///   finite objective.
    public static func fit(_ data: GPTrainingSet, options: GPFitOptions = GPFitOptions(), seed: UInt64 = 0,
                           warmStart: GPHyperparameters? = nil) throws -> (model: GaussianProcess, report: GPFitReport) {
        let d = data.dimension, n = data.count
        guard options.noiseFloor > 0, options.noiseFloor <= options.noiseCeiling,
              options.lengthscaleBounds.lowerBound > 0, options.outputscaleBounds.lowerBound > 0,
              options.randomRestarts >= 0 else {
            throw GPError.invalidInput("fit options need 0 < noiseFloor ≤ noiseCeiling, positive scale bounds and randomRestarts ≥ 0")
        }
        if let w = warmStart, w.lengthscales.count != d {
            throw GPError.invalidInput("warm start has \(w.lengthscales.count) length-scales for \(d) input dimensions")
        }
        let priors = options.priors.resolve(dimension: d)
        let lower = [Double](repeating: log(options.lengthscaleBounds.lowerBound), count: d)
            + [log(options.outputscaleBounds.lowerBound), log(options.noiseFloor), options.meanBounds.lowerBound]
        let upper = [Double](repeating: log(options.lengthscaleBounds.upperBound), count: d)
            + [log(options.outputscaleBounds.upperBound), log(options.noiseCeiling), options.meanBounds.upperBound]
        func clamp(_ v: [Double]) -> [Double] { zip(v, zip(lower, upper)).map { min(max($0, $1.0), $1.1) } }

        var rng = SplitMix64(seed: seed)
        var starts: [[Double]] = []
        if let w = warmStart, w.lengthscales.allSatisfy({ $0 > 0 }), w.outputscale > 0, w.noise > 0 {
            starts.append(clamp(w.vector))
        }
        let lengthscaleStart = priors.lengthscale.mode ?? 0.5
        let outputscaleStart = priors.outputscale.mode ?? 1
        starts.append(clamp([Double](repeating: log(lengthscaleStart), count: d) + [log(outputscaleStart), log(1e-2), 0]))
        func draw(_ prior: ScalarPrior, _ bounds: ClosedRange<Double>) -> Double {
            if let v = prior.sample(using: &rng) { return log(v) }
            let lo = log(bounds.lowerBound), hi = log(bounds.upperBound)
            return lo + (hi - lo) * uniformOpen(using: &rng)
        }
        let noiseLow = log(max(options.noiseFloor, 1e-6)), noiseHigh = log(max(1e-1, options.noiseFloor))
        for _ in 0..<options.randomRestarts {
            var v = (0..<d).map { _ in draw(priors.lengthscale, options.lengthscaleBounds) }
            v.append(draw(priors.outputscale, options.outputscaleBounds))
            v.append(noiseLow + (noiseHigh - noiseLow) * uniformOpen(using: &rng))
            v.append(0)
            starts.append(clamp(v))
        }

        let scale = 1 / Double(n)
        let workspace = GPLikelihoodWorkspace(count: n)
        let objective: ([Double]) -> (value: Double, gradient: [Double]) = { theta in
            guard let h = try? GPHyperparameters(vector: theta),
                  let mll = try? data.logMarginalLikelihood(h, jitter: options.jitter, workspace: workspace) else {
                return (.infinity, [Double](repeating: 0, count: theta.count))
            }
            let prior = priors.logDensity(h)
            var g = [Double](repeating: 0, count: theta.count)
            for i in 0..<theta.count { g[i] = -(mll.gradient[i] + prior.gradient[i]) * scale }
            return (-(mll.value + prior.value) * scale, g)
        }
        var best: (value: Double, x: [Double], start: Int, termination: LBFGSB.Termination)?
        var evaluations = 0
        for (s, x0) in starts.enumerated() {
            let r = try LBFGSB.minimize(x0: x0, lower: lower, upper: upper, options: options.optimizer, objective)
            evaluations += r.evaluations
            if r.value.isFinite, best == nil || r.value < best!.value {
                best = (r.value, r.x, s, r.termination)
            }
        }
        guard let winner = best else {
            throw GPError.fitFailed("the kernel matrix could not be factored at any of \(starts.count) starts (\(n) points, \(d) dimensions)")
        }
        let h = try GPHyperparameters(vector: winner.x)
        let model = try GaussianProcess(trainingSet: data, hyperparameters: h, jitter: options.jitter)
        let report = GPFitReport(starts: starts.count, evaluations: evaluations, bestStart: winner.start,
                                 logPosterior: -winner.value / scale, termination: winner.termination)
        return (model, report)
    }
}
