/// Pointer-level dense kernels shared by `CholeskyFactor` and the GP likelihood, which calls them
/// on reused buffers so that repeated evaluations allocate nothing (measured: allocating and
/// zeroing fresh n × n buffers cost 30–40 % of a marginal-likelihood evaluation at n = 88).
/// All matrices are row-major n × n.
enum DenseKernels {
    static let choleskyBlockSize = 128

    /// Factors in place: on entry the lower triangle of `l` holds A (plus any diagonal shift), on
    /// success it holds L; the strict upper triangle is set to zero. Returns false when a pivot is
    /// not positive or not finite (the buffer is then garbage).
    ///
    /// Blocked right-looking Cholesky–Banachiewicz: for each panel of `choleskyBlockSize` columns,
    /// factor the panel rows (dot products of contiguous row segments), then subtract the panel's
    /// contribution from the trailing lower triangle (contiguous dot products of the panel width,
    /// so the panel stays in cache). For n ≤ the block size this is the plain row-oriented loop.
    static func choleskyInPlace(_ base: UnsafeMutablePointer<Double>, _ n: Int) -> Bool {
        for i in 0..<n { for j in (i + 1)..<n { base[i * n + j] = 0 } }
        var kb = 0
        while kb < n {
            let end = min(kb + choleskyBlockSize, n)
            for i in kb..<n {
                let rowI = base + i * n
                for j in kb..<min(i, end) {
                    let rowJ = base + j * n
                    rowI[j] = (rowI[j] - dot(rowI + kb, rowJ + kb, j - kb)) / rowJ[j]
                }
                if i < end {
                    let d = rowI[i] - dot(rowI + kb, rowI + kb, i - kb)
                    guard d > 0, d.isFinite else { return false }
                    rowI[i] = d.squareRoot()
                }
            }
            if end < n {
                let width = end - kb
                for i in end..<n {
                    let rowI = base + i * n
                    for j in end...i { rowI[j] -= dot(rowI + kb, base + j * n + kb, width) }
                }
            }
            kb = end
        }
        return true
    }

    /// Copies the lower triangle of `a` into `l`, adds `shift` to the diagonal and factors.
    static func cholesky(of a: UnsafePointer<Double>, shift: Double, into l: UnsafeMutablePointer<Double>, _ n: Int) -> Bool {
        for i in 0..<n {
            for j in 0..<i { l[i * n + j] = a[i * n + j] }
            l[i * n + i] = a[i * n + i] + shift
        }
        return choleskyInPlace(l, n)
    }

    /// x ← L⁻¹x.
    static func forwardSolve(_ l: UnsafePointer<Double>, _ x: UnsafeMutablePointer<Double>, _ n: Int) {
        for i in 0..<n {
            let row = l + i * n
            x[i] = (x[i] - dot(row, x, i)) / row[i]
        }
    }

    /// x ← L⁻ᵀx (column-oriented: once xᵢ is known, remove its share using row i of L).
    static func backSolve(_ l: UnsafePointer<Double>, _ x: UnsafeMutablePointer<Double>, _ n: Int) {
        var i = n - 1
        while i >= 0 {
            let row = l + i * n
            let xi = x[i] / row[i]
            x[i] = xi
            axpy(-xi, row, x, i)
            i -= 1
        }
    }

    /// out ← L⁻¹ (lower triangular; the strict upper triangle is set to zero), row by row:
    /// row i = (eᵢ − Σ_{k<i} Lᵢₖ·row k) / Lᵢᵢ.
    static func lowerInverse(_ l: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, _ n: Int) {
        out.update(repeating: 0, count: n * n)
        for i in 0..<n {
            let row = l + i * n
            let o = out + i * n
            for k in 0..<i where row[k] != 0 { axpy(-row[k], out + k * n, o, k + 1) }
            o[i] += 1
            let d = 1 / row[i]
            for c in 0...i { o[c] *= d }
        }
    }

    /// out ← Mᵀ·M for a lower-triangular M (= A⁻¹ when M = L⁻¹), both triangles filled.
    static func lowerGram(_ m: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, _ n: Int) {
        out.update(repeating: 0, count: n * n)
        for k in 0..<n {
            let rk = m + k * n
            for i in 0...k where rk[i] != 0 { axpy(rk[i], rk, out + i * n, i + 1) }
        }
        for i in 0..<n { for j in 0..<i { out[j * n + i] = out[i * n + j] } }
    }
}

extension JitterPolicy {
    /// The diagonal shifts to try in order: 0, then the escalating jitters.
    func shifts(meanDiagonal: Double) -> [Double] {
        var scale = abs(meanDiagonal)
        if !(scale > 0) || !scale.isFinite { scale = 1 }
        var out = [0.0]
        for attempt in 0..<max(0, maxRetries) {
            var power = 1.0
            for _ in 0..<attempt { power *= growth }
            let j = initialRelative * scale * power
            if j > 0 { out.append(j) }
        }
        return out
    }
}
