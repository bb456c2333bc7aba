/// Dense linear algebra for small problems (n up to a few thousand), written in plain Swift.
///
/// Matrices are row-major `[Double]`. Hot loops run over contiguous rows through unsafe buffer
/// pointers (SIMD4 dot products, axpy updates); no BLAS/LAPACK is linked (see `CholeskyFactor` for
/// what was measured).

/// Errors from the linear-algebra routines; each message says what was expected.
public enum LinearAlgebraError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The shapes of the operands do not fit together.
    case dimensionMismatch(String)
    /// The matrix is not positive definite even after adding the largest jitter tried.
    case notPositiveDefinite(dimension: Int, largestJitter: Double)
    /// An entry is NaN or infinite.
    case nonFinite(String)

    public var description: String {
        switch self {
        case .dimensionMismatch(let what): return "dimension mismatch: \(what)"
        case .notPositiveDefinite(let n, let jitter):
            return "the \(n)×\(n) matrix is not positive definite (largest diagonal jitter tried: \(jitter))"
        case .nonFinite(let what): return "non-finite value: \(what)"
        }
    }
}

/// A dense row-major matrix of `Double`.
public struct Matrix: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Number of columns.
    public let columns: Int
    /// The entries, row after row: entry (i, j) is `elements[i * columns + j]`.
    public var elements: [Double]

    /// A `rows × columns` matrix filled with `value`.
    public init(rows: Int, columns: Int, repeating value: Double = 0) {
        precondition(rows >= 0 && columns >= 0, "Matrix: negative shape")
        self.rows = rows
        self.columns = columns
        elements = Array(repeating: value, count: rows * columns)
    }

    /// A matrix from its row-major entries; throws when `elements.count != rows * columns`.
    public init(rows: Int, columns: Int, elements: [Double]) throws {
        guard rows >= 0, columns >= 0, elements.count == rows * columns else {
            throw LinearAlgebraError.dimensionMismatch(
                "Matrix(rows: \(rows), columns: \(columns)) needs \(max(0, rows * columns)) elements, got \(elements.count)")
        }
        self.rows = rows
        self.columns = columns
        self.elements = elements
    }

    /// A matrix from an array of equally long rows; throws on ragged input.
    public init(_ rowArrays: [[Double]]) throws {
        let columns = rowArrays.first?.count ?? 0
        for (i, row) in rowArrays.enumerated() where row.count != columns {
            throw LinearAlgebraError.dimensionMismatch("row \(i) has \(row.count) entries, expected \(columns)")
        }
        self.rows = rowArrays.count
        self.columns = columns
        self.elements = rowArrays.flatMap { $0 }
    }

    /// The `n × n` identity.
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, columns: n)
        for i in 0..<n { m.elements[i * n + i] = 1 }
        return m
    }

    /// Entry (i, j).
    @inlinable
    public subscript(i: Int, j: Int) -> Double {
        get { elements[i * columns + j] }
        set { elements[i * columns + j] = newValue }
    }

    /// Row `i` as an array.
    public func row(_ i: Int) -> [Double] {
        Array(elements[(i * columns)..<((i + 1) * columns)])
    }

    /// The rows as arrays.
    public var rowArrays: [[Double]] {
        (0..<rows).map(row)
    }

    /// The transpose.
    public var transposed: Matrix {
        var t = Matrix(rows: columns, columns: rows)
        for i in 0..<rows {
            for j in 0..<columns { t.elements[j * rows + i] = elements[i * columns + j] }
        }
        return t
    }

    /// The matrix product `self · other`; throws when the inner dimensions differ.
    public func multiplied(by other: Matrix) throws -> Matrix {
        guard columns == other.rows else {
            throw LinearAlgebraError.dimensionMismatch("(\(rows)×\(columns)) · (\(other.rows)×\(other.columns))")
        }
        var c = Matrix(rows: rows, columns: other.columns)
        let p = other.columns
        elements.withUnsafeBufferPointer { a in
            other.elements.withUnsafeBufferPointer { b in
                c.elements.withUnsafeMutableBufferPointer { out in
                    for i in 0..<rows {
                        for k in 0..<columns {
                            let aik = a[i * columns + k]
                            if aik == 0 { continue }
                            let bRow = k * p, cRow = i * p
                            for j in 0..<p { out[cRow + j] += aik * b[bRow + j] }
                        }
                    }
                }
            }
        }
        return c
    }

    /// The matrix–vector product `self · v`; throws when `v.count != columns`.
    public func multiplied(by v: [Double]) throws -> [Double] {
        guard v.count == columns else {
            throw LinearAlgebraError.dimensionMismatch("(\(rows)×\(columns)) · vector of \(v.count)")
        }
        var out = [Double](repeating: 0, count: rows)
        if columns == 0 { return out }
        elements.withUnsafeBufferPointer { a in
            v.withUnsafeBufferPointer { x in
                for i in 0..<rows {
                    out[i] = dot(a.baseAddress! + i * columns, x.baseAddress!, columns)
                }
            }
        }
        return out
    }
}

// MARK: - Kernels shared by the routines

/// Σ a[k]·b[k] for k < count: two SIMD4 accumulators, then a scalar tail (fixed, deterministic order).
@inlinable @inline(__always)
func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ count: Int) -> Double {
    var v0 = SIMD4<Double>(), v1 = SIMD4<Double>()
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var k = 0
    while k + 8 <= count {
        v0 += ra.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self)
            * rb.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self)
        v1 += ra.loadUnaligned(fromByteOffset: k * 8 + 32, as: SIMD4<Double>.self)
            * rb.loadUnaligned(fromByteOffset: k * 8 + 32, as: SIMD4<Double>.self)
        k += 8
    }
    var s = (v0 + v1).sum()
    while k < count {
        s += a[k] * b[k]
        k += 1
    }
    return s
}

/// y[k] += alpha·x[k] for k < count.
@inlinable @inline(__always)
func axpy(_ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ count: Int) {
    for k in 0..<count { y[k] += alpha * x[k] }
}
