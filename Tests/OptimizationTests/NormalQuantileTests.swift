import Testing
@testable import Optimization

@Suite struct NormalQuantileTests {
    /// (p, Φ⁻¹(p)) from scipy 1.17.1 `scipy.special.ndtri` (Tests/OptimizationTests/Scripts/make_sobol_fixtures.py).
    static let scipyQuantiles: [(Double, Double)] = [
        (1e-300, -37.0470962993612), (1e-20, -9.262340089798409), (1e-10, -6.361340902404056),
        (0.001, -3.090232306167813), (0.02425, -1.972961051311885), (0.024, -1.977368428181947),
        (0.1, -1.2815515655446004), (0.3, -0.5244005127080409), (0.5, 0.0), (0.7, 0.5244005127080407),
        (0.975, 1.959963984540054), (0.999, 3.090232306167813), (1 - 1e-10, 6.361340889697422),
    ]

    @Test func quantilesMatchScipy() {
        for (p, expected) in Self.scipyQuantiles {
            let value = StandardNormal.quantile(p)
            #expect(abs(value - expected) <= 4e-15 * max(1, abs(expected)), "p = \(p): \(value) vs \(expected)")
        }
    }

    @Test func quantileInvertsTheCDF() {
        var x = -8.0
        while x <= 8 {
            let p = StandardNormal.cdf(x)
            let back = StandardNormal.quantile(p)
            // p itself carries a rounding error of up to ~2.3e-16·p, which moves x by that over φ(x): in the
            // upper tail (p near 1) this, not the quantile, limits what can be recovered.
            let tolerance = 2e-13 * max(1, abs(x)) + 2.3e-16 * p / StandardNormal.density(x)
            #expect(abs(back - x) <= tolerance, "x = \(x): \(back)")
            x += 0.173
        }
    }

    @Test func edgesAndSymmetry() {
        #expect(StandardNormal.quantile(0) == -.infinity)
        #expect(StandardNormal.quantile(1) == .infinity)
        #expect(StandardNormal.quantile(-0.1).isNaN)
        #expect(StandardNormal.quantile(1.5).isNaN)
        #expect(StandardNormal.quantile(.nan).isNaN)
        // The smallest subnormal, where φ underflows and the refinement is skipped: scipy's ndtri(5e-324)
        // is −38.467405617144344.
        let deepest = StandardNormal.quantile(Double.leastNonzeroMagnitude)
        #expect(abs(deepest + 38.467405617144344) < 1e-7, "\(deepest)")
        for p in [0.25, 0.125, 0.375, 1.0 / 1024, 0x1p-40] {  // 1 − p is exact for these
            #expect(StandardNormal.quantile(p) == -StandardNormal.quantile(1 - p))
        }
        #expect(abs(StandardNormal.density(0) - 0.3989422804014327) < 1e-16)
        #expect(abs(StandardNormal.cdf(1.959963984540054) - 0.975) < 1e-15)
    }
}
