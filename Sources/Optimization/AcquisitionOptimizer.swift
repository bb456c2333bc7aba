import Dispatch
import Foundation

/// How `AcquisitionOptimizer` searches the unit cube.
public struct AcquisitionOptimizationOptions: Sendable, Equatable {
    /// Scrambled Sobol points scored before the gradient search (BoTorch's `raw_samples`).
    public var rawSamples: Int
    /// L-BFGS-B starts chosen among the raw samples (BoTorch's `num_restarts`).
    public var restarts: Int
    /// Settings of each L-BFGS-B run.
    public var optimizer: LBFGSB.Options
    /// Candidates closer than `duplicateTolerance · √D` (Euclidean) to an avoided point are rejected.
    public var duplicateTolerance: Double
    /// Runs the restarts (and raw-sample scoring) on parallel threads; results do not depend on it.
    public var concurrent: Bool
    /// How many of the `rawSamples` are drawn around the incumbents passed to `maximize` instead of from
    /// the Sobol sequence (0: none; at most `rawSamples − 1`; none when there are no incumbents); the idea of
    /// BoTorch's `sample_around_best` option, within the same raw budget. Each is an incumbent with
    /// every coordinate, independently with probability ½ (at least one), moved by N(0, `incumbentSigma`²)
    /// and clipped to [0, 1] — so coordinates at a bound often stay there, and the search sees the faces of
    /// the cube where fronts often lie and where Sobol points never come near.
    public var incumbentSamples: Int
    /// Standard deviation of an incumbent perturbation, in unit-cube units.
    public var incumbentSigma: Double

    public init(rawSamples: Int = 512, restarts: Int = 10,
                optimizer: LBFGSB.Options = LBFGSB.Options(maxIterations: 200, maxEvaluations: 400,
                                                           projectedGradientTolerance: 1e-6,
                                                           relativeFunctionTolerance: 1e-9),
                duplicateTolerance: Double = 1e-6, concurrent: Bool = true,
                incumbentSamples: Int = 128, incumbentSigma: Double = 0.1) {
        self.rawSamples = rawSamples
        self.incumbentSamples = incumbentSamples
        self.incumbentSigma = incumbentSigma
        self.restarts = restarts
        self.optimizer = optimizer
        self.duplicateTolerance = duplicateTolerance
        self.concurrent = concurrent
    }
}

/// Maximizes a `BatchAcquisitionFunction` over [0,1]^(q·D): Sobol raw samples → starts picked by
/// BoTorch's Boltzmann heuristic (`initialize_q_batch`: weights exp(z) of the standardized values, sampled
/// without replacement, the best raw sample always included) → L-BFGS-B with analytic gradients from each
/// start → the best end point that is not a near-duplicate of an avoided point (else the next best end
/// point, else the best acceptable raw sample). Deterministic for a seed.
public enum AcquisitionOptimizer {
    /// The maximizer: `candidates` (q points) and the acquisition value there.
    public struct Result: Sendable {
        public let candidates: [[Double]]
        public let value: Double
        /// Acquisition evaluations spent (raw samples + L-BFGS-B evaluations).
        public let evaluations: Int
    }

    /// - Parameters:
    ///   - avoiding: points no candidate may nearly duplicate (observed, pending, already chosen).
    ///   - incumbents: points (D values each, e.g. the observed Pareto set) to draw
    ///     `options.incumbentSamples` of the raw samples around.
    ///   - seed: seeds the raw samples and the start selection.
    public static func maximize(_ acquisition: some BatchAcquisitionFunction, options: AcquisitionOptimizationOptions = .init(),
                                avoiding: [[Double]] = [], incumbents: [[Double]] = [], seed: UInt64 = 0) throws -> Result {
        let q = acquisition.candidateCount, d = acquisition.dimension, width = q * d
        guard options.rawSamples >= 1, options.restarts >= 1, options.duplicateTolerance >= 0,
              options.incumbentSamples >= 0, options.incumbentSigma > 0 else {
            throw AcquisitionError.invalidInput(
                "rawSamples and restarts must be ≥ 1, duplicateTolerance and incumbentSamples ≥ 0 and incumbentSigma > 0, got \(options.rawSamples), \(options.restarts), \(options.duplicateTolerance), \(options.incumbentSamples), \(options.incumbentSigma)")
        }
        guard incumbents.allSatisfy({ $0.count == d }) else {
            throw AcquisitionError.invalidInput("every incumbent must have \(d) values")
        }
        let around = incumbents.isEmpty ? 0 : min(options.incumbentSamples, options.rawSamples - 1)
        var sobol = try SobolSequence(dimension: width, scramble: true, seed: seed)
        let raw = try sobol.draw(options.rawSamples - around)
            + perturbations(of: incumbents, count: around, blocks: q, sigma: options.incumbentSigma, seed: seed)
        let split: @Sendable ([Double]) -> [[Double]] = { flat in (0..<q).map { Array(flat[($0 * d)..<(($0 + 1) * d)]) } }
        let rawValues = ConcurrentSlots<Double>(count: raw.count)
        parallelFor(raw.count, concurrent: options.concurrent) { i in
            let v = (try? acquisition.value(split(raw[i]))) ?? -.infinity
            rawValues.set(i, v.isFinite ? v : -.infinity)
        }
        let values = rawValues.values(default: -.infinity)
        let starts = boltzmannStarts(values, count: min(options.restarts, raw.count), seed: seed)

        let lower = [Double](repeating: 0, count: width), upper = [Double](repeating: 1, count: width)
        let runs = ConcurrentSlots<(x: [Double], value: Double, evaluations: Int)>(count: starts.count)
        parallelFor(starts.count, concurrent: options.concurrent) { k in
            let x0 = raw[starts[k]]
            let r = try? LBFGSB.minimize(x0: x0, lower: lower, upper: upper, options: options.optimizer) { x in
                guard let vg = try? acquisition.valueAndGradient(split(x)), vg.value.isFinite else {
                    return (.infinity, [Double](repeating: 0, count: width))
                }
                return (-vg.value, vg.gradient.flatMap { $0.map { -$0 } })
            }
            if let r, r.value.isFinite {
                runs.set(k, (r.x, -r.value, r.evaluations))
            } else {
                runs.set(k, (x0, values[starts[k]], r?.evaluations ?? 0))
            }
        }
        let ends = (0..<starts.count).compactMap { runs.get($0) }
        let threshold = options.duplicateTolerance * Double(d).squareRoot()
        func acceptable(_ flat: [Double]) -> Bool {
            let points = split(flat)
            for (i, p) in points.enumerated() {
                for a in avoiding + points[..<i] where distance(p, a) <= threshold { return false }
            }
            return true
        }
        let evaluations = raw.count + ends.reduce(0) { $0 + $1.evaluations }
        // Stable order: best value first, ties by start index.
        let ranked = ends.indices.sorted { ends[$0].value > ends[$1].value || (ends[$0].value == ends[$1].value && $0 < $1) }
        if let k = ranked.first(where: { acceptable(ends[$0].x) }) {
            return Result(candidates: split(ends[k].x), value: ends[k].value, evaluations: evaluations)
        }
        let rawRanked = raw.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        let i = rawRanked.first(where: { acceptable(raw[$0]) }) ?? rawRanked[0]
        return Result(candidates: split(raw[i]), value: values[i], evaluations: evaluations)
    }

