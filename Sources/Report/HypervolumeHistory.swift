import Optimization

/// Hypervolume over the number of evaluations, one curve per strategy (paper Figure 7).
public enum HypervolumeHistory {
    /// One strategy's curve: `values[i]` is the hypervolume of its first i + 1 trials (by trial id).
    public struct Curve: Sendable, Equatable {
        public var strategy: String
        public var values: [Double]
    }

    /// The curves of `input.strategies`, in that order. A trial without objectives counts as an
    /// evaluation and adds nothing; points not strictly better than the reference point in every
    /// objective add nothing (`Hypervolume`).
    public static func curves(_ input: ReportInput) throws -> [Curve] {
        try input.strategies.map { strategy in
            var points: [[Double]] = []
            var values: [Double] = []
            for trial in input.trials.filter({ $0.strategy == strategy }).sorted(by: { $0.id < $1.id }) {
                if let y = trial.objectives { points.append(y) }
                values.append(points.isEmpty ? 0 : try Hypervolume.compute(points, referencePoint: input.referencePoint))
            }
            return Curve(strategy: strategy, values: values)
        }
    }
}
