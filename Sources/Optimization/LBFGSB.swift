import Foundation

/// Bound-constrained limited-memory BFGS (Byrd, Lu, Nocedal & Zhu 1995, "A limited memory algorithm
/// for bound constrained optimization", with the subspace step of Morales & Nocedal 2011).
///
/// Each iteration
/// 1. finds the generalized Cauchy point: the first local minimizer of the quadratic model
///    `m(x) = f + gᵀ(x−xₖ) + ½(x−xₖ)ᵀB(x−xₖ)` along the projected steepest-descent path
///    `P(xₖ − t·g)`, walking its breakpoints in order;
/// 2. minimizes the model over the variables that are free at the Cauchy point (direct primal
///    method), projects the result onto the box, and falls back to the truncated step when the
///    projection is not a descent direction;
/// 3. runs a line search along that direction for the strong Wolfe conditions
///    (c₁ = 10⁻³, c₂ = 0.9, as in the Fortran code), never leaving the box;
/// 4. updates the limited-memory BFGS matrix, skipping pairs with too little curvature.
///
/// The BFGS matrix B is formed densely from the last `memory` pairs (B₀ = θI, θ = yᵀy/sᵀy), which
/// equals the compact representation of the paper and costs O(memory·n²) per iteration: right for
/// the n ≤ a few hundred variables of GP fits and acquisition optimization.
///
/// Stops when the projected gradient's ∞-norm is ≤ `projectedGradientTolerance`, when the relative
/// decrease `(fₖ − fₖ₊₁)/max(|fₖ|, |fₖ₊₁|, 1)` is ≤ `relativeFunctionTolerance`, or at
/// `maxIterations` / `maxEvaluations`. The objective may return a non-finite value for points where
/// it is undefined; the line search then shortens the step.
public enum LBFGSB {
    /// Tuning and stopping rules.
    public struct Options: Sendable, Equatable {
        /// Number of correction pairs kept (m).
        public var memory: Int
        /// Maximum number of iterations.
        public var maxIterations: Int
        /// Maximum number of objective evaluations.
        public var maxEvaluations: Int
        /// Stop when ‖P(x − g) − x‖∞ is at most this.
        public var projectedGradientTolerance: Double
        /// Stop when the relative decrease of f in one iteration is at most this
        /// (SciPy's `factr·eps`; the default equals its `ftol` 2.2e-9).
        public var relativeFunctionTolerance: Double
        /// Maximum evaluations in one line search.
        public var maxLineSearchSteps: Int

        public init(memory: Int = 10, maxIterations: Int = 200, maxEvaluations: Int = 1000,
                    projectedGradientTolerance: Double = 1e-5,
                    relativeFunctionTolerance: Double = 2.220446049250313e-09,
                    maxLineSearchSteps: Int = 20) {
            self.memory = memory
            self.maxIterations = maxIterations
            self.maxEvaluations = maxEvaluations
            self.projectedGradientTolerance = projectedGradientTolerance
            self.relativeFunctionTolerance = relativeFunctionTolerance
            self.maxLineSearchSteps = maxLineSearchSteps
        }
    }

    /// Why the minimization stopped.
    public enum Termination: String, Sendable, Equatable {
        case projectedGradientSmall, functionChangeSmall, maxIterations, maxEvaluations
        /// No step with sufficient decrease was found even from a fresh (steepest-descent) model.
        case lineSearchFailed
        /// The objective is not finite at the (projected) starting point.
        case nonFiniteStart
    }

    /// The best point found and how the run went.
    public struct Result: Sendable {
        public let x: [Double]
        public let value: Double
        public let gradient: [Double]
        public let iterations: Int
        public let evaluations: Int
        public let termination: Termination
        /// ‖P(x − g) − x‖∞ at `x`.
        public let projectedGradientNorm: Double
    }

    /// Bad arguments to `minimize`.
    public enum InputError: Error, Equatable, CustomStringConvertible, Sendable {
        case lengthMismatch(x0: Int, lower: Int, upper: Int)
        case invalidBounds(index: Int, lower: Double, upper: Double)
        case nonFiniteStart(index: Int)
        case invalidOption(String)

        public var description: String {
            switch self {
            case .lengthMismatch(let x, let l, let u):
                return "L-BFGS-B: x0, lower and upper must have the same length (got \(x), \(l), \(u))"
            case .invalidBounds(let i, let l, let u):
                return "L-BFGS-B: bound \(i) needs lower ≤ upper and no NaN (got [\(l), \(u)])"
            case .nonFiniteStart(let i): return "L-BFGS-B: x0[\(i)] is not finite"
            case .invalidOption(let what): return "L-BFGS-B: invalid option: \(what)"
            }
        }
    }

