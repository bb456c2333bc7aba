import Dispatch
import Foundation

/// One independent GP per objective (paper Eq. 14), fitted on shared inputs.
public struct IndependentGPs: Sendable {
    /// The per-objective models, in objective order.
    public let models: [GaussianProcess]
    /// The per-objective fit reports (empty when built from given models).
    public let reports: [GPFitReport]

    /// Wraps already-conditioned models (all must share the input dimension).
    public init(models: [GaussianProcess]) throws {
        guard let d = models.first?.dimension, models.allSatisfy({ $0.dimension == d }) else {
            throw GPError.invalidInput("IndependentGPs needs at least one model, all with the same input dimension")
        }
        self.models = models
        self.reports = []
    }

    private init(models: [GaussianProcess], reports: [GPFitReport]) {
        self.models = models
        self.reports = reports
    }

    /// Number of objectives M.
    public var objectiveCount: Int { models.count }

    /// Fits M GPs to the columns of `y` (`n × M`) at inputs `x` (`n × d`) in the box
    /// [lowerBounds, upperBounds]. Objective m uses the seed `seed &+ m` (so the result does not
    /// depend on scheduling) and `warmStarts[m]` when given. With `concurrently`, objectives are
    /// fitted on parallel threads.
    /// - Throws: the first objective's error, with the objective index in the message.
    public static func fit(x: Matrix, y: Matrix, lowerBounds: [Double], upperBounds: [Double],
                           options: GPFitOptions = GPFitOptions(), seed: UInt64 = 0,
                           warmStarts: [GPHyperparameters]? = nil, concurrently: Bool = true) throws -> IndependentGPs {
        let m = y.columns
        guard m >= 1, y.rows == x.rows else {
            throw GPError.invalidInput("y must be n × M with M ≥ 1 and n = \(x.rows) rows of x, got \(y.rows)×\(y.columns)")
        }
        if let w = warmStarts, w.count != m {
            throw GPError.invalidInput("\(w.count) warm starts for \(m) objectives")
        }
        let sets = try (0..<m).map { j in
            try GPTrainingSet(x: x, y: (0..<y.rows).map { y[$0, j] }, lowerBounds: lowerBounds, upperBounds: upperBounds)
        }
        let results = ResultSlots<(model: GaussianProcess, report: GPFitReport)>(count: m)
        let work: @Sendable (Int) -> Void = { j in
            results.set(j, Result { try GaussianProcess.fit(sets[j], options: options, seed: seed &+ UInt64(j),
                                                            warmStart: warmStarts?[j]) })
        }
        if concurrently && m > 1 {
            DispatchQueue.concurrentPerform(iterations: m, execute: work)
        } else {
            for j in 0..<m { work(j) }
        }
        var models: [GaussianProcess] = [], reports: [GPFitReport] = []
        for j in 0..<m {
            switch results.get(j) {
            case .success(let r): models.append(r.model); reports.append(r.report)
            case .failure(let e): throw GPError.fitFailed("objective \(j): \(e)")
            case nil: throw GPError.fitFailed("objective \(j): no result")
            }
        }
        return IndependentGPs(models: models, reports: reports)
    }

    /// The joint posterior of every objective at the rows of `x` (independent across objectives).
    public func posterior(at x: Matrix) throws -> [JointPosterior] {
        try models.map { try $0.posterior(at: x) }
    }

    /// The fitted hyper-parameters, e.g. to warm-start the next fit.
    public var hyperparameters: [GPHyperparameters] { models.map(\.hyperparameters) }
}

/// Lock-protected result slots filled from concurrent workers.
private final class ResultSlots<T: Sendable>: @unchecked Sendable {
    private var slots: [Result<T, any Error>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<T, any Error>) {
        lock.lock(); defer { lock.unlock() }
        slots[i] = r
    }

    func get(_ i: Int) -> Result<T, any Error>? {
        lock.lock(); defer { lock.unlock() }
        return slots[i]
    }
}
