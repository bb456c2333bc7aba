import Foundation
import Testing
@testable import Optimization

/// fatplus(x; τ) by its definition, in the linear domain (the reference for `FatSoftplus.log`); softplus
/// as max(u, 0) + log1p(e^−|u|) so that it does not overflow.
private func fatplusDirect(_ x: Double, _ tau: Double) -> Double {
    let u = x / tau
    return tau * (max(u, 0) + log1p(exp(-abs(u))) + FatSoftplus.alpha / (1 + u * u))
}

/// A random M = 2 or 3 front above the reference point 0 and its non-dominated cells.
private func randomCells(objectives m: Int, points n: Int, seed: UInt64) throws -> (front: [[Double]], cells: [HyperRectangle]) {
    var rng = SplitMix64(seed: seed)
    let front = (0..<n).map { _ in (0..<m).map { _ in 0.1 + uniformOpen(using: &rng) } }
    return (front, try BoxDecomposition.nonDominatedCells(front: front, referencePoint: [Double](repeating: 0, count: m)))
}

@Suite("Log-smoothed hypervolume improvement and qLogEHVI")
struct LogAcquisitionTests {
    @Test("log fatplus matches its definition, its derivative finite differences, and tends to max(0, x)")
    func fatSoftplus() {
        for tau in [1e-6, 1e-2, 1.0] {
            for u in [-1e4, -300.0, -41, -39, -5, -0.3, 0, 0.7, 12, 800] {
                let x = u * tau
                let (value, derivative) = FatSoftplus.log(x, temperature: tau)
                #expect(abs(value - log(fatplusDirect(x, tau))) <= 1e-10 * max(1, abs(value)), "τ \(tau), u \(u)")
                let h = 1e-6 * max(tau, abs(x))
                let fd = (FatSoftplus.log(x + h, temperature: tau).value - FatSoftplus.log(x - h, temperature: tau).value) / (2 * h)
                #expect(abs(fd - derivative) <= 1e-5 * abs(derivative) + 1e-9 / tau, "τ \(tau), u \(u): \(derivative) vs FD \(fd)")
                #expect(derivative > 0 || u == 0 || u > 0 && derivative >= 0, "increasing")
            }
        }
        // Increasing on a fine grid and → max(0, x) as τ → 0.
        var previous = -Double.infinity
        for k in -400...400 {
            let v = FatSoftplus.log(Double(k) * 0.01, temperature: 0.05).value
            #expect(v > previous)
            previous = v
        }
        for x in [-0.5, 0.25, 2.0] {
            let small = exp(FatSoftplus.log(x, temperature: 1e-9).value)
            #expect(abs(small - max(0, x)) <= 1e-8)
        }
    }

    @Test("Smoothed HVI equals the exact union volume of fat-softplus boxes per cell (independent hypervolume)",
          arguments: [(2, 1), (2, 3), (3, 2)])
    func smoothedMatchesUnionOfBoxes(objectives m: Int, q: Int) throws {
        let (_, cells) = try randomCells(objectives: m, points: 6, seed: UInt64(10 * m + q))
        var rng = SplitMix64(seed: 77)
        for tau in [1e-3, 0.05] {
            for _ in 0..<5 {
                let points = (0..<q).map { _ in (0..<m).map { _ in -0.2 + 1.4 * uniformOpen(using: &rng) } }
                let smoothed = try BoxDecomposition.logSmoothedHypervolumeImprovement(of: points, cells: cells, temperature: tau)
                var reference = 0.0
                for cell in cells {
                    let sides = points.map { p in (0..<m).map { fatplusDirect(min(p[$0], cell.upper[$0]) - cell.lower[$0], tau) } }
                    reference += try Hypervolume.compute(sides, referencePoint: [Double](repeating: 0, count: m))
                }
                #expect(abs(smoothed.value - log(reference)) <= 1e-9, "log \(smoothed.value) vs union volume log \(log(reference))")
            }
        }
    }

    @Test("As τ → 0 the smoothed log HVI tends to log of the exact HVI; where HVI = 0 it stays finite")
    func smallTemperatureLimit() throws {
        for (m, q) in [(2, 1), (2, 2), (3, 3)] {
            let (front, cells) = try randomCells(objectives: m, points: 7, seed: UInt64(m * q))
            var rng = SplitMix64(seed: 5)
            var improving = 0, dominated = 0
            for _ in 0..<40 {
                let points = (0..<q).map { _ in (0..<m).map { _ in 1.3 * uniformOpen(using: &rng) } }
                let exact = try BoxDecomposition.hypervolumeImprovement(of: points, cells: cells)
                let brute = try Hypervolume.compute(front + points, referencePoint: [Double](repeating: 0, count: m))
                    - (try Hypervolume.compute(front, referencePoint: [Double](repeating: 0, count: m)))
                #expect(abs(exact - brute) <= 1e-12)
                let smoothed = try BoxDecomposition.logSmoothedHypervolumeImprovement(of: points, cells: cells, temperature: 1e-10)
                #expect(smoothed.value.isFinite)
                if exact > 1e-6 {
                    improving += 1
                    #expect(abs(exp(smoothed.value) - exact) <= 1e-7 + 1e-6 * exact, "exact \(exact) vs \(exp(smoothed.value))")
                } else if exact == 0 {
                    dominated += 1
                    #expect(exp(smoothed.value) < 1e-9)
                }
            }
            #expect(improving > 3 && dominated > 0, "M \(m), q \(q): \(improving) improving, \(dominated) dominated")
        }
    }