    /// Minimizes `objective` over the box `lower ≤ x ≤ upper` (use ±∞ for unbounded sides),
    /// starting from `x0` projected onto the box.
    /// - Parameter objective: returns f(x) and ∇f(x) (same length as x).
    /// - Throws: `InputError` for inconsistent arguments; rethrows the objective's errors.
    public static func minimize(
        x0: [Double], lower: [Double], upper: [Double], options: Options = Options(),
        _ objective: ([Double]) throws -> (value: Double, gradient: [Double])
    ) throws -> Result {
        let n = x0.count
        guard lower.count == n, upper.count == n else {
            throw InputError.lengthMismatch(x0: n, lower: lower.count, upper: upper.count)
        }
        for i in 0..<n {
            guard lower[i] <= upper[i] else { throw InputError.invalidBounds(index: i, lower: lower[i], upper: upper[i]) }
            guard x0[i].isFinite else { throw InputError.nonFiniteStart(index: i) }
        }
        guard options.memory >= 1, options.maxIterations >= 0, options.maxEvaluations >= 1,
              options.maxLineSearchSteps >= 1 else {
            throw InputError.invalidOption("memory, maxEvaluations and maxLineSearchSteps must be ≥ 1, maxIterations ≥ 0")
        }
        if n == 0 {
            let (value, gradient) = try objective([])
            return Result(x: [], value: value, gradient: gradient, iterations: 0, evaluations: 1,
                          termination: value.isFinite ? .projectedGradientSmall : .nonFiniteStart, projectedGradientNorm: 0)
        }
        var solver = Solver(lower: lower, upper: upper, options: options)
        return try solver.run(x0: x0, objective)
    }
}

// MARK: - Implementation