    /// Indices of `count` starts: Boltzmann sampling without replacement with weights exp(z), z the values
    /// standardized over the finite ones; the best value is always among them. Uniform when the values are all
    /// equal (e.g. all zero improvement).
    static func boltzmannStarts(_ values: [Double], count: Int, seed: UInt64) -> [Int] {
        let finite = values.filter(\.isFinite)
        let mean = finite.isEmpty ? 0 : finite.reduce(0, +) / Double(finite.count)
        let variance = finite.isEmpty ? 0 : finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(finite.count)
        let sd = variance.squareRoot()
        var weights = values.map { v -> Double in
            guard v.isFinite else { return 0 }
            return sd > 0 ? exp((v - mean) / sd) : 1
        }
        if weights.allSatisfy({ $0 == 0 }) { weights = values.map { _ in 1 } }
        var rng = SplitMix64(seed: seed ^ 0xB017_2A77)
        var chosen: [Int] = []
        if let best = values.indices.max(by: { values[$0] < values[$1] || (values[$0] == values[$1] && $0 > $1) }),
           values[best].isFinite {
            chosen.append(best)
            weights[best] = 0
        }
        while chosen.count < count {
            let total = weights.reduce(0, +)
            guard total > 0 else { break }
            var u = uniformOpen(using: &rng) * total
            var pick = weights.lastIndex(where: { $0 > 0 })!
            for (i, w) in weights.enumerated() where w > 0 {
                if u < w { pick = i; break }
                u -= w
            }
            chosen.append(pick)
            weights[pick] = 0
        }
        return chosen
    }

    /// `count` points of q·D values: each block of D is a randomly chosen incumbent with each coordinate,
    /// with probability ½ (at least one per block), moved by N(0, sigma²) and clipped to [0, 1].
    static func perturbations(of incumbents: [[Double]], count: Int, blocks: Int, sigma: Double, seed: UInt64) -> [[Double]] {
        guard count > 0, !incumbents.isEmpty else { return [] }
        var rng = SplitMix64(seed: seed ^ 0x1_C0B3_57A1)
        return (0..<count).map { _ in
            (0..<blocks).flatMap { _ -> [Double] in
                var x = incumbents[Int(rng.next() % UInt64(incumbents.count))]
                let forced = Int(rng.next() % UInt64(x.count))
                for j in x.indices where j == forced || rng.next() & 1 == 1 {
                    x[j] = min(1, max(0, x[j] + sigma * StandardNormal.quantile(uniformOpen(using: &rng))))
                }
                return x
            }
        }
    }

    static func distance(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in 0..<min(a.count, b.count) { s += (a[i] - b[i]) * (a[i] - b[i]) }
        return s.squareRoot()
    }
}

/// Runs `body(0..<count)` on parallel threads or in order.
func parallelFor(_ count: Int, concurrent: Bool, _ body: @Sendable (Int) -> Void) {
    if concurrent && count > 1 {
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    } else {
        for i in 0..<count { body(i) }
    }
}

/// Lock-protected slots written by index from concurrent workers.
final class ConcurrentSlots<T: Sendable>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ value: T) {
        lock.lock(); defer { lock.unlock() }
        slots[i] = value
    }

    func get(_ i: Int) -> T? {
        lock.lock(); defer { lock.unlock() }
        return slots[i]
    }

    func values(default value: T) -> [T] {
        lock.lock(); defer { lock.unlock() }
        return slots.map { $0 ?? value }
    }
}
