import Foundation
import Testing
@testable import Optimization

/// Two GPs (fixed hyper-parameters, no fitting) on a small 2-D data set, the observed outcomes and a
/// reference point: the fixture of the acquisition tests.
struct AcquisitionFixture {
    let x: [[Double]]
    let y: [[Double]]
    let models: IndependentGPs
    let referencePoint = [-1.5, -1.5]

    init(noise: Double = 1e-4) throws {
        var rng = SplitMix64(seed: 7)
        let x = (0..<8).map { _ in [uniformOpen(using: &rng), uniformOpen(using: &rng)] }
        let y = x.map { p in [-(p[0] - 0.2) * (p[0] - 0.2) - 0.5 * p[1] * p[1] + 0.1 * sin(6 * p[1]),
                              -(p[0] - 0.8) * (p[0] - 0.8) - 0.5 * (p[1] - 0.6) * (p[1] - 0.6)] }
        let hyper = GPHyperparameters(lengthscales: [0.35, 0.5], outputscale: 1.2, noise: noise, mean: 0)
        let models = try (0..<2).map { m in
            let set = try GPTrainingSet(x: try Matrix(x), y: y.map { $0[m] }, lowerBounds: [0, 0], upperBounds: [1, 1])
            return try GaussianProcess(trainingSet: set, hyperparameters: hyper)
        }
        self.x = x
        self.y = y
        self.models = try IndependentGPs(models: models)
    }
}