extension LBFGSB {
    fileprivate struct Solver {
        let lower: [Double]
        let upper: [Double]
        let options: Options
        var n: Int { lower.count }
        var evaluations = 0
        var sPairs: [[Double]] = []
        var yPairs: [[Double]] = []

        init(lower: [Double], upper: [Double], options: Options) {
            self.lower = lower
            self.upper = upper
            self.options = options
        }

        func project(_ x: [Double]) -> [Double] {
            var p = x
            for i in 0..<n { p[i] = min(max(p[i], lower[i]), upper[i]) }
            return p
        }

        func projectedGradientNorm(_ x: [Double], _ g: [Double]) -> Double {
            var m = 0.0
            for i in 0..<n {
                let step = min(max(x[i] - g[i], lower[i]), upper[i]) - x[i]
                m = max(m, abs(step))
            }
            return m
        }

        mutating func evaluate(_ x: [Double], _ f: ([Double]) throws -> (value: Double, gradient: [Double])) throws -> (Double, [Double]) {
            evaluations += 1
            let r = try f(x)
            guard r.gradient.count == n else {
                throw InputError.invalidOption("the objective returned a gradient of length \(r.gradient.count), expected \(n)")
            }
            if !r.value.isFinite || r.gradient.contains(where: { !$0.isFinite }) {
                return (.infinity, r.gradient)
            }
            return (r.value, r.gradient)
        }

        /// Dense B from the stored pairs: B₀ = θI, then the BFGS recursion.
        func bfgsMatrix() -> Matrix {
            var b = Matrix(rows: n, columns: n)
            guard let sLast = sPairs.last, let yLast = yPairs.last else {
                for i in 0..<n { b[i, i] = 1 }
                return b
            }
            let theta = dotArrays(yLast, yLast) / dotArrays(sLast, yLast)
            for i in 0..<n { b[i, i] = theta }
            var bs = [Double](repeating: 0, count: n)
            for (s, y) in zip(sPairs, yPairs) {
                b.elements.withUnsafeBufferPointer { bp in
                    s.withUnsafeBufferPointer { sp in
                        for i in 0..<n { bs[i] = dot(bp.baseAddress! + i * n, sp.baseAddress!, n) }
                    }
                }
                let sBs = dotArrays(s, bs)
                let ys = dotArrays(y, s)
                b.elements.withUnsafeMutableBufferPointer { bp in
                    for i in 0..<n {
                        let a = bs[i] / sBs, c = y[i] / ys
                        let row = bp.baseAddress! + i * n
                        for j in 0..<n { row[j] += c * y[j] - a * bs[j] }
                    }
                }
            }
            return b
        }

        /// The generalized Cauchy point and the indices free there.
        func cauchyPoint(x: [Double], g: [Double], b: Matrix) -> (point: [Double], free: [Int]) {
            var d = [Double](repeating: 0, count: n)
            var breaks: [(t: Double, i: Int)] = []
            var fixedAtStart = [Bool](repeating: false, count: n)
            for i in 0..<n {
                var t = Double.infinity
                if g[i] < 0 { t = (x[i] - upper[i]) / g[i] } else if g[i] > 0 { t = (x[i] - lower[i]) / g[i] }
                if t > 0 {
                    d[i] = -g[i]
                    if t.isFinite { breaks.append((t, i)) }
                } else if g[i] != 0 {
                    fixedAtStart[i] = true
                }
            }
            breaks.sort { $0.t < $1.t || ($0.t == $1.t && $0.i < $1.i) }

            var z = [Double](repeating: 0, count: n)  // x(t) − x
            var bd = [Double](repeating: 0, count: n)
            var bz = [Double](repeating: 0, count: n)
            b.elements.withUnsafeBufferPointer { bp in
                d.withUnsafeBufferPointer { dp in
                    for i in 0..<n { bd[i] = dot(bp.baseAddress! + i * n, dp.baseAddress!, n) }
                }
            }
            var gd = dotArrays(g, d)
            var fp = gd  // f'(0) = gᵀd (z = 0)
            var fpp = dotArrays(d, bd)
            var tOld = 0.0
            var passed = [Bool](repeating: false, count: n)
            var finalStep = 0.0
            var stopped = false
            for (tb, bi) in breaks {
                if fp >= 0 { stopped = true; break }
                let dtMin = fpp > 0 ? -fp / fpp : Double.infinity
                let dt = tb - tOld
                if dtMin < dt {
                    finalStep = max(dtMin, 0)
                    stopped = true
                    break
                }
                // Move to the breakpoint; variable bi reaches its bound and stops moving.
                for i in 0..<n where d[i] != 0 {
                    z[i] += dt * d[i]
                    bz[i] += dt * bd[i]
                }
                let bound = d[bi] > 0 ? upper[bi] : lower[bi]
                let correction = (bound - x[bi]) - z[bi]
                z[bi] = bound - x[bi]
                let db = d[bi]
                d[bi] = 0
                passed[bi] = true
                b.elements.withUnsafeBufferPointer { bp in
                    for i in 0..<n {
                        let bib = bp[i * n + bi]
                        bd[i] -= db * bib
                        bz[i] += correction * bib
                    }
                }
                gd -= g[bi] * db
                fp = gd + dotArrays(d, bz)
                fpp = dotArrays(d, bd)
                tOld = tb
            }
            if !stopped {
                finalStep = (fp < 0 && fpp > 0) ? -fp / fpp : 0
            }
            var xc = x
            for i in 0..<n { xc[i] = min(max(x[i] + z[i] + finalStep * d[i], lower[i]), upper[i]) }
            var free: [Int] = []
            for i in 0..<n where !passed[i] && !fixedAtStart[i] && xc[i] > lower[i] && xc[i] < upper[i] {
                free.append(i)
            }
            return (xc, free)
        }

        /// Minimizes the model over the free variables from the Cauchy point; returns the target point.
        func subspaceStep(x: [Double], g: [Double], b: Matrix, cauchy xc: [Double], free: [Int]) -> [Double] {
            let nf = free.count
            if nf == 0 { return xc }
            var diff = [Double](repeating: 0, count: n)
            for i in 0..<n { diff[i] = xc[i] - x[i] }
            var bf = Matrix(rows: nf, columns: nf)
            var r = [Double](repeating: 0, count: nf)
            b.elements.withUnsafeBufferPointer { bp in
                diff.withUnsafeBufferPointer { dp in
                    for (a, i) in free.enumerated() {
                        r[a] = -(g[i] + dot(bp.baseAddress! + i * n, dp.baseAddress!, n))
                        for (c, j) in free.enumerated() { bf[a, c] = bp[i * n + j] }
                    }
                }
            }
            guard let chol = try? CholeskyFactor(bf), let du = try? chol.solve(r) else { return xc }
            // Projected subspace step (Morales & Nocedal 2011), else the truncated one.
            var projected = xc
            for (a, i) in free.enumerated() { projected[i] = min(max(xc[i] + du[a], lower[i]), upper[i]) }
            var slope = 0.0
            for i in 0..<n { slope += (projected[i] - x[i]) * g[i] }
            if slope < 0 { return projected }
            var alpha = 1.0
            for (a, i) in free.enumerated() {
                if du[a] > 0, xc[i] + du[a] > upper[i] { alpha = min(alpha, (upper[i] - xc[i]) / du[a]) }
                if du[a] < 0, xc[i] + du[a] < lower[i] { alpha = min(alpha, (lower[i] - xc[i]) / du[a]) }
            }
            var truncated = xc
            for (a, i) in free.enumerated() { truncated[i] = min(max(xc[i] + alpha * du[a], lower[i]), upper[i]) }
            return truncated
        }

        /// Largest step t with x + t·d inside the box.
        func maxStep(x: [Double], d: [Double]) -> Double {
            var t = Double.infinity
            for i in 0..<n {
                if d[i] > 0 { t = min(t, (upper[i] - x[i]) / d[i]) } else if d[i] < 0 { t = min(t, (lower[i] - x[i]) / d[i]) }
            }
            return t
        }

        /// Strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5 and 3.6) on φ(t) = f(x + t·d).
        /// Returns the accepted point, or nil when no step gives sufficient decrease.
        mutating func lineSearch(
            x: [Double], f0: Double, g0: [Double], d: [Double], initialStep: Double, stepMax: Double,
            _ f: ([Double]) throws -> (value: Double, gradient: [Double])
        ) throws -> (x: [Double], f: Double, g: [Double])? {
            let c1 = 1e-3, c2 = 0.9
            let dphi0 = dotArrays(g0, d)
            guard dphi0 < 0 else { return nil }
            var steps = 0
            var best: (x: [Double], f: Double, g: [Double])?

            func point(_ t: Double) -> [Double] {
                var p = x
                for i in 0..<n { p[i] = min(max(x[i] + t * d[i], lower[i]), upper[i]) }
                return p
            }
            func armijo(_ t: Double, _ ft: Double) -> Bool { ft.isFinite && ft <= f0 + c1 * t * dphi0 }

            var tPrev = 0.0, fPrev = f0, dPrev = dphi0
            var t = min(initialStep, stepMax)
            var lo = 0.0, fLo = f0, dLo = dphi0
            var hi = 0.0, fHi = Double.infinity, dHi = Double.nan
            var bracketed = false
            while steps < options.maxLineSearchSteps, evaluations < options.maxEvaluations {
                let p = point(t)
                let (ft, gt) = try evaluate(p, f)
                steps += 1
                let dt = ft.isFinite ? dotArrays(gt, d) : Double.nan
                if armijo(t, ft), best == nil || ft < best!.f { best = (p, ft, gt) }
                if !armijo(t, ft) || (steps > 1 && ft >= fPrev) {
                    lo = tPrev; fLo = fPrev; dLo = dPrev
                    hi = t; fHi = ft; dHi = dt
                    bracketed = true
                    break
                }
                if abs(dt) <= -c2 * dphi0 { return (p, ft, gt) }
                if dt >= 0 {
                    lo = t; fLo = ft; dLo = dt
                    hi = tPrev; fHi = fPrev; dHi = dPrev
                    bracketed = true
                    break
                }
                if t >= stepMax { return (p, ft, gt) }
                tPrev = t; fPrev = ft; dPrev = dt
                t = min(4 * t, stepMax)
            }
            if bracketed {
                // Zoom: keep lo with sufficient decrease and the lowest value; interpolate inside [lo, hi].
                while steps < options.maxLineSearchSteps, evaluations < options.maxEvaluations {
                    let a = min(lo, hi), w = abs(hi - lo)
                    if w <= 1e-14 * max(1, abs(hi)) { break }
                    var trial = cubicMinimizer(lo, fLo, dLo, hi, fHi, dHi)
                    if !trial.isFinite || trial < a + 0.1 * w || trial > a + 0.9 * w { trial = 0.5 * (lo + hi) }
                    let p = point(trial)
                    let (ft, gt) = try evaluate(p, f)
                    steps += 1
                    let dt = ft.isFinite ? dotArrays(gt, d) : Double.nan
                    if armijo(trial, ft), best == nil || ft < best!.f { best = (p, ft, gt) }
                    if !armijo(trial, ft) || ft >= fLo {
                        hi = trial; fHi = ft; dHi = dt
                    } else {
                        if abs(dt) <= -c2 * dphi0 { return (p, ft, gt) }
                        if dt * (hi - lo) >= 0 { hi = lo; fHi = fLo; dHi = dLo }
                        lo = trial; fLo = ft; dLo = dt
                    }
                }
            }
            return best
        }

        mutating func run(x0: [Double], _ f: ([Double]) throws -> (value: Double, gradient: [Double])) throws -> Result {
            var x = project(x0)
            var (fx, g) = try evaluate(x, f)
            guard fx.isFinite else {
                return Result(x: x, value: fx, gradient: g, iterations: 0, evaluations: evaluations,
                              termination: .nonFiniteStart, projectedGradientNorm: .infinity)
            }
            var iteration = 0
            var termination: Termination = .maxIterations
            while true {
                if projectedGradientNorm(x, g) <= options.projectedGradientTolerance { termination = .projectedGradientSmall; break }
                if iteration >= options.maxIterations { termination = .maxIterations; break }
                if evaluations >= options.maxEvaluations { termination = .maxEvaluations; break }

                var accepted: (x: [Double], f: Double, g: [Double])?
                // Try the quasi-Newton direction; on failure restart from B = I once.
                for attempt in 0..<2 {
                    if attempt == 1 {
                        if sPairs.isEmpty { break }
                        sPairs.removeAll(); yPairs.removeAll()
                    }
                    let b = bfgsMatrix()
                    let (xc, free) = cauchyPoint(x: x, g: g, b: b)
                    var target = subspaceStep(x: x, g: g, b: b, cauchy: xc, free: free)
                    var d = zip(target, x).map { $0 - $1 }
                    if dotArrays(d, g) >= 0 {
                        target = xc
                        d = zip(target, x).map { $0 - $1 }
                    }
                    if dotArrays(d, g) >= 0 { continue }
                    let stepMax = min(maxStep(x: x, d: d), 1e10)
                    let dn = dotArrays(d, d).squareRoot()
                    let initial = sPairs.isEmpty ? min(1 / max(dn, 1e-300), stepMax) : 1
                    if let r = try lineSearch(x: x, f0: fx, g0: g, d: d, initialStep: initial,
                                              stepMax: max(stepMax, 1), f) {
                        accepted = r
                        break
                    }
                    if evaluations >= options.maxEvaluations { break }
                }
                guard let (xn, fn, gn) = accepted else {
                    termination = evaluations >= options.maxEvaluations ? .maxEvaluations : .lineSearchFailed
                    break
                }
                iteration += 1
                let s = zip(xn, x).map { $0 - $1 }
                let y = zip(gn, g).map { $0 - $1 }
                let sy = dotArrays(s, y)
                if sy > 2.220446049250313e-16 * dotArrays(y, y) {
                    sPairs.append(s); yPairs.append(y)
                    if sPairs.count > options.memory { sPairs.removeFirst(); yPairs.removeFirst() }
                }
                let relativeDecrease = (fx - fn) / max(abs(fx), abs(fn), 1)
                x = xn; fx = fn; g = gn
                if relativeDecrease <= options.relativeFunctionTolerance { termination = .functionChangeSmall; break }
            }
            return Result(x: x, value: fx, gradient: g, iterations: iteration, evaluations: evaluations,
                          termination: termination, projectedGradientNorm: projectedGradientNorm(x, g))
        }
    }
}

/// Minimizer of the cubic interpolating (a, fa, da) and (b, fb, db); NaN when undefined.
private func cubicMinimizer(_ a: Double, _ fa: Double, _ da: Double, _ b: Double, _ fb: Double, _ db: Double) -> Double {
    guard fa.isFinite, fb.isFinite, da.isFinite, db.isFinite, a != b else {
        // Quadratic through (a, fa, da) and (b, fb) when b is usable.
        if fa.isFinite, fb.isFinite, da.isFinite, a != b {
            let denom = 2 * (fb - fa - da * (b - a))
            return denom > 0 ? a - da * (b - a) * (b - a) / denom : .nan
        }
        return .nan
    }
    let d1 = da + db - 3 * (fa - fb) / (a - b)
    let disc = d1 * d1 - da * db
    guard disc >= 0 else { return .nan }
    let d2 = (b > a ? 1.0 : -1.0) * disc.squareRoot()
    return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)
}

/// Σ a[i]·b[i].
@inline(__always)
func dotArrays(_ a: [Double], _ b: [Double]) -> Double {
    if a.isEmpty || b.isEmpty { return 0 }
    return a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in dot(ap.baseAddress!, bp.baseAddress!, min(ap.count, bp.count)) } }
}
