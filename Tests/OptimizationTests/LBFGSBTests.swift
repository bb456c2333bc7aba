import Foundation
import Testing
@testable import Optimization

@Suite("L-BFGS-B")
struct LBFGSBTests {
    static func rosenbrock(_ x: [Double]) -> (value: Double, gradient: [Double]) {
        var f = 0.0
        var g = [Double](repeating: 0, count: x.count)
        for i in 0..<(x.count - 1) {
            let a = x[i + 1] - x[i] * x[i], b = 1 - x[i]
            f += 100 * a * a + b * b
            g[i] += -400 * x[i] * a - 2 * b
            g[i + 1] += 200 * a
        }
        return (f, g)
    }

    @Test("Rosenbrock inside wide bounds reaches (1, 1)")
    func rosenbrockInterior() throws {
        let r = try LBFGSB.minimize(x0: [-1.2, 1], lower: [-2, -2], upper: [2, 2], options: .init(projectedGradientTolerance: 1e-8),
                                    Self.rosenbrock)
        #expect(abs(r.x[0] - 1) < 1e-4 && abs(r.x[1] - 1) < 1e-4, "\(r)")
        #expect(r.value < 1e-8)
    }

    @Test("Rosenbrock with x₁ ≤ 0.5 stops at the bound (0.5, 0.25), f = 0.25")
    func rosenbrockActiveBound() throws {
        let r = try LBFGSB.minimize(x0: [-1.2, 1], lower: [-2, -2], upper: [0.5, 2], options: .init(projectedGradientTolerance: 1e-8),
                                    Self.rosenbrock)
        #expect(r.x[0] == 0.5)
        #expect(abs(r.x[1] - 0.25) < 1e-5)
        #expect(abs(r.value - 0.25) < 1e-9)
        #expect(r.termination == .projectedGradientSmall || r.termination == .functionChangeSmall)
    }

    @Test("20-dimensional Rosenbrock with unbounded sides")
    func rosenbrockHighDimension() throws {
        let n = 20
        let r = try LBFGSB.minimize(x0: [Double](repeating: -1, count: n), lower: [Double](repeating: -.infinity, count: n),
                                    upper: [Double](repeating: 3, count: n),
                                    options: .init(maxIterations: 2000, maxEvaluations: 5000, projectedGradientTolerance: 1e-7,
                                                   relativeFunctionTolerance: 0), Self.rosenbrock)
        #expect(NaiveReference.maxAbsDifference(r.x, [Double](repeating: 1, count: n)) < 1e-4, "\(r.termination) \(r.x)")
    }

