import Foundation

/// A prior density on one positive hyper-parameter v (a length-scale, the output scale or the noise).
///
/// As in GPyTorch, the density is placed on v itself and evaluated at v = exp(θ) while θ = log v is
/// optimized; no Jacobian term is added (maximum a posteriori in v's parameterization).
public enum ScalarPrior: Sendable, Equatable {
    /// No prior (flat): contributes 0.
    case flat
    /// Gamma with shape `concentration` (a) and `rate` (b): p(v) ∝ v^(a−1) e^(−b v).
    case gamma(concentration: Double, rate: Double)
    /// log v ~ Normal(location, scale²).
    case logNormal(location: Double, scale: Double)

    /// log p(v), normalization included.
    public func logDensity(_ v: Double) -> Double {
        switch self {
        case .flat: return 0
        case .gamma(let a, let b):
            return a * log(b) - lgamma(a) + (a - 1) * log(v) - b * v
        case .logNormal(let mu, let s):
            let z = (log(v) - mu) / s
            return -log(v) - log(s) - 0.5 * log(2 * Double.pi) - 0.5 * z * z
        }
    }

    /// d log p(v) / d log v.
    public func logDensityDerivativeInLog(_ v: Double) -> Double {
        switch self {
        case .flat: return 0
        case .gamma(let a, let b): return (a - 1) - b * v
        case .logNormal(let mu, let s): return -1 - (log(v) - mu) / (s * s)
        }
    }

    /// The mode, or nil for a flat prior.
    public var mode: Double? {
        switch self {
        case .flat: return nil
        case .gamma(let a, let b): return a >= 1 ? (a - 1) / b : nil
        case .logNormal(let mu, let s): return exp(mu - s * s)
        }
    }

    /// One draw (nil for a flat prior).
    func sample<G: RandomNumberGenerator>(using rng: inout G) -> Double? {
        switch self {
        case .flat: return nil
        case .gamma(let a, let b): return sampleGamma(shape: a, using: &rng) / b
        case .logNormal(let mu, let s): return exp(mu + s * standardNormal(using: &rng))
        }
    }
}

/// Priors of the GP hyper-parameters (the constant mean has a flat prior).
public struct GPPriors: Sendable, Equatable {
    public var lengthscale: ScalarPrior
    public var outputscale: ScalarPrior
    public var noise: ScalarPrior

    public init(lengthscale: ScalarPrior, outputscale: ScalarPrior, noise: ScalarPrior) {
        self.lengthscale = lengthscale
        self.outputscale = outputscale
        self.noise = noise
    }

    /// BoTorch's long-standing defaults for a Matern-5/2 ARD kernel with an output scale (the model the
    /// paper describes, used by BoTorch's qEHVI/qNEHVI tutorials up to v0.11): length-scale
    /// Gamma(3, 6) (mode 1/3 of the unit cube), output scale Gamma(2, 0.15) (mode 6.7), noise
    /// Gamma(1.1, 0.05) (weak). On standardized outputs and unit-cube inputs they keep the fit away
    /// from degenerate length-scales with only a handful of points, which is BAMBO's regime (8 initial
    /// points, d ≤ ~10). This is the default.
    public static let classic = GPPriors(
        lengthscale: .gamma(concentration: 3, rate: 6),
        outputscale: .gamma(concentration: 2, rate: 0.15),
        noise: .gamma(concentration: 1.1, rate: 0.05))

    /// The dimension-scaled priors of Hvarfner, Hellsten & Nardi (2024), BoTorch's default since
    /// v0.12: length-scale LogNormal(√2 + ½ log d, √3), noise LogNormal(−4, 1); the output scale,
    /// which that model drops, keeps Gamma(2, 0.15). Prefer it for larger d (≳ 10).
    public static func dimensionScaled(dimension d: Int) -> GPPriors {
        GPPriors(
            lengthscale: .logNormal(location: 2.0.squareRoot() + 0.5 * log(Double(max(d, 1))), scale: 3.0.squareRoot()),
            outputscale: .gamma(concentration: 2, rate: 0.15),
            noise: .logNormal(location: -4, scale: 1))
    }

    /// No priors: plain maximum likelihood.
    public static let none = GPPriors(lengthscale: .flat, outputscale: .flat, noise: .flat)

    /// Σ log-prior densities and their derivatives with respect to the hyper-parameter vector
    /// (see `GPHyperparameters.vector`; the mean entry gets 0).
    public func logDensity(_ h: GPHyperparameters) -> (value: Double, gradient: [Double]) {
        let d = h.lengthscales.count
        var g = [Double](repeating: 0, count: d + 3)
        var v = 0.0
        for (k, l) in h.lengthscales.enumerated() {
            v += lengthscale.logDensity(l)
            g[k] = lengthscale.logDensityDerivativeInLog(l)
        }
        v += outputscale.logDensity(h.outputscale)
        g[d] = outputscale.logDensityDerivativeInLog(h.outputscale)
        v += noise.logDensity(h.noise)
        g[d + 1] = noise.logDensityDerivativeInLog(h.noise)
        return (v, g)
    }
}

// MARK: - Random variates used for restarts

/// Uniform on (0, 1), 53 random bits.
func uniformOpen<G: RandomNumberGenerator>(using rng: inout G) -> Double {
    (Double(rng.next() >> 11) + 0.5) * 0x1p-53
}

/// Standard normal by Box–Muller (one of the pair).
func standardNormal<G: RandomNumberGenerator>(using rng: inout G) -> Double {
    let u1 = uniformOpen(using: &rng), u2 = uniformOpen(using: &rng)
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
}

/// Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 through the boost U^(1/shape).
func sampleGamma<G: RandomNumberGenerator>(shape: Double, using rng: inout G) -> Double {
    if shape < 1 {
        return sampleGamma(shape: shape + 1, using: &rng) * pow(uniformOpen(using: &rng), 1 / shape)
    }
    let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
    while true {
        var x = 0.0, v = 0.0
        repeat {
            x = standardNormal(using: &rng)
            v = 1 + c * x
        } while v <= 0
        v = v * v * v
        let u = uniformOpen(using: &rng)
        if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
    }
}