private func normalCDF(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
private func normalPDF(_ z: Double) -> Double { exp(-0.5 * z * z) / (2 * Double.pi).squareRoot() }

/// E[max(0, min(Y, u) − l)] for Y ~ N(μ, σ²) = ∫_l^u P(Y > t) dt = G(u) − G(l),
/// G(t) = (t − μ)(1 − Φ(z)) − σ φ(z), z = (t − μ)/σ, G(∞) = 0.
private func expectedClippedGain(lower l: Double, upper u: Double, mean mu: Double, sd: Double) -> Double {
    func g(_ t: Double) -> Double {
        if t == .infinity { return 0 }
        let z = (t - mu) / sd
        return (t - mu) * (1 - normalCDF(z)) - sd * normalPDF(z)
    }
    return g(u) - g(l)
}

/// Analytic EHVI of one point with independent Gaussian objectives for M = 2: the non-dominated region of the
/// front is a staircase of boxes (built here independently of `BoxDecomposition`), and inside each box the
/// improvement is the product of the independent clipped gains.
private func analyticEHVI2(front: [[Double]], reference r: [Double], mean: [Double], sd: [Double]) -> Double {
    let nd = front.filter { p in !front.contains { Pareto.dominates($0, p) } && p[0] > r[0] && p[1] > r[1] }
        .sorted { $0[0] < $1[0] }
    var boxes: [(l: [Double], u: [Double])] = []
    var left = r[0]
    for p in nd {
        boxes.append((l: [left, p[1]], u: [p[0], .infinity]))
        left = p[0]
    }
    boxes.append((l: [left, r[1]], u: [.infinity, .infinity]))
    return boxes.reduce(0) { total, box in
        total + expectedClippedGain(lower: box.l[0], upper: box.u[0], mean: mean[0], sd: sd[0])
            * expectedClippedGain(lower: box.l[1], upper: box.u[1], mean: mean[1], sd: sd[1])
    }
}

@Suite("Acquisition: qEHVI / qNEHVI")
struct AcquisitionTests {
    @Test("qEHVI, q = 1, M = 2 agrees with the closed-form EHVI")
    func qEHVIMatchesAnalytic() throws {
        let f = try AcquisitionFixture()
        let acquisition = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                           samples: 4096, seed: 3)
        for point in [[0.5, 0.3], [0.25, 0.1], [0.95, 0.05], [0.4, 0.6]] {
            let marginals = try f.models.models.map { try $0.marginals(at: try Matrix([point])) }
            let mean = marginals.map { $0.mean[0] }, sd = marginals.map { $0.variance[0].squareRoot() }
            let exact = analyticEHVI2(front: f.y, reference: f.referencePoint, mean: mean, sd: sd)
            let mc = try acquisition.value([point])
            #expect(exact > 1e-4, "the test point should have a visible improvement")
            #expect(abs(mc - exact) <= 0.01 * exact + 1e-6, "x = \(point): MC \(mc) vs analytic \(exact)")
        }
    }

    @Test("qEHVI, q = 2 agrees with brute-force Monte Carlo of the exact hypervolume improvement")
    func qEHVIBatchMatchesBruteForce() throws {
        let f = try AcquisitionFixture()
        let candidates = [[0.45, 0.35], [0.6, 0.5]]
        let acquisition = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                           candidateCount: 2, samples: 4096, seed: 11)
        let mc = try acquisition.value(candidates)
        // Brute force: independent pseudo-random draws from each objective's 2×2 joint posterior, HVI by the
        // exact hypervolume of front ∪ draws.
        let posteriors = try f.models.posterior(at: try Matrix(candidates))
        let base = try Hypervolume.compute(f.y, referencePoint: f.referencePoint)
        var rng = SplitMix64(seed: 99)
        let draws = 40_000
        var sum = 0.0, sumSquares = 0.0
        for _ in 0..<draws {
            var ys = [[0.0, 0.0], [0.0, 0.0]]
            for (m, p) in posteriors.enumerated() {
                let c = p.covariance
                let l00 = c[0, 0].squareRoot(), l10 = c[1, 0] / l00
                let l11 = max(c[1, 1] - l10 * l10, 0).squareRoot()
                let z0 = standardNormal(using: &rng), z1 = standardNormal(using: &rng)
                ys[0][m] = p.mean[0] + l00 * z0
                ys[1][m] = p.mean[1] + l10 * z0 + l11 * z1
            }
            let hvi = try Hypervolume.compute(f.y + ys, referencePoint: f.referencePoint) - base
            sum += hvi
            sumSquares += hvi * hvi
        }
        let mean = sum / Double(draws)
        let standardError = ((sumSquares / Double(draws) - mean * mean) / Double(draws)).squareRoot()
        #expect(mean > 1e-3)
        #expect(abs(mc - mean) <= 4 * standardError + 0.003 * mean, "qEHVI \(mc) vs brute force \(mean) ± \(standardError)")
    }

    @Test("qEHVI and qNEHVI gradients agree with central finite differences", arguments: [false, true])
    func gradientsMatchFiniteDifferences(noisy: Bool) throws {
        let f = try AcquisitionFixture(noise: noisy ? 1e-2 : 1e-4)
        let pending = [[0.3, 0.3]]
        let acquisition: HypervolumeAcquisition = noisy
            ? try .qNEHVI(models: f.models, observedX: f.x, referencePoint: f.referencePoint, pending: pending,
                          candidateCount: 2, samples: 64, seed: 5)
            : try .qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint, pending: pending,
                         candidateCount: 2, samples: 64, seed: 5)
        for candidates in [[[0.52, 0.31], [0.73, 0.44]], [[0.15, 0.8], [0.9, 0.2]]] {
            let (value, gradient) = try acquisition.valueAndGradient(candidates)
            #expect(abs(value - (try acquisition.value(candidates))) < 1e-12)
            #expect(value > 0)
            let h = 1e-6
            for a in 0..<2 {
                for c in 0..<2 {
                    var plus = candidates, minus = candidates
                    plus[a][c] += h
                    minus[a][c] -= h
                    let fd = (try acquisition.value(plus) - (try acquisition.value(minus))) / (2 * h)
                    #expect(abs(fd - gradient[a][c]) <= 1e-4 * max(1, abs(fd)) + 1e-3 * abs(fd),
                            "∂/∂x[\(a)][\(c)]: analytic \(gradient[a][c]) vs FD \(fd) (noisy: \(noisy))")
                }
            }
        }
    }

    @Test("A pending point makes its own neighbourhood unattractive and moves the proposal away")
    func pendingPointsRepel() throws {
        let f = try AcquisitionFixture()
        let options = AcquisitionOptimizationOptions(rawSamples: 256, restarts: 4)
        let plain = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                     samples: 128, seed: 1)
        let best = try AcquisitionOptimizer.maximize(plain, options: options, avoiding: f.x, seed: 2)
        let xStar = best.candidates[0]
        #expect(best.value > 0)
        let withPending = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                           pending: [xStar], samples: 128, seed: 1)
        // Sampled jointly with itself, the pending point leaves nothing to gain at the same place.
        #expect(try withPending.value([xStar]) < 1e-3 * best.value)
        let next = try AcquisitionOptimizer.maximize(withPending, options: options, avoiding: f.x + [xStar], seed: 2)
        #expect(AcquisitionOptimizer.distance(next.candidates[0], xStar) > 0.02)
        #expect(next.value < best.value)
        // Same for qNEHVI.
        let noisy = try HypervolumeAcquisition.qNEHVI(models: f.models, observedX: f.x, referencePoint: f.referencePoint,
                                                      pending: [xStar], samples: 64, seed: 1)
        let noisyPlain = try HypervolumeAcquisition.qNEHVI(models: f.models, observedX: f.x, referencePoint: f.referencePoint,
                                                           samples: 64, seed: 1)
        #expect(try noisy.value([xStar]) < 0.05 * (try noisyPlain.value([xStar])))
    }

    @Test("qNEHVI with noise-free models matches qEHVI")
    func qNEHVIReducesToQEHVI() throws {
        // With (nearly) noise-free models the sampled baseline values are the observations, so both agree.
        let f = try AcquisitionFixture(noise: 1e-6)
        let e = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                 samples: 256, seed: 4)
        let n = try HypervolumeAcquisition.qNEHVI(models: f.models, observedX: f.x, referencePoint: f.referencePoint,
                                                  samples: 256, seed: 4)
        #expect(n.conditioningPoints.count <= f.x.count)
        for point in [[0.5, 0.3], [0.1, 0.9]] {
            let a = try e.value([point]), b = try n.value([point])
            #expect(abs(a - b) <= 0.03 * a, "qEHVI \(a) vs qNEHVI \(b)")
        }
    }

    @Test("Boltzmann starts include the best raw sample, are distinct and deterministic")
    func boltzmannStarts() {
        let values = (0..<50).map { Double(($0 * 37) % 50) }
        let a = AcquisitionOptimizer.boltzmannStarts(values, count: 10, seed: 3)
        #expect(a == AcquisitionOptimizer.boltzmannStarts(values, count: 10, seed: 3))
        #expect(a.count == 10 && Set(a).count == 10)
        #expect(a.contains(values.firstIndex(of: 49)!))
        // Higher values are chosen more often than lower ones over many seeds.
        var high = 0, low = 0
        for seed in 0..<200 {
            for i in AcquisitionOptimizer.boltzmannStarts(values, count: 5, seed: UInt64(seed)) {
                if values[i] >= 40 { high += 1 } else if values[i] < 10 { low += 1 }
            }
        }
        #expect(high > 3 * low)
        #expect(AcquisitionOptimizer.boltzmannStarts([0, 0, 0], count: 2, seed: 1).count == 2)
    }

    /// A bump of radius 0.12 around a point on a face of the 8-cube: zero (and flat) everywhere else, like
    /// qEHVI where the GP is sure nothing improves — the situation of ZDT1, whose front lies on a face.
    struct FaceBump: BatchAcquisitionFunction {
        let center = [0.3, 0, 0, 0, 0, 0, 0, 0]
        let radius = 0.12
        var candidateCount: Int { 1 }
        var dimension: Int { 8 }
        func value(_ candidates: [[Double]]) throws -> Double { try valueAndGradient(candidates).value }
        func valueAndGradient(_ candidates: [[Double]]) throws -> (value: Double, gradient: [[Double]]) {
            let x = candidates[0]
            let r2 = zip(x, center).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / (radius * radius)
            guard r2 < 1 else { return (0, [[Double](repeating: 0, count: 8)]) }
            return (1 - r2, [zip(x, center).map { -2 * ($0 - $1) / (radius * radius) }])
        }
    }

    @Test("Raw samples around the incumbents find an optimum on a face that Sobol points never come near")
    func incumbentSamplesReachAFace() throws {
        let options = AcquisitionOptimizationOptions(rawSamples: 512, restarts: 10, concurrent: false)
        // Sobol points alone: every one scores 0, no start has a gradient, nothing is found.
        let blind = try AcquisitionOptimizer.maximize(FaceBump(), options: options, incumbents: [], seed: 1)
        #expect(blind.value == 0)
        // One incumbent on the face, 0.1 from the bump's centre: its perturbations land inside.
        let incumbent = [0.4, 0, 0, 0, 0, 0, 0, 0]
        let found = try AcquisitionOptimizer.maximize(FaceBump(), options: options, incumbents: [incumbent], seed: 1)
        #expect(found.value > 0.999)
        #expect(AcquisitionOptimizer.distance(found.candidates[0], FaceBump().center) < 0.01)
        // Switched off: the same as without incumbents.
        var off = options
        off.incumbentSamples = 0
        #expect(try AcquisitionOptimizer.maximize(FaceBump(), options: off, incumbents: [incumbent], seed: 1).value == 0)
    }

    @Test("Incumbent perturbations: deterministic, inside the cube, often keeping coordinates at a bound")
    func incumbentPerturbations() {
        let incumbents = [[0, 0.5, 1, 0.2], [1, 1, 0, 0.9]]
        let a = AcquisitionOptimizer.perturbations(of: incumbents, count: 400, blocks: 2, sigma: 0.1, seed: 9)
        #expect(a == AcquisitionOptimizer.perturbations(of: incumbents, count: 400, blocks: 2, sigma: 0.1, seed: 9))
        #expect(a.count == 400 && a.allSatisfy { $0.count == 8 && $0.allSatisfy { $0 >= 0 && $0 <= 1 } })
        // Each block is near one incumbent (within 5 σ per coordinate).
        for point in a {
            for block in [Array(point[0..<4]), Array(point[4..<8])] {
                #expect(incumbents.contains { inc in zip(inc, block).allSatisfy { abs($0 - $1) < 0.5 } })
            }
        }
        // A coordinate at a bound stays there about 3/4 of the time (unperturbed ½, clipped ¼).
        let atBound = a.filter { $0[0] == 0 || $0[0] == 1 }.count
        #expect(atBound > 240 && atBound < 360, "\(atBound) of 400")
        #expect(AcquisitionOptimizer.perturbations(of: [], count: 10, blocks: 1, sigma: 0.1, seed: 0).isEmpty)
    }
}