    /// Box-constrained convex quadratic ½xᵀQx + cᵀx; the reference enumerates all 3ⁿ active sets,
    /// solves each reduced system and keeps the best feasible point.
    @Test("convex quadratic with active bounds matches active-set enumeration", arguments: [1, 2, 3, 4, 5])
    func boxQuadratic(seed: UInt64) throws {
        let n = 4
        var rng = SplitMix64(seed: seed)
        let q = NaiveReference.randomSPD(n, shift: 0.2, &rng)
        let c = (0..<n).map { _ in 6 * NaiveReference.uniform(&rng) - 3 }
        let lower = [Double](repeating: -0.5, count: n), upper = [Double](repeating: 0.7, count: n)
        func f(_ x: [Double]) -> Double {
            let qx = NaiveReference.matvec(q, x)
            return 0.5 * zip(x, qx).reduce(0) { $0 + $1.0 * $1.1 } + zip(c, x).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var best = Double.infinity, bestX: [Double] = []
        for code in 0..<Int(pow(3.0, Double(n))) {
            var state = [Int](repeating: 0, count: n), k = code
            for i in 0..<n { state[i] = k % 3; k /= 3 }  // 0 free, 1 lower, 2 upper
            var x = (0..<n).map { state[$0] == 1 ? lower[$0] : (state[$0] == 2 ? upper[$0] : 0) }
            let free = (0..<n).filter { state[$0] == 0 }
            if !free.isEmpty {
                let a = free.map { i in free.map { q[i][$0] } }
                let rhs = free.map { i in -c[i] - (0..<n).filter { state[$0] != 0 }.reduce(0) { $0 + q[i][$1] * x[$1] } }
                let sol = NaiveReference.solveAndLogAbsDet(a, rhs).x
                for (k, i) in free.enumerated() { x[i] = sol[k] }
            }
            if (0..<n).allSatisfy({ x[$0] >= lower[$0] - 1e-12 && x[$0] <= upper[$0] + 1e-12 }), f(x) < best {
                best = f(x); bestX = x
            }
        }
        let r = try LBFGSB.minimize(x0: [Double](repeating: 0, count: n), lower: lower, upper: upper,
                                    options: .init(projectedGradientTolerance: 1e-10, relativeFunctionTolerance: 0)) { x in
            let qx = NaiveReference.matvec(q, x)
            return (f(x), zip(qx, c).map { $0 + $1 })
        }
        #expect(abs(r.value - best) < 1e-10, "\(r.value) vs \(best)")
        #expect(NaiveReference.maxAbsDifference(r.x, bestX) < 1e-6, "\(r.x) vs \(bestX)")
        let activeCount = bestX.enumerated().filter { $0.element == lower[$0.offset] || $0.element == upper[$0.offset] }.count
        #expect(activeCount >= 1, "the case should exercise active bounds")
    }

    @Test("a start at the optimum stops at once; an undefined region is avoided")
    func terminationAndNonFinite() throws {
        let r = try LBFGSB.minimize(x0: [1, 1], lower: [0, 0], upper: [2, 2], Self.rosenbrock)
        #expect(r.iterations == 0 && r.termination == .projectedGradientSmall)
        // f = x − log(x) has its minimum at 1; undefined (∞) for x ≤ 0, which a unit step from 3 would reach.
        let s = try LBFGSB.minimize(x0: [3], lower: [-10], upper: [10]) { x in
            x[0] > 0 ? (x[0] - log(x[0]), [1 - 1 / x[0]]) : (.infinity, [0])
        }
        #expect(abs(s.x[0] - 1) < 1e-4)
    }

    @Test("a variable with equal bounds stays fixed; the iteration limit is honoured")
    func fixedVariableAndLimits() throws {
        let r = try LBFGSB.minimize(x0: [0, 0.3], lower: [-2, 0.3], upper: [2, 0.3], options: .init(projectedGradientTolerance: 1e-9),
                                    Self.rosenbrock)
        #expect(r.x[1] == 0.3)
        // With x₂ = 0.3 fixed, f(x₁) = 100(0.3 − x₁²)² + (1 − x₁)²: check stationarity directly.
        let x1 = r.x[0]
        #expect(abs(-400 * x1 * (0.3 - x1 * x1) - 2 * (1 - x1)) < 1e-6)
        let limited = try LBFGSB.minimize(x0: [-1.2, 1], lower: [-2, -2], upper: [2, 2], options: .init(maxIterations: 3), Self.rosenbrock)
        #expect(limited.iterations == 3 && limited.termination == .maxIterations)
        #expect(limited.value < Self.rosenbrock([-1.2, 1]).value)
    }

    @Test("bad arguments are rejected")
    func badInput() {
        #expect(throws: LBFGSB.InputError.self) { try LBFGSB.minimize(x0: [0], lower: [0, 0], upper: [1]) { _ in (0, [0]) } }
        #expect(throws: LBFGSB.InputError.invalidBounds(index: 0, lower: 1, upper: 0)) {
            try LBFGSB.minimize(x0: [0], lower: [1], upper: [0]) { _ in (0, [0]) }
        }
        #expect(throws: LBFGSB.InputError.self) { try LBFGSB.minimize(x0: [.nan], lower: [0], upper: [1]) { _ in (0, [0]) } }
        #expect(throws: LBFGSB.InputError.self) { try LBFGSB.minimize(x0: [0.5], lower: [0], upper: [1]) { _ in (0, [0, 1]) } }
    }
}
