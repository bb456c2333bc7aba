import Foundation

/// How `MultiObjectiveOptimizer` proposes points.
public enum ProposalStrategy: String, Sendable, CaseIterable {
    /// qEHVI (noise-free observations).
    case qehvi
    /// qNEHVI (noisy observations).
    case qnehvi
    /// qLogEHVI: the log of a fat-softplus-smoothed qEHVI (Ament et al. 2023), informative where qEHVI is flat
    /// (the default: better final hypervolume on ZDT1, DTLZ2 and BraninCurrin, `Benchmarks/optimizer/RESULTS.md`).
    case qlogehvi
    /// qLogNEHVI: the same smoothing of qNEHVI.
    case qlognehvi
    /// Plain scrambled Sobol points (a baseline; no models).
    case sobol

    /// True for the log-smoothed variants.
    public var isLog: Bool { self == .qlogehvi || self == .qlognehvi }
}

/// Settings of a `MultiObjectiveOptimizer`.
public struct MultiObjectiveOptimizerConfiguration: Sendable {
    /// Input dimension D; every x lies in [0,1]^D.
    public var dimension: Int
    /// Number of objectives M (all maximized).
    public var objectives: Int
    /// Hypervolume reference point; nil: derived at each step from the observed outcomes by
    /// `Pareto.referencePoint(fromNadirOf:)` (nadir − 0.1·range, as BoTorch's `infer_reference_point`).
    public var referencePoint: [Double]?
    /// Observations needed before models are used; until then `ask` answers with the Sobol design.
    /// At least 2 (a GP needs two points to standardize its outputs).
    public var initialDesignSize: Int
    public var strategy: ProposalStrategy
    public var seed: UInt64
    /// MC samples of the acquisition (and of qNEHVI's baseline pruning).
    public var mcSamples: Int
    /// τ of the log variants, in units of each objective's training standard deviation.
    public var logTemperature: Double = HypervolumeAcquisition.defaultLogTemperature
    public var acquisitionOptions: AcquisitionOptimizationOptions
    public var fitOptions: GPFitOptions

    /// Defaults: initial design 2(D+1) points, qLogEHVI, 128 MC samples, 10 restarts, 512 raw samples.
    public init(dimension: Int, objectives: Int, referencePoint: [Double]? = nil, initialDesignSize: Int? = nil,
                strategy: ProposalStrategy = .qlogehvi, seed: UInt64 = 0, mcSamples: Int = 128, restarts: Int = 10,
                rawSamples: Int = 512, fitOptions: GPFitOptions = GPFitOptions(randomRestarts: 2)) {
        self.dimension = dimension
        self.objectives = objectives
        self.referencePoint = referencePoint
        self.initialDesignSize = initialDesignSize ?? 2 * (dimension + 1)
        self.strategy = strategy
        self.seed = seed
        self.mcSamples = mcSamples
        self.acquisitionOptions = AcquisitionOptimizationOptions(rawSamples: rawSamples, restarts: restarts)
        self.fitOptions = fitOptions
    }
}

/// A pure ask/tell multi-objective Bayesian optimizer over [0,1]^D (all objectives maximized): no I/O and
/// no clocks; deterministic for a seed and a sequence of calls.
///
/// Protocol:
/// 1. `tell(x:y:)` any number of observations at any time (also ones it did not propose).
/// 2. `ask(q:pending:)` returns q new points. While fewer than `initialDesignSize` observations exist (or
///    with `.sobol`) these are the next points of a scrambled Sobol sequence (never handed out twice).
///    Afterwards it fits one GP per objective (MAP, warm-started from the previous fit), then chooses the q
///    points sequentially-greedy: each maximizes qEHVI/qNEHVI (q = 1) jointly with `pending` and the points
///    already chosen in this call, none a near-duplicate of an observed, pending or chosen point.
///
/// To time the two phases (paper's "seconds per proposal step"), call `fitModels()` and
/// `propose(q:pending:models:)` yourself instead of `ask`; `ask` is exactly their composition.
public struct MultiObjectiveOptimizer: Sendable {
    public let configuration: MultiObjectiveOptimizerConfiguration
    /// Observed inputs, in the order told.
    public private(set) var observedX: [[Double]] = []
    /// Observed outcomes (M values each), in the order told.
    public private(set) var observedY: [[Double]] = []
    /// Hyper-parameters of the last fit (warm start of the next).
    public private(set) var lastHyperparameters: [GPHyperparameters]?
    /// Sobol points handed out so far.
    public private(set) var designPointsIssued = 0
    /// Model-based proposal steps made so far (mixes into the seeds of each step).
    public private(set) var proposalSteps = 0

    /// - Throws: `AcquisitionError.invalidInput` naming the bad field.
    public init(_ configuration: MultiObjectiveOptimizerConfiguration) throws {
        let c = configuration
        guard c.dimension >= 1, c.dimension <= SobolSequence.maximumDimension else {
            throw AcquisitionError.invalidInput("dim must be in 1…\(SobolSequence.maximumDimension), got \(c.dimension)")
        }
        guard c.objectives >= 1 else { throw AcquisitionError.invalidInput("objectives must be ≥ 1, got \(c.objectives)") }
        if let r = c.referencePoint, r.count != c.objectives || !r.allSatisfy(\.isFinite) {
            throw AcquisitionError.invalidInput("refPoint must have \(c.objectives) finite values, got \(r)")
        }
        guard c.initialDesignSize >= 2 else {
            throw AcquisitionError.invalidInput("initial must be ≥ 2, got \(c.initialDesignSize)")
        }
        guard c.mcSamples >= 1 else { throw AcquisitionError.invalidInput("mcSamples must be ≥ 1, got \(c.mcSamples)") }
        guard c.acquisitionOptions.restarts >= 1, c.acquisitionOptions.rawSamples >= 1 else {
            throw AcquisitionError.invalidInput("restarts and rawSamples must be ≥ 1")
        }
        self.configuration = c
    }

