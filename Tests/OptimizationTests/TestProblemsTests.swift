import Foundation
import Testing
@testable import Optimization

@Suite struct TestProblemsTests {
    @Test func valuesAtKnownPoints() throws {
        let bc = BraninCurrin()
        // Branin's global minimum 0.397887357729738 at (π, 2.275), i.e. u = ((π + 5)/15, 2.275/15).
        let atMinimum = try bc.evaluate([(Double.pi + 5) / 15, 2.275 / 15])
        #expect(abs(atMinimum[0] + 0.397887357729738) < 1e-12)
        // Currin at (½, ½): (1 − e^{−1}) · 1868.5 / 159.5; at u₁ = 0 its limit 60 / 20.
        let center = try bc.evaluate([0.5, 0.5])
        #expect(abs(center[1] + (1 - exp(-1)) * 1868.5 / 159.5) < 1e-12)
        #expect(try bc.evaluate([0, 0])[1] == -3)

        let x = [0.25, 0, 0, 0]
        #expect(try ZDT(.zdt1, dimension: 4).evaluate(x) == [-0.25, -0.5])
        #expect(try ZDT(.zdt2, dimension: 4).evaluate(x) == [-0.25, -0.9375])
        let zdt3 = try ZDT(.zdt3, dimension: 4).evaluate([0.25, 0, 0, 0])
        #expect(abs(zdt3[1] + (1 - 0.5 - 0.25 * sin(2.5 * Double.pi))) < 1e-15)  // = −0.25
        // g = 1 + 9/(d−1)·Σ = 10 at x = 1: f₂ = 10 (1 − √(1/10)).
        let corner = try ZDT(.zdt1, dimension: 3).evaluate([1, 1, 1])
        #expect(abs(corner[1] + (10 - 10.0.squareRoot())) < 1e-12)

        let half = [Double](repeating: 0.5, count: 6)
        let dtlz1 = try DTLZ(.dtlz1, dimension: 6, objectives: 3).evaluate(half)
        #expect(dtlz1.map { abs($0) } == [0.125, 0.125, 0.25].map { abs($0) } && dtlz1.allSatisfy { $0 < 0 })
        let dtlz2 = try DTLZ(.dtlz2, dimension: 6, objectives: 3).evaluate(half)
        #expect(zip(dtlz2, [-0.5, -0.5, -0.5.squareRoot()]).allSatisfy { abs($0 - $1) < 1e-15 })
        // Off the front, DTLZ1's g = 100 (k + Σ((x−½)² − cos 20π(x−½))): x = 0 distance variables give
        // (x−½)² = ¼ and cos(−10π) = 1 per variable.
        let off = try DTLZ(.dtlz1, dimension: 4, objectives: 2).evaluate([0.5, 0, 0, 0])
        #expect(abs(off[0] + 0.5 * (1 + 100 * (3 + 3 * (0.25 - 1))) * 0.5) < 1e-9)
    }

    /// Hypervolume of evaluated points after non-dominated filtering.
    static func sampledHypervolume(_ problem: any MultiObjectiveTestProblem, _ xs: [[Double]]) throws -> Double {
        let ys = try xs.map { try problem.evaluate($0) }
        return try Hypervolume.compute(ys, referencePoint: problem.referencePoint)
    }

    @Test func zdtMaxHypervolumesFromSampledFronts() throws {
        for (variant, count, tolerance) in [(ZDT.Variant.zdt1, 2001, 1e-3), (.zdt2, 2001, 1e-3), (.zdt3, 20001, 1e-4)] {
            let problem = try ZDT(variant, dimension: 5)
            // The true front: x₂…x_d = 0 (g = 1).
            let xs = (0..<count).map { [Double]([Double($0) / Double(count - 1), 0, 0, 0, 0]) }
            let sampled = try Self.sampledHypervolume(problem, xs)
            let maximum = try #require(problem.maxHypervolume)
            #expect(sampled <= maximum && sampled > maximum - tolerance, "\(problem.name): \(sampled) vs \(maximum)")
        }
        #expect(try ZDT(.zdt1, dimension: 2).maxHypervolume == 120 + 2.0 / 3)
    }