    @Test("Smoothed log HVI gradient agrees with central finite differences, also where HVI = 0")
    func smoothedGradient() throws {
        let (_, cells) = try randomCells(objectives: 2, points: 5, seed: 3)
        for points in [[[0.5, 0.9], [1.0, 0.3]], [[0.05, 0.02], [0.3, -0.4]], [[0.8, 0.7]]] {
            let tau = 1e-2
            let r = try BoxDecomposition.logSmoothedHypervolumeImprovement(of: points, cells: cells, temperature: tau)
            for i in points.indices {
                for m in 0..<2 {
                    var plus = points, minus = points
                    let h = 1e-6
                    plus[i][m] += h
                    minus[i][m] -= h
                    let fd = (try BoxDecomposition.logSmoothedHypervolumeImprovement(of: plus, cells: cells, temperature: tau).value
                        - (try BoxDecomposition.logSmoothedHypervolumeImprovement(of: minus, cells: cells, temperature: tau).value)) / (2 * h)
                    #expect(abs(fd - r.gradient[i][m]) <= 1e-5 * max(1, abs(fd)), "∂/∂y[\(i)][\(m)]: \(r.gradient[i][m]) vs FD \(fd)")
                }
            }
        }
    }

    @Test("qLogEHVI tends to log qEHVI (scaled units) as τ → 0, with and without pending points", arguments: [1, 2])
    func logAcquisitionMatchesExact(q: Int) throws {
        let f = try AcquisitionFixture()
        for pending in [[], [[0.3, 0.3]]] as [[[Double]]] {
            let exact = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                         pending: pending, candidateCount: q, samples: 256, seed: 9)
            let smoothed = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                            pending: pending, candidateCount: q, samples: 256, seed: 9,
                                                            logTemperature: 1e-10)
            let volumeUnit = smoothed.objectiveScales.reduce(1, *)
            #expect(volumeUnit != 1)
            for candidates in [[[0.5, 0.3], [0.95, 0.05]], [[0.25, 0.1], [0.4, 0.6]]] {
                let c = Array(candidates.prefix(q))
                let e = try exact.value(c)
                let l = try smoothed.value(c)
                #expect(e > 1e-4)
                #expect(abs(exp(l) * volumeUnit - e) <= 1e-6 * e, "qEHVI \(e) vs exp(qLogEHVI)·unit \(exp(l) * volumeUnit)")
            }
        }
    }

    @Test("qLogEHVI and qLogNEHVI gradients agree with central finite differences", arguments: [false, true])
    func logAcquisitionGradient(noisy: Bool) throws {
        let f = try AcquisitionFixture(noise: noisy ? 1e-2 : 1e-4)
        let tau = 1e-3
        let acquisition: HypervolumeAcquisition = noisy
            ? try .qNEHVI(models: f.models, observedX: f.x, referencePoint: f.referencePoint, pending: [[0.3, 0.3]],
                          candidateCount: 2, samples: 64, seed: 5, logTemperature: tau)
            : try .qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint, pending: [[0.3, 0.3]],
                         candidateCount: 2, samples: 64, seed: 5, logTemperature: tau)
        for candidates in [[[0.52, 0.31], [0.73, 0.44]], [[0.15, 0.8], [0.9, 0.2]]] {
            let (value, gradient) = try acquisition.valueAndGradient(candidates)
            #expect(abs(value - (try acquisition.value(candidates))) < 1e-12)
            let h = 1e-6
            for a in 0..<2 {
                for c in 0..<2 {
                    var plus = candidates, minus = candidates
                    plus[a][c] += h
                    minus[a][c] -= h
                    let fd = (try acquisition.value(plus) - (try acquisition.value(minus))) / (2 * h)
                    #expect(abs(fd - gradient[a][c]) <= 1e-4 * max(1, abs(fd)),
                            "∂/∂x[\(a)][\(c)]: analytic \(gradient[a][c]) vs FD \(fd) (noisy: \(noisy))")
                }
            }
        }
    }

    @Test("Where qEHVI is exactly 0 (confidently dominated), qLogEHVI is finite and its gradient leads to improvement")
    func logAcquisitionInformativeWhereFlat() throws {
        let f = try AcquisitionFixture()
        let exact = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint, seed: 2)
        let smoothed = try HypervolumeAcquisition.qEHVI(models: f.models, observedY: f.y, referencePoint: f.referencePoint,
                                                        seed: 2, logTemperature: HypervolumeAcquisition.defaultLogTemperature)
        // An observed, dominated input: the posterior there is (nearly) the observation, nothing improves.
        let front = Set(try Pareto.nonDominatedIndices(f.y))
        let flat = try f.x.indices.filter { !front.contains($0) }.map { [f.x[$0]] }.filter { try exact.valueAndGradient($0).value == 0 }
        #expect(!flat.isEmpty, "the fixture should have a dominated observed point with qEHVI = 0")
        for start in flat {
            let e = try exact.valueAndGradient(start)
            #expect(e.gradient[0].allSatisfy { $0 == 0 }, "qEHVI is flat there")
            let (value, gradient) = try smoothed.valueAndGradient(start)
            #expect(value.isFinite)
            let norm = (gradient[0][0] * gradient[0][0] + gradient[0][1] * gradient[0][1]).squareRoot()
            #expect(norm > 0)
            // A short step along the gradient raises the log value.
            let step = [(0..<2).map { min(1, max(0, start[0][$0] + 1e-3 * gradient[0][$0] / norm)) }]
            #expect(try smoothed.value(step) > value)
        }
        // The optimizer started among flat raw samples reaches a point with positive qEHVI.
        let best = try AcquisitionOptimizer.maximize(smoothed, options: AcquisitionOptimizationOptions(rawSamples: 64, restarts: 3),
                                                     avoiding: f.x, seed: 4)
        #expect(try exact.value(best.candidates) > 0)
    }
}
