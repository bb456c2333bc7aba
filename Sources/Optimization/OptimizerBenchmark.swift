import Foundation

/// The closed loop of `bambo bench optimizer`: an initial Sobol design, then batches of q proposals on a
/// test problem, with the hypervolume after each batch. Time is read through an injected clock, so the
/// loop stays pure.
public enum OptimizerBenchmark {
    /// What one run measured.
    public struct Report: Sendable {
        /// Hypervolume (w.r.t. the problem's reference point) after the initial design, then after each batch.
        public let hypervolumes: [Double]
        /// log10(maxHV − HV) per entry of `hypervolumes`, when the problem's maximal hypervolume is known
        /// (nil entries where HV ≥ maxHV).
        public let logHypervolumeGaps: [Double?]
        /// Seconds fitting the GPs, per batch (0 for Sobol).
        public let fitSeconds: [Double]
        /// Seconds optimizing the acquisition, per batch.
        public let acquisitionSeconds: [Double]
        public let maxHypervolume: Double?
        public var finalHypervolume: Double { hypervolumes.last ?? 0 }
        public var finalLogHypervolumeGap: Double? { logHypervolumeGaps.last ?? nil }
    }

    /// Runs `iterations` batches of `batch` points after `configuration.initialDesignSize` Sobol points.
    /// The acquisition uses the problem's reference point. `now` returns seconds on any monotonic clock.
    /// - Parameter progress: called after each batch with (iteration, hypervolume).
    public static func run(problem: any MultiObjectiveTestProblem, configuration: MultiObjectiveOptimizerConfiguration,
                           iterations: Int, batch: Int, now: () -> Double,
                           progress: (Int, Double) -> Void = { _, _ in }) throws -> Report {
        guard iterations >= 0, batch >= 1 else {
            throw AcquisitionError.invalidInput("iterations must be ≥ 0 and batch ≥ 1, got \(iterations), \(batch)")
        }
        guard configuration.dimension == problem.dimension, configuration.objectives == problem.objectiveCount else {
            throw AcquisitionError.invalidInput(
                "configuration has dim \(configuration.dimension), objectives \(configuration.objectives); \(problem.name) has \(problem.dimension), \(problem.objectiveCount)")
        }
        var c = configuration
        c.referencePoint = problem.referencePoint
        var optimizer = try MultiObjectiveOptimizer(c)
        func evaluate(_ xs: [[Double]]) throws { try optimizer.tell(x: xs, y: xs.map { try problem.evaluate($0) }) }
        func hypervolume() throws -> Double { try Hypervolume.compute(optimizer.observedY, referencePoint: problem.referencePoint) }

        try evaluate(try optimizer.nextDesignPoints(c.initialDesignSize))
        var hypervolumes = [try hypervolume()]
        var fitSeconds: [Double] = [], acquisitionSeconds: [Double] = []
        for t in 0..<iterations {
            let t0 = now()
            let models: IndependentGPs? = c.strategy == .sobol ? nil : try optimizer.fitModels()
            let t1 = now()
            let xs = try models.map { try optimizer.propose(q: batch, models: $0) } ?? optimizer.nextDesignPoints(batch)
            let t2 = now()
            fitSeconds.append(t1 - t0)
            acquisitionSeconds.append(t2 - t1)
            try evaluate(xs)
            hypervolumes.append(try hypervolume())
            progress(t + 1, hypervolumes.last!)
        }
        let maxHV = problem.maxHypervolume
        let gaps = hypervolumes.map { hv -> Double? in
            guard let maxHV, maxHV > hv else { return nil }
            return log10(maxHV - hv)
        }
        return Report(hypervolumes: hypervolumes, logHypervolumeGaps: gaps, fitSeconds: fitSeconds,
                      acquisitionSeconds: acquisitionSeconds, maxHypervolume: maxHV)
    }
}