    @Test func dtlzMaxHypervolumesFromSampledFronts() throws {
        // M = 2: the front is x₁ ∈ [0, 1] with distance variables ½.
        for variant in [DTLZ.Variant.dtlz1, .dtlz2] {
            let problem = try DTLZ(variant, dimension: 5, objectives: 2)
            let xs = (0..<2001).map { [Double($0) / 2000, 0.5, 0.5, 0.5, 0.5] }
            let sampled = try Self.sampledHypervolume(problem, xs)
            let maximum = try #require(problem.maxHypervolume)
            #expect(sampled <= maximum && sampled > maximum - 1e-3, "\(problem.name) M=2: \(sampled) vs \(maximum)")
            if variant == .dtlz1 {
                // BoTorch 0.18.1 lists 400² − 1/2² for DTLZ1 (M = 2): front points already do better.
                #expect(sampled > 160_000 - 0.25 + 0.1)
            }
        }
        // M = 3: a 150 × 150 grid over (x₁, x₂); the sampled front misses O(h) of the volume.
        for variant in [DTLZ.Variant.dtlz1, .dtlz2] {
            let problem = try DTLZ(variant, dimension: 5, objectives: 3)
            var xs: [[Double]] = []
            for i in 0...149 {
                for j in 0...149 { xs.append([Double(i) / 149, Double(j) / 149, 0.5, 0.5, 0.5]) }
            }
            let sampled = try Self.sampledHypervolume(problem, xs)
            let maximum = try #require(problem.maxHypervolume)
            #expect(sampled <= maximum && sampled > maximum - 0.01, "\(problem.name) M=3: \(sampled) vs \(maximum)")
        }
        // Closed forms: DTLZ1 400^M − ½^M/M!, DTLZ2 1.1^M − (π/6 for M = 3).
        #expect(try DTLZ(.dtlz1, dimension: 3, objectives: 2).maxHypervolume == 160_000 - 0.125)
        let dtlz2 = try #require(try DTLZ(.dtlz2, dimension: 4, objectives: 3).maxHypervolume)
        #expect(abs(dtlz2 - (1.331 - Double.pi / 6)) < 1e-14)
    }

    @Test func braninCurrinSampledFrontExceedsBotorchsListedValue() throws {
        // Feasible points near the Pareto set: the edge u₁ = 1 and the curve where the objectives' gradients
        // are parallel (Jacobian determinant 0, found by bisection in u₁ for each u₀). Their hypervolume is a
        // lower bound of the true maximum; it exceeds the value BoTorch lists.
        func determinant(_ u0: Double, _ u1: Double) -> Double {
            let h = 1e-6
            let b0 = (BraninCurrin.branin([u0 + h, u1]) - BraninCurrin.branin([u0 - h, u1])) / (2 * h)
            let b1 = (BraninCurrin.branin([u0, u1 + h]) - BraninCurrin.branin([u0, u1 - h])) / (2 * h)
            let c0 = (BraninCurrin.currin([u0 + h, u1]) - BraninCurrin.currin([u0 - h, u1])) / (2 * h)
            let c1 = (BraninCurrin.currin([u0, u1 + h]) - BraninCurrin.currin([u0, u1 - h])) / (2 * h)
            return b0 * c1 - b1 * c0
        }
        var xs = (0...2000).map { [0.2 * Double($0) / 2000, 1.0] }
        for i in 0...2000 {
            let u0 = 0.04 + 0.16 * Double(i) / 2000
            var low = 0.5
            var high = 1.0
            guard determinant(u0, low) * determinant(u0, high) <= 0 else { continue }
            for _ in 0..<50 {
                let mid = 0.5 * (low + high)
                if determinant(u0, low) * determinant(u0, mid) <= 0 { high = mid } else { low = mid }
            }
            xs.append([u0, 0.5 * (low + high)])
        }
        let problem = BraninCurrin()
        let sampled = try Self.sampledHypervolume(problem, xs)
        let maximum = try #require(problem.maxHypervolume)
        #expect(sampled > BraninCurrin.botorchListedMaxHypervolume + 0.01, "sampled \(sampled)")
        #expect(sampled <= maximum, "sampled \(sampled) vs \(maximum)")
    }

    @Test func factoryAndBadInput() throws {
        #expect(try TestProblems.make(name: "zdt2").dimension == 30)
        #expect(try TestProblems.make(name: "dtlz2", objectives: 3).dimension == 12)
        #expect(try TestProblems.make(name: "dtlz1").dimension == 6)
        #expect(try TestProblems.make(name: "branin-currin").referencePoint == [-18, -6])
        #expect(throws: TestProblemError.unknownProblem("zdt9")) { try TestProblems.make(name: "zdt9") }
        #expect(throws: TestProblemError.self) { try TestProblems.make(name: "branin-currin", dimension: 3) }
        #expect(throws: TestProblemError.self) { try DTLZ(.dtlz2, dimension: 2, objectives: 3) }
        #expect(throws: TestProblemError.dimensionMismatch(problem: "zdt1", expected: 3, found: 2)) {
            try ZDT(.zdt1, dimension: 3).evaluate([0.1, 0.2])
        }
        #expect(throws: TestProblemError.outOfBounds(problem: "branin-currin", index: 1, value: 1.5)) {
            try BraninCurrin().evaluate([0.5, 1.5])
        }
        #expect(throws: TestProblemError.self) { try BraninCurrin().evaluate([.nan, 0.5]) }
    }
}