    /// Number of observations told.
    public var observationCount: Int { observedX.count }

    /// True while `ask` answers with the initial Sobol design.
    public var isInInitialDesign: Bool {
        configuration.strategy == .sobol || observedX.count < configuration.initialDesignSize
    }

    /// Records observations: `x[i]` (D values in [0,1]) gave `y[i]` (M finite values).
    /// All-or-nothing: on error nothing is recorded.
    /// - Throws: `AcquisitionError.invalidInput` naming the bad entry.
    public mutating func tell(x: [[Double]], y: [[Double]]) throws {
        guard x.count == y.count else {
            throw AcquisitionError.invalidInput("tell got \(x.count) inputs but \(y.count) outcomes")
        }
        for i in x.indices {
            try checkPoint(x[i], what: "tell[\(i)].x")
            guard y[i].count == configuration.objectives, y[i].allSatisfy(\.isFinite) else {
                throw AcquisitionError.invalidInput(
                    "tell[\(i)].y must have \(configuration.objectives) finite values, got \(y[i])")
            }
        }
        observedX += x
        observedY += y
    }

    /// q new points in [0,1]^D (see the type's documentation).
    /// - Parameter pending: points dispatched but not yet told (D values in [0,1] each).
    public mutating func ask(q: Int, pending: [[Double]] = []) throws -> [[Double]] {
        try checkBatch(q: q, pending: pending)
        if isInInitialDesign { return try nextDesignPoints(q) }
        let models = try fitModels()
        return try propose(q: q, pending: pending, models: models)
    }

    /// The next q points of the Sobol design (marks them as handed out).
    public mutating func nextDesignPoints(_ q: Int) throws -> [[Double]] {
        var sobol = try SobolSequence(dimension: configuration.dimension, scramble: true, seed: configuration.seed)
        try sobol.fastForward(designPointsIssued)
        designPointsIssued += q
        return try sobol.draw(q)
    }

    /// Phase 1 of a model-based step: fits one GP per objective to the observations (warm-started from the
    /// previous fit) and remembers the hyper-parameters.
    public mutating func fitModels() throws -> IndependentGPs {
        guard observedX.count >= 2 else {
            throw AcquisitionError.invalidInput("need at least 2 observations to fit models, have \(observedX.count)")
        }
        let d = configuration.dimension
        let ym = try Matrix(observedY)
        let models = try IndependentGPs.fit(
            x: try Matrix(observedX), y: ym, lowerBounds: Array(repeating: 0, count: d),
            upperBounds: Array(repeating: 1, count: d), options: configuration.fitOptions,
            seed: stepSeed(0xF17), warmStarts: lastHyperparameters)
        lastHyperparameters = models.hyperparameters
        return models
    }

    /// Phase 2 of a model-based step: q points chosen sequentially-greedy by the configured acquisition on
    /// `models` (from `fitModels()`), given `pending`.
    public mutating func propose(q: Int, pending: [[Double]] = [], models: IndependentGPs) throws -> [[Double]] {
        try checkBatch(q: q, pending: pending)
        guard models.objectiveCount == configuration.objectives, models.models[0].dimension == configuration.dimension else {
            throw AcquisitionError.invalidInput("models do not match the configured dimension/objectives")
        }
        guard configuration.strategy != .sobol else { return try nextDesignPoints(q) }
        let reference = try configuration.referencePoint ?? Pareto.referencePoint(fromNadirOf: observedY)
        // The observed Pareto set: extra raw samples are drawn around it (faces of the cube included).
        let incumbents = Pareto.nonDominatedIndicesUnchecked(observedY, keepDuplicates: false).map { observedX[$0] }
        var chosen: [[Double]] = []
        for k in 0..<q {
            let seed = stepSeed(UInt64(k))
            let conditioning = pending + chosen
            let acquisition: HypervolumeAcquisition
            let tau: Double? = configuration.strategy.isLog ? configuration.logTemperature : nil
            switch configuration.strategy {
            case .qehvi, .qlogehvi:
                acquisition = try .qEHVI(models: models, observedY: observedY, referencePoint: reference,
                                         pending: conditioning, samples: configuration.mcSamples, seed: seed,
                                         logTemperature: tau)
            case .qnehvi, .qlognehvi, .sobol:
                acquisition = try .qNEHVI(models: models, observedX: observedX, referencePoint: reference,
                                          pending: conditioning, samples: configuration.mcSamples, seed: seed,
                                          logTemperature: tau)
            }
            let best = try AcquisitionOptimizer.maximize(acquisition, options: configuration.acquisitionOptions,
                                                         avoiding: observedX + conditioning, incumbents: incumbents, seed: seed)
            chosen.append(best.candidates[0])
        }
        proposalSteps += 1
        return chosen
    }

    private func stepSeed(_ salt: UInt64) -> UInt64 {
        var rng = SplitMix64(seed: configuration.seed ^ (UInt64(proposalSteps) &* 0x9E37_79B9) ^ (salt &* 0xD1B5_4A32_D192_ED03))
        return rng.next()
    }

    private func checkBatch(q: Int, pending: [[Double]]) throws {
        guard q >= 1 else { throw AcquisitionError.invalidInput("ask needs q ≥ 1, got \(q)") }
        for (i, p) in pending.enumerated() { try checkPoint(p, what: "pending[\(i)]") }
    }

    private func checkPoint(_ x: [Double], what: String) throws {
        guard x.count == configuration.dimension, x.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw AcquisitionError.invalidInput(
                "\(what) must have \(configuration.dimension) values in [0, 1], got \(x)")
        }
    }
}
