import Foundation

/// The standard normal distribution N(0, 1): density, CDF and quantile (inverse CDF) in Double precision.
public enum StandardNormal {
    /// φ(x) = exp(−x²/2) / √(2π).
    public static func density(_ x: Double) -> Double {
        exp(-0.5 * x * x) / (2.0 * Double.pi).squareRoot()
    }

    /// Φ(x) = erfc(−x/√2) / 2, accurate in both tails (no cancellation for x ≪ 0).
    public static func cdf(_ x: Double) -> Double {
        0.5 * erfc(-x / 2.0.squareRoot())
    }

    /// Φ⁻¹(p): Acklam's rational approximation (relative error < 1.2e-9) refined by one Halley step
    /// on Φ(x) − p using `erfc`, which brings it to ~1e-15 relative accuracy.
    /// Returns −∞ for p = 0, +∞ for p = 1, and NaN for p outside [0, 1] or NaN.
    public static func quantile(_ p: Double) -> Double {
        guard p >= 0, p <= 1 else { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        // Work in the lower half; 1 − p is exact for p ≥ 0.5 (Sterbenz).
        if p > 0.5 { return -lowerHalfQuantile(1 - p) }
        return lowerHalfQuantile(p)
    }

    /// Quantile for 0 < p ≤ 0.5.
    private static func lowerHalfQuantile(_ p: Double) -> Double {
        let x = acklamApproximation(p)
        // Halley step: e = Φ(x) − p, u = e / φ(x), x ← x − u / (1 + x u / 2). For p below ~1e-308, φ(x)
        // underflows; there the approximation is returned unrefined.
        let u = (cdf(x) - p) / density(x)
        guard u.isFinite else { return x }
        return x - u / (1 + 0.5 * x * u)
    }

    /// P. J. Acklam's algorithm (2003) for the normal quantile, relative error below 1.15e-9.
    private static func acklamApproximation(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                 3.754408661907416e+00]
        let lowRegion = 0.02425
        if p < lowRegion {
            let q = (-2 * log(p)).squareRoot()
            let numerator = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]
            let denominator = (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
            return numerator / denominator
        }
        let q = p - 0.5
        let r = q * q
        let numerator = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
        let denominator = ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1
        return numerator / denominator
    }
}
