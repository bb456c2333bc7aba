import Foundation
import Testing
@testable import Optimization

@Suite("Linear algebra")
struct LinearAlgebraTests {
    @Test("Cholesky reproduces random SPD matrices", arguments: [1, 2, 5, 17, 64])
    func choleskyReconstructs(n: Int) throws {
        var rng = SplitMix64(seed: UInt64(n))
        let a = NaiveReference.randomSPD(n, &rng)
        let c = try CholeskyFactor(Matrix(a))
        #expect(c.jitter == 0)
        let l = c.lower.rowArrays
        for i in 0..<n { for j in (i + 1)..<n { #expect(l[i][j] == 0) } }
        let llt = NaiveReference.matmul(l, NaiveReference.transpose(l))
        #expect(NaiveReference.maxAbsDifference(llt.flatMap { $0 }, a.flatMap { $0 }) < 1e-10 * Double(n))
    }

    @Test("the blocked path (n > block size) reproduces A and solves like Gaussian elimination", arguments: [140, 200])
    func blockedFactorization(n: Int) throws {
        var rng = SplitMix64(seed: 900 + UInt64(n))
        // exp(−|tᵢ − tⱼ|) at random t is positive definite (Ornstein–Uhlenbeck covariance); + 0.1·I.
        let t = (0..<n).map { _ in 10 * NaiveReference.uniform(&rng) }
        let a = (0..<n).map { i in (0..<n).map { j in exp(-abs(t[i] - t[j])) + (i == j ? 0.1 : 0) } }
        let c = try CholeskyFactor(Matrix(a))
        let l = c.lower
        for _ in 0..<3000 {
            let i = Int(rng.next() % UInt64(n)), j = Int(rng.next() % UInt64(n))
            var s = 0.0
            for k in 0...min(i, j) { s += l[i, k] * l[j, k] }
            #expect(abs(s - a[i][j]) < 1e-9 * Double(n), "entry (\(i), \(j))")
            if i < j { #expect(l[i, j] == 0) }
        }
        let b = (0..<n).map { _ in NaiveReference.uniform(&rng) - 0.5 }
        let naive = NaiveReference.solveAndLogAbsDet(a, b)
        #expect(NaiveReference.maxAbsDifference(try c.solve(b), naive.x) < 1e-9)
        #expect(abs(c.logDeterminant - naive.logAbsDet) < 1e-8 * Double(n))
    }

    @Test("solves and log-determinant agree with Gaussian elimination", arguments: [3, 10, 41])
    func solvesMatchNaive(n: Int) throws {
        var rng = SplitMix64(seed: 100 + UInt64(n))
        let a = NaiveReference.randomSPD(n, &rng)
        let b = (0..<n).map { _ in NaiveReference.uniform(&rng) - 0.5 }
        let c = try CholeskyFactor(Matrix(a))
        let naive = NaiveReference.solveAndLogAbsDet(a, b)
        #expect(NaiveReference.maxAbsDifference(try c.solve(b), naive.x) < 1e-9)
        #expect(abs(c.logDeterminant - naive.logAbsDet) < 1e-9 * Double(n))

        // L y = b by forward substitution on the naive matrix, Lᵀ z = b by back substitution.
        let l = c.lower.rowArrays
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n { y[i] = (b[i] - (0..<i).reduce(0) { $0 + l[i][$1] * y[$1] }) / l[i][i] }
        #expect(NaiveReference.maxAbsDifference(try c.solveLower(b), y) < 1e-11)
        let lt = NaiveReference.transpose(l)
        #expect(NaiveReference.maxAbsDifference(NaiveReference.matvec(lt, try c.solveUpper(b)), b) < 1e-10)

        // Matrix right-hand sides equal column-by-column vector solves.
        let rhs = NaiveReference.randomMatrix(n, 3, &rng)
        let rhsT = NaiveReference.transpose(rhs)
        let lower = try c.solveLower(Matrix(rhs)), upper = try c.solveUpper(Matrix(rhs)), full = try c.solve(Matrix(rhs))
        for j in 0..<3 {
            let col = rhsT[j]
            #expect(NaiveReference.maxAbsDifference((0..<n).map { lower[$0, j] }, try c.solveLower(col)) < 1e-12)
            #expect(NaiveReference.maxAbsDifference((0..<n).map { upper[$0, j] }, try c.solveUpper(col)) < 1e-12)
            #expect(NaiveReference.maxAbsDifference((0..<n).map { full[$0, j] }, NaiveReference.solveAndLogAbsDet(a, col).x) < 1e-9)
        }

        // Inverse.
        let product = NaiveReference.matmul(a, c.inverse().rowArrays)
        #expect(NaiveReference.maxAbsDifference(product.flatMap { $0 }, Matrix.identity(n).elements) < 1e-9)
    }

    @Test("jitter escalates on a singular matrix and is reported")
    func jitterEscalation() throws {
        var rng = SplitMix64(seed: 7)
        let b = NaiveReference.randomMatrix(6, 2, &rng)  // rank 2
        let a = NaiveReference.matmul(b, NaiveReference.transpose(b))
        #expect(throws: LinearAlgebraError.self) { try CholeskyFactor(Matrix(a), policy: .none) }
        let c = try CholeskyFactor(Matrix(a))
        #expect(c.jitter > 0)
        let meanDiagonal = (0..<6).reduce(0) { $0 + a[$1][$1] } / 6
        let exponent = log10(c.jitter / (1e-8 * meanDiagonal))
        #expect(abs(exponent - exponent.rounded()) < 1e-9 && exponent >= 0 && exponent <= 3)
        var shifted = a
        for i in 0..<6 { shifted[i][i] += c.jitter }
        let l = c.lower.rowArrays
        let llt = NaiveReference.matmul(l, NaiveReference.transpose(l))
        #expect(NaiveReference.maxAbsDifference(llt.flatMap { $0 }, shifted.flatMap { $0 }) < 1e-12)
    }

    @Test("bad matrices give clear errors")
    func badInput() throws {
        #expect(throws: LinearAlgebraError.notPositiveDefinite(dimension: 2, largestJitter: 1e-5)) {
            try CholeskyFactor(Matrix([[1, 0], [0, -1]]))
        }
        #expect(throws: LinearAlgebraError.self) { try CholeskyFactor(Matrix([[1, .nan], [.nan, 1]])) }
        #expect(throws: LinearAlgebraError.self) { try CholeskyFactor(Matrix(rows: 2, columns: 3)) }
        #expect(throws: LinearAlgebraError.self) { try Matrix([[1, 2], [3]]) }
        let c = try CholeskyFactor(Matrix([[4, 0], [0, 9]]))
        #expect(throws: LinearAlgebraError.self) { try c.solve([1, 2, 3]) }
    }

    @Test("appending a block equals factoring the bordered matrix")
    func blockAppend() throws {
        var rng = SplitMix64(seed: 11)
        let a = NaiveReference.randomSPD(9, &rng)
        let top = Array(a[0..<6]).map { Array($0[0..<6]) }
        let cross = Array(a[0..<6]).map { Array($0[6..<9]) }
        let corner = Array(a[6..<9]).map { Array($0[6..<9]) }
        let grown = try CholeskyFactor(Matrix(top)).appending(crossBlock: Matrix(cross), cornerBlock: Matrix(corner))
        let direct = try CholeskyFactor(Matrix(a))
        #expect(NaiveReference.maxAbsDifference(grown.lower.elements, direct.lower.elements) < 1e-12)
    }

    @Test("Cholesky backward pass matches central finite differences", arguments: [1, 3, 6])
    func choleskyBackward(n: Int) throws {
        var rng = SplitMix64(seed: 300 + UInt64(n))
        let a = NaiveReference.randomSPD(n, &rng)
        var w = Matrix(rows: n, columns: n)
        for i in 0..<n { for j in 0...i { w[i, j] = 2 * NaiveReference.uniform(&rng) - 1 } }
        func f(_ m: [[Double]]) throws -> Double {
            let l = try CholeskyFactor(Matrix(m), policy: .none).lower
            return zip(l.elements, w.elements).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grad = try CholeskyFactor(Matrix(a)).backward(lowerGradient: w)
        let h = 1e-6
        for i in 0..<n {
            for j in 0...i {
                var plus = a, minus = a
                plus[i][j] += h; minus[i][j] -= h
                if i != j { plus[j][i] += h; minus[j][i] -= h }
                let fd = (try f(plus) - f(minus)) / (2 * h)
                let analytic = i == j ? grad[i, i] : grad[i, j] + grad[j, i]
                #expect(abs(fd - analytic) < 1e-6 * max(1, abs(fd)), "entry (\(i), \(j)): fd \(fd) vs \(analytic)")
            }
        }
    }
}
