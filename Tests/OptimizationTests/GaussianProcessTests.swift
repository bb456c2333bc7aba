import Foundation
import Testing
@testable import Optimization

/// Closed-form GP references written out directly from the formulas (paper Eqs. 15–17).
enum GPReference {
    static func matern52(_ a: [Double], _ b: [Double], lengthscales: [Double], outputscale: Double) -> Double {
        var d2 = 0.0
        for k in 0..<a.count { d2 += pow((a[k] - b[k]) / lengthscales[k], 2) }
        let d = d2.squareRoot()
        return outputscale * (1 + 5.0.squareRoot() * d + 5.0 / 3.0 * d2) * exp(-5.0.squareRoot() * d)
    }

    /// Posterior mean and covariance in raw units, from normalization and standardization done here.
    static func posterior(x: [[Double]], y: [Double], lower: [Double], upper: [Double], h: GPHyperparameters,
                          at test: [[Double]]) -> (mean: [Double], cov: [[Double]]) {
        let norm = { (p: [Double]) in (0..<p.count).map { (p[$0] - lower[$0]) / (upper[$0] - lower[$0]) } }
        let xs = x.map(norm), ts = test.map(norm)
        let n = Double(y.count)
        let ym = y.reduce(0, +) / n
        let sd = (y.map { ($0 - ym) * ($0 - ym) }.reduce(0, +) / (n - 1)).squareRoot()
        let ys = y.map { ($0 - ym) / sd }
        let k = { (a: [Double], b: [Double]) in matern52(a, b, lengthscales: h.lengthscales, outputscale: h.outputscale) }
        var kxx = xs.map { a in xs.map { b in k(a, b) } }
        for i in 0..<xs.count { kxx[i][i] += h.noise }
        let alpha = NaiveReference.solveAndLogAbsDet(kxx, ys.map { $0 - h.mean }).x
        var mean: [Double] = [], cov: [[Double]] = []
        for a in ts {
            let ka = xs.map { k($0, a) }
            mean.append(ym + sd * (h.mean + zip(ka, alpha).reduce(0) { $0 + $1.0 * $1.1 }))
            var row: [Double] = []
            for b in ts {
                let kb = xs.map { k($0, b) }
                let solved = NaiveReference.solveAndLogAbsDet(kxx, kb).x
                row.append(sd * sd * (k(a, b) - zip(ka, solved).reduce(0) { $0 + $1.0 * $1.1 }))
            }
            cov.append(row)
        }
        return (mean, cov)
    }

    /// Log marginal likelihood of standardized targets (paper Eq. 17).
    static func logMarginalLikelihood(xs: [[Double]], ys: [Double], h: GPHyperparameters) -> Double {
        var kxx = xs.map { a in xs.map { b in matern52(a, b, lengthscales: h.lengthscales, outputscale: h.outputscale) } }
        for i in 0..<xs.count { kxx[i][i] += h.noise }
        let r = ys.map { $0 - h.mean }
        let (alpha, logDet) = NaiveReference.solveAndLogAbsDet(kxx, r)
        return -0.5 * zip(r, alpha).reduce(0) { $0 + $1.0 * $1.1 } - 0.5 * logDet - 0.5 * Double(ys.count) * log(2 * Double.pi)
    }
}

@Suite("Gaussian process")
struct GaussianProcessTests {
    static func randomHyperparameters(_ d: Int, _ rng: inout SplitMix64) -> GPHyperparameters {
        GPHyperparameters(lengthscales: (0..<d).map { _ in 0.2 + NaiveReference.uniform(&rng) },
                          outputscale: 0.5 + 2 * NaiveReference.uniform(&rng),
                          noise: 0.01 + 0.2 * NaiveReference.uniform(&rng),
                          mean: NaiveReference.uniform(&rng) - 0.5)
    }

    static func randomData(n: Int, d: Int, lower: [Double], upper: [Double], _ rng: inout SplitMix64) -> ([[Double]], [Double]) {
        let x = (0..<n).map { _ in (0..<d).map { lower[$0] + (upper[$0] - lower[$0]) * NaiveReference.uniform(&rng) } }
        let y = x.map { p in sin(p.reduce(0, +)) + 0.3 * p[0] + 0.1 * NaiveReference.uniform(&rng) }
        return (x, y)
    }

