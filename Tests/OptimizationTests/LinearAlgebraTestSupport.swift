import Foundation
@testable import Optimization

/// Independent, deliberately naive references and random data for the linear-algebra and GP tests.
enum NaiveReference {
    /// Uniform on [0, 1) from the generator's top 53 bits.
    static func uniform(_ rng: inout SplitMix64) -> Double {
        Double(rng.next() >> 11) * 0x1p-53
    }

    /// A random n × m matrix with entries uniform in [−1, 1].
    static func randomMatrix(_ n: Int, _ m: Int, _ rng: inout SplitMix64) -> [[Double]] {
        (0..<n).map { _ in (0..<m).map { _ in 2 * uniform(&rng) - 1 } }
    }

    /// B·Bᵀ + shift·I for a random n × n B.
    static func randomSPD(_ n: Int, shift: Double = 0.5, _ rng: inout SplitMix64) -> [[Double]] {
        let b = randomMatrix(n, n, &rng)
        var a = matmul(b, transpose(b))
        for i in 0..<n { a[i][i] += shift }
        return a
    }

    static func transpose(_ a: [[Double]]) -> [[Double]] {
        guard let m = a.first?.count else { return [] }
        return (0..<m).map { j in a.map { $0[j] } }
    }

    static func matmul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let p = b.first?.count ?? 0
        return a.map { row in
            (0..<p).map { j in zip(row, b).reduce(0) { $0 + $1.0 * $1.1[j] } }
        }
    }

    static func matvec(_ a: [[Double]], _ x: [Double]) -> [Double] {
        a.map { zip($0, x).reduce(0) { $0 + $1.0 * $1.1 } }
    }

    /// Gaussian elimination with partial pivoting: solution of A x = b and log|det A|.
    static func solveAndLogAbsDet(_ a: [[Double]], _ b: [Double]) -> (x: [Double], logAbsDet: Double) {
        var m = a, rhs = b
        let n = a.count
        var logDet = 0.0
        for c in 0..<n {
            var p = c
            for r in c..<n where abs(m[r][c]) > abs(m[p][c]) { p = r }
            m.swapAt(c, p); rhs.swapAt(c, p)
            logDet += log(abs(m[c][c]))
            for r in (c + 1)..<n {
                let f = m[r][c] / m[c][c]
                for k in c..<n { m[r][k] -= f * m[c][k] }
                rhs[r] -= f * rhs[c]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = rhs[i]
            for k in (i + 1)..<n { s -= m[i][k] * x[k] }
            x[i] = s / m[i][i]
        }
        return (x, logDet)
    }

    static func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func maxAbs(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }
}