    @Test("posterior mean and covariance equal the closed form on tiny data", arguments: [(2, 1), (3, 1), (4, 2), (5, 3)])
    func posteriorClosedForm(n: Int, d: Int) throws {
        var rng = SplitMix64(seed: UInt64(10 * n + d))
        let lower = (0..<d).map { Double($0) - 1 }, upper = (0..<d).map { 2 * Double($0) + 1.5 }
        let (x, y) = Self.randomData(n: n, d: d, lower: lower, upper: upper, &rng)
        let h = Self.randomHyperparameters(d, &rng)
        let test = (0..<3).map { _ in (0..<d).map { lower[$0] + (upper[$0] - lower[$0]) * NaiveReference.uniform(&rng) } }
        let gp = try GaussianProcess(trainingSet: GPTrainingSet(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper),
                                     hyperparameters: h)
        let p = try gp.posterior(at: Matrix(test + [x[0]]))
        let reference = GPReference.posterior(x: x, y: y, lower: lower, upper: upper, h: h, at: test + [x[0]])
        #expect(NaiveReference.maxAbsDifference(p.mean, reference.mean) < 1e-10)
        #expect(NaiveReference.maxAbsDifference(p.covariance.elements, reference.cov.flatMap { $0 }) < 1e-10)
        let marginals = try gp.marginals(at: Matrix(test + [x[0]]))
        #expect(NaiveReference.maxAbsDifference(marginals.mean, reference.mean) < 1e-10)
        #expect(NaiveReference.maxAbsDifference(marginals.variance, (0...3).map { reference.cov[$0][$0] }) < 1e-10)
    }

    @Test("log marginal likelihood and its gradient match the formula and finite differences", arguments: [1, 2, 3, 4])
    func marginalLikelihoodGradient(seed: UInt64) throws {
        var rng = SplitMix64(seed: 40 + seed)
        let d = Int(seed % 3) + 1, n = 6 + Int(seed) * 3
        let lower = [Double](repeating: 0, count: d), upper = [Double](repeating: 2, count: d)
        let (x, y) = Self.randomData(n: n, d: d, lower: lower, upper: upper, &rng)
        let data = try GPTrainingSet(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper)
        let h = Self.randomHyperparameters(d, &rng)
        let (value, gradient) = try data.logMarginalLikelihood(h)
        #expect(abs(value - GPReference.logMarginalLikelihood(xs: data.inputs.rowArrays, ys: data.targets, h: h)) < 1e-10)
        let theta = h.vector, step = 1e-5
        for k in 0..<theta.count {
            var plus = theta, minus = theta
            plus[k] += step; minus[k] -= step
            let fd = (try data.logMarginalLikelihood(GPHyperparameters(vector: plus)).value
                - data.logMarginalLikelihood(GPHyperparameters(vector: minus)).value) / (2 * step)
            #expect(abs(fd - gradient[k]) < 1e-6 * max(1, abs(fd)), "θ[\(k)]: fd \(fd) vs \(gradient[k])")
        }
    }

    @Test("prior log-densities and their log-space derivatives", arguments: [GPPriors.classic, .dimensionScaled(dimension: 5)])
    func priorGradient(priors: GPPriors) throws {
        let h = GPHyperparameters(lengthscales: [0.3, 1.7], outputscale: 2.5, noise: 0.04, mean: 0.2)
        let (_, gradient) = priors.logDensity(h)
        let theta = h.vector, step = 1e-6
        for k in 0..<theta.count {
            var plus = theta, minus = theta
            plus[k] += step; minus[k] -= step
            let fd = (priors.logDensity(try GPHyperparameters(vector: plus)).value
                - priors.logDensity(try GPHyperparameters(vector: minus)).value) / (2 * step)
            #expect(abs(fd - gradient[k]) < 1e-7 * max(1, abs(fd)))
        }
        // Normalization: Gamma(3, 6) integrates to 1 (midpoint rule on (0, 8)).
        let gamma = ScalarPrior.gamma(concentration: 3, rate: 6)
        let integral = stride(from: 0.0005, to: 8, by: 0.001).reduce(0) { $0 + exp(gamma.logDensity($1)) * 0.001 }
        #expect(abs(integral - 1) < 1e-5)
    }

    @Test("posterior pullback matches finite differences of mean and covariance", arguments: [(1, 1), (3, 2), (4, 3)])
    func posteriorPullback(q: Int, d: Int) throws {
        var rng = SplitMix64(seed: UInt64(500 + 7 * q + d))
        let lower = [Double](repeating: -1, count: d), upper = [Double](repeating: 3, count: d)
        let (x, y) = Self.randomData(n: 9, d: d, lower: lower, upper: upper, &rng)
        let gp = try GaussianProcess(trainingSet: GPTrainingSet(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper),
                                     hyperparameters: Self.randomHyperparameters(d, &rng))
        let points = (0..<q).map { _ in (0..<d).map { _ in -1 + 4 * NaiveReference.uniform(&rng) } }
        let gMean = (0..<q).map { _ in NaiveReference.uniform(&rng) - 0.5 }
        let gCov = try Matrix(NaiveReference.randomMatrix(q, q, &rng))  // not symmetric on purpose
        func loss(_ p: [[Double]]) throws -> Double {
            let post = try gp.posterior(at: Matrix(p))
            return zip(post.mean, gMean).reduce(0) { $0 + $1.0 * $1.1 }
                + zip(post.covariance.elements, gCov.elements).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grad = try gp.posterior(at: Matrix(points)).pullback(meanGradient: gMean, covarianceGradient: gCov)
        let step = 1e-6
        for a in 0..<q {
            for c in 0..<d {
                var plus = points, minus = points
                plus[a][c] += step; minus[a][c] -= step
                let fd = (try loss(plus) - loss(minus)) / (2 * step)
                #expect(abs(fd - grad[a, c]) < 1e-6 * max(1, abs(fd)), "x[\(a)][\(c)]: fd \(fd) vs \(grad[a, c])")
            }
        }
    }

    @Test("samples' gradient through the posterior Cholesky matches finite differences")
    func choleskyChain() throws {
        var rng = SplitMix64(seed: 77)
        let d = 2, q = 3
        let lower = [0.0, 0.0], upper = [1.0, 1.0]
        let (x, y) = Self.randomData(n: 12, d: d, lower: lower, upper: upper, &rng)
        let gp = try GaussianProcess(trainingSet: GPTrainingSet(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper),
                                     hyperparameters: GPHyperparameters(lengthscales: [0.4, 0.6], outputscale: 1.3, noise: 0.01, mean: 0))
        let points = (0..<q).map { _ in (0..<d).map { _ in NaiveReference.uniform(&rng) } }
        let eps = (0..<q).map { _ in NaiveReference.uniform(&rng) * 2 - 1 }
        let weights = (0..<q).map { _ in NaiveReference.uniform(&rng) + 0.5 }
        // L(X) = Σ_a w_a · (μ(X) + chol(Σ(X))·ε)_a — one reparameterized sample, weighted.
        func loss(_ p: [[Double]]) throws -> Double {
            let post = try gp.posterior(at: Matrix(p))
            let l = try post.covarianceCholesky(policy: .none).lower
            return (0..<q).reduce(0) { s, a in s + weights[a] * (post.mean[a] + (0...a).reduce(0) { $0 + l[a, $1] * eps[$1] }) }
        }
        let post = try gp.posterior(at: Matrix(points))
        let chol = try post.covarianceCholesky(policy: .none)
        var lBar = Matrix(rows: q, columns: q)
        for a in 0..<q { for b in 0...a { lBar[a, b] = weights[a] * eps[b] } }
        let sigmaBar = try chol.backward(lowerGradient: lBar)
        let grad = try post.pullback(meanGradient: weights, covarianceGradient: sigmaBar)
        let step = 1e-6
        for a in 0..<q {
            for c in 0..<d {
                var plus = points, minus = points
                plus[a][c] += step; minus[a][c] -= step
                let fd = (try loss(plus) - loss(minus)) / (2 * step)
                #expect(abs(fd - grad[a, c]) < 1e-5 * max(1, abs(fd)), "x[\(a)][\(c)]: fd \(fd) vs \(grad[a, c])")
            }
        }
    }

    /// f(x) = sin(3x₁) + cos(2x₂)·x₁ on [−1, 2] × [0, 3] (not the unit cube, to exercise normalization).
    static func smooth(_ p: [Double]) -> Double { sin(3 * p[0]) + cos(2 * p[1]) * p[0] }

    @Test("a fit on a smooth 2-D function predicts held-out points and is deterministic for a seed")
    func fitRecoversSmoothFunction() throws {
        var rng = SplitMix64(seed: 2024)
        let lower = [-1.0, 0.0], upper = [2.0, 3.0]
        // Training: a 7 × 7 grid of cell centres; held out: 200 random points in the inner 90 % of the box.
        var x: [[Double]] = []
        for i in 0..<7 {
            for j in 0..<7 {
                let u = (Double(i) + 0.5) / 7, v = (Double(j) + 0.5) / 7
                x.append([lower[0] + 3 * u, lower[1] + 3 * v])
            }
        }
        let y = x.map(Self.smooth)
        var test: [[Double]] = []
        for _ in 0..<200 {
            let u = 0.05 + 0.9 * NaiveReference.uniform(&rng), v = 0.05 + 0.9 * NaiveReference.uniform(&rng)
            test.append([lower[0] + 3 * u, lower[1] + 3 * v])
        }
        let truth = test.map(Self.smooth)
        let data = try GPTrainingSet(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper)
        let (gp, report) = try GaussianProcess.fit(data, seed: 5)
        let predicted = try gp.posterior(at: Matrix(test)).mean
        let rmse = (zip(predicted, truth).reduce(0) { $0 + pow($1.0 - $1.1, 2) } / Double(test.count)).squareRoot()
        let sd = data.outputStandardDeviation
        #expect(rmse < 0.05 * sd, "held-out RMSE \(rmse), output sd \(sd)")
        // The fit maximizes the log posterior: no start does better, and it beats the prior-mode start.
        let priors = GPPriors.classic
        let start = GPHyperparameters(lengthscales: [1.0 / 3, 1.0 / 3], outputscale: 1 / 0.15, noise: 1e-2, mean: 0)
        let startValue = try data.logMarginalLikelihood(start).value + priors.logDensity(start).value
        #expect(report.logPosterior > startValue)
        #expect(abs(report.logPosterior - (gp.logMarginalLikelihood + priors.logDensity(gp.hyperparameters).value)) < 1e-9)
        // Same seed, same result, bit for bit.
        let (again, _) = try GaussianProcess.fit(data, seed: 5)
        #expect(again.hyperparameters == gp.hyperparameters)
    }

    @Test("ARD: an irrelevant input gets a much longer length-scale")
    func ardRelevance() throws {
        var rng = SplitMix64(seed: 99)
        let x = (0..<30).map { _ in [NaiveReference.uniform(&rng), NaiveReference.uniform(&rng)] }
        let y = x.map { sin(6 * $0[0]) }
        let (gp, _) = try GaussianProcess.fit(
            GPTrainingSet(x: Matrix(x), y: y, lowerBounds: [0, 0], upperBounds: [1, 1]), seed: 1)
        let l = gp.hyperparameters.lengthscales
        #expect(l[1] > 5 * l[0], "length-scales \(l)")
    }

    @Test("independent GPs: concurrent fit equals serial fit and per-objective fits")
    func independentModels() throws {
        var rng = SplitMix64(seed: 3)
        let x = (0..<15).map { _ in [NaiveReference.uniform(&rng), NaiveReference.uniform(&rng), NaiveReference.uniform(&rng)] }
        let y = try Matrix(x.map { [Self.smooth($0), $0[2] * $0[1] - $0[0], exp(-$0[0])] })
        let lower = [0.0, 0, 0], upper = [1.0, 1, 1]
        let concurrent = try IndependentGPs.fit(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper, seed: 8)
        let serial = try IndependentGPs.fit(x: Matrix(x), y: y, lowerBounds: lower, upperBounds: upper, seed: 8, concurrently: false)
        #expect(concurrent.hyperparameters == serial.hyperparameters)
        let single = try GaussianProcess.fit(
            GPTrainingSet(x: Matrix(x), y: (0..<15).map { y[$0, 1] }, lowerBounds: lower, upperBounds: upper), seed: 9)
        #expect(single.model.hyperparameters == concurrent.hyperparameters[1])
        let posteriors = try concurrent.posterior(at: Matrix([[0.5, 0.5, 0.5]]))
        #expect(posteriors.count == 3 && posteriors.allSatisfy { $0.count == 1 })
    }

    @Test("bad data gives errors that name the field")
    func badInput() throws {
        #expect(throws: GPError.invalidInput("y has 1 values, x has 2 rows")) {
            try GPTrainingSet(x: Matrix([[0.1], [0.2]]), y: [1], lowerBounds: [0], upperBounds: [1])
        }
        #expect(throws: GPError.self) { try GPTrainingSet(x: Matrix([[0.1]]), y: [1], lowerBounds: [1], upperBounds: [1]) }
        #expect(throws: GPError.self) { try GPTrainingSet(x: Matrix([[Double.nan]]), y: [1], lowerBounds: [0], upperBounds: [1]) }
        #expect(throws: GPError.self) { try GPTrainingSet(x: Matrix(rows: 0, columns: 1), y: [], lowerBounds: [0], upperBounds: [1]) }
        let data = try GPTrainingSet(x: Matrix([[0.1], [0.7]]), y: [1, 2], lowerBounds: [0], upperBounds: [1])
        #expect(throws: GPError.self) {
            try GaussianProcess(trainingSet: data, hyperparameters: GPHyperparameters(lengthscales: [1, 1], outputscale: 1, noise: 0.1, mean: 0))
        }
        let gp = try GaussianProcess(trainingSet: data, hyperparameters: GPHyperparameters(lengthscales: [0.3], outputscale: 1, noise: 0.1, mean: 0))
        #expect(throws: GPError.self) { try gp.posterior(at: Matrix([[0.1, 0.2]])) }
        #expect(throws: GPError.self) { try gp.posterior(at: Matrix([[0.1]])).pullback(meanGradient: [1, 2], covarianceGradient: Matrix(rows: 1, columns: 1)) }
    }
}

@Suite("Gaussian process edge cases")
struct GaussianProcessEdgeCaseTests {
    @Test("one observation, duplicate inputs and constant outputs fit without error")
    func degenerateData() throws {
        let single = try GaussianProcess.fit(GPTrainingSet(x: Matrix([[0.3, 0.4]]), y: [2.5], lowerBounds: [0, 0], upperBounds: [1, 1]))
        let p1 = try single.model.posterior(at: Matrix([[0.3, 0.4]]))
        #expect(p1.mean[0].isFinite && p1.covariance[0, 0] >= 0)

        let duplicates = try GPTrainingSet(x: Matrix([[0.2], [0.2], [0.2], [0.9]]), y: [1, 1.2, 0.8, 3], lowerBounds: [0], upperBounds: [1])
        let fitted = try GaussianProcess.fit(duplicates)
        #expect(fitted.model.hyperparameters.noise > 1e-4, "repeated x with different y implies noise")
        let p2 = try fitted.model.posterior(at: Matrix([[0.2]]))
        #expect(abs(p2.mean[0] - 1) < 0.2)

        let constant = try GPTrainingSet(x: Matrix([[0.1], [0.5], [0.9]]), y: [4, 4, 4], lowerBounds: [0], upperBounds: [1])
        #expect(constant.outputStandardDeviation == 1)
        let flat = try GaussianProcess.fit(constant)
        #expect(abs(try flat.model.posterior(at: Matrix([[0.3]])).mean[0] - 4) < 1e-3)
    }

    @Test("warm start is used and the joint posterior at training points factors with jitter")
    func warmStartAndJointPosterior() throws {
        var rng = SplitMix64(seed: 12)
        let x = (0..<20).map { _ in [NaiveReference.uniform(&rng), NaiveReference.uniform(&rng)] }
        let data = try GPTrainingSet(x: Matrix(x), y: x.map { sin(4 * $0[0]) + $0[1] }, lowerBounds: [0, 0], upperBounds: [1, 1])
        let first = try GaussianProcess.fit(data, seed: 1)
        let warm = try GaussianProcess.fit(data, options: GPFitOptions(randomRestarts: 0), seed: 2,
                                           warmStart: first.model.hyperparameters)
        #expect(warm.report.starts == 2)
        #expect(warm.report.logPosterior >= first.report.logPosterior - 1e-6)
        // qNEHVI-style joint posterior at [observed; candidates]: nearly singular, factors with jitter.
        let joint = try first.model.posterior(at: Matrix(x + [[0.5, 0.5], [0.25, 0.75]]))
        let chol = try joint.covarianceCholesky()
        #expect(chol.dimension == 22)
    }
}
