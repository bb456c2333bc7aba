/// Why a Sobol sequence could not be made or advanced.
public enum SobolError: Error, Equatable, CustomStringConvertible {
    /// `dimension` must lie in 1…`SobolSequence.maximumDimension`.
    case dimensionOutOfRange(dimension: Int, maximum: Int)
    /// A count (points to draw or skip) was negative or would pass the 2^52 points the sequence has.
    case invalidCount(Int)

    public var description: String {
        switch self {
        case let .dimensionOutOfRange(dimension, maximum):
            return "Sobol dimension \(dimension) is out of range: expected 1…\(maximum)"
        case let .invalidCount(count):
            return "Sobol point count \(count) is invalid: expected 0…\(SobolSequence.pointLimit) points in total"
        }
    }
}

/// A Sobol low-discrepancy sequence in [0, 1)^dimension with Joe–Kuo (new-joe-kuo-6.21201) direction numbers,
/// generated in Gray-code order with 52-bit precision.
///
/// Unscrambled, the first point is the origin and the points are exactly those of scipy's
/// `scipy.stats.qmc.Sobol(d, scramble=False)` and PyTorch's `SobolEngine(d, scramble=False)`.
/// Scrambled (the default), each coordinate's generator matrix is multiplied by a random lower-triangular
/// binary matrix with unit diagonal and the points get a random digital shift (Matoušek's linear matrix
/// scramble + digital shift, the scheme scipy and PyTorch use); the randomness comes from `SplitMix64(seed:)`,
/// so a seed fixes the sequence. Scrambling keeps the (t, m, s)-net structure: the first 2^m points of each
/// coordinate still hit every interval [k/2^m, (k+1)/2^m) exactly once.
public struct SobolSequence: Sendable {
    /// Bits of precision of every coordinate; points are multiples of 2^−52.
    public static let bits = 52
    /// How many points the sequence has (2^52).
    public static let pointLimit = 1 << 52

    /// Number of coordinates of every point.
    public let dimension: Int
    /// Whether the sequence was scrambled.
    public let isScrambled: Bool
    /// Index of the next point `next()` returns (the number of points drawn or skipped so far).
    public private(set) var index: Int = 0

    /// Direction integers V_{d,k} (k = 0…bits−1), row-major by coordinate; scrambled if `isScrambled`.
    private let directions: [UInt64]
    /// Digital shift per coordinate (zero when unscrambled).
    private let shift: [UInt64]
    /// The integer coordinates of point `index`, shift included.
    private var current: [UInt64]

    /// Makes the sequence. Throws `SobolError.dimensionOutOfRange` unless 1 ≤ dimension ≤ 1111.
    public init(dimension: Int, scramble: Bool = true, seed: UInt64 = 0) throws {
        guard dimension >= 1, dimension <= Self.maximumDimension else {
            throw SobolError.dimensionOutOfRange(dimension: dimension, maximum: Self.maximumDimension)
        }
        self.dimension = dimension
        self.isScrambled = scramble
        var directions = Self.unscrambledDirections(dimension: dimension)
        var shift = [UInt64](repeating: 0, count: dimension)
        if scramble {
            var generator = SplitMix64(seed: seed)
            let bits = Self.bits
            let wordMask: UInt64 = (1 << UInt64(bits)) - 1
            for d in 0..<dimension {
                // Row i of the lower-triangular matrix acts on bit position bits−1−i (most significant first):
                // it may use positions bits−1 … bits−1−i and always has its diagonal bit.
                var rows = [UInt64](repeating: 0, count: bits)
                for i in 0..<bits {
                    let position = UInt64(bits - 1 - i)
                    let allowed = wordMask & ~((1 << position) - 1)
                    rows[i] = (generator.next() & allowed) | (1 << position)
                }
                for k in 0..<bits {
                    let v = directions[d * bits + k]
                    var scrambled: UInt64 = 0
                    for i in 0..<bits where (rows[i] & v).nonzeroBitCount & 1 == 1 {
                        scrambled |= 1 << UInt64(bits - 1 - i)
                    }
                    directions[d * bits + k] = scrambled
                }
                shift[d] = generator.next() & wordMask
            }
        }
        self.directions = directions
        self.shift = shift
        self.current = shift
    }

    /// The next point, then advances. Points are in [0, 1).
    /// - Precondition: fewer than `pointLimit` points drawn (2^52; unreachable in practice).
    public mutating func next() -> [Double] {
        precondition(index < Self.pointLimit - 1, "Sobol sequence exhausted after 2^52 points")
        let scale = 1.0 / Double(UInt64(1) << UInt64(Self.bits))
        let point = current.map { Double($0) * scale }
        let column = (~UInt64(index)).trailingZeroBitCount
        for d in 0..<dimension {
            current[d] ^= directions[d * Self.bits + column]
        }
        index += 1
        return point
    }

    /// The next `count` points, one array per point. Throws `SobolError.invalidCount` for a negative count
    /// or one that passes the end of the sequence.
    public mutating func draw(_ count: Int) throws -> [[Double]] {
        guard count >= 0, count <= Self.pointLimit - 1 - index else { throw SobolError.invalidCount(count) }
        var points: [[Double]] = []
        points.reserveCapacity(count)
        for _ in 0..<count { points.append(next()) }
        return points
    }

    /// Skips `count` points (e.g. to continue a sequence from a stored index).
    public mutating func fastForward(_ count: Int) throws {
        guard count >= 0, count <= Self.pointLimit - 1 - index else { throw SobolError.invalidCount(count) }
        index += count
        let gray = UInt64(index) ^ (UInt64(index) >> 1)
        for d in 0..<dimension {
            var value = shift[d]
            for k in 0..<Self.bits where gray & (1 << UInt64(k)) != 0 {
                value ^= directions[d * Self.bits + k]
            }
            current[d] = value
        }
    }

    /// Quasi-random standard normal samples: `count` points of a scrambled Sobol sequence in `dimension`
    /// coordinates mapped through Φ⁻¹ (`StandardNormal.quantile`). Each coordinate u is first moved to the
    /// centre of its 2^−52 cell (u + 2^−53) so that Φ⁻¹ stays finite. These are the fixed base samples ε of
    /// the reparameterization Y = μ + L ε used by qEHVI (one point per MC sample, coordinates = q·M).
    public static func normalSamples(count: Int, dimension: Int, seed: UInt64) throws -> [[Double]] {
        var sequence = try SobolSequence(dimension: dimension, scramble: true, seed: seed)
        let halfCell = 1.0 / Double(UInt64(1) << UInt64(bits + 1))
        return try sequence.draw(count).map { point in point.map { StandardNormal.quantile($0 + halfCell) } }
    }

    /// Joe–Kuo direction numbers V_{d,k} = m_{d,k} · 2^(bits−k) (k = 1…bits) for the first `dimension` coordinates.
    private static func unscrambledDirections(dimension: Int) -> [UInt64] {
        let bits = Self.bits
        var directions = [UInt64](repeating: 0, count: dimension * bits)
        for d in 0..<dimension {
            var m = [UInt64](repeating: 1, count: bits)  // m_1 … m_bits (0-based); coordinate 1 is all ones.
            if d > 0 {
                let entry = parsedDirectionNumbers[d - 1]
                let s = entry.degree
                for k in 0..<min(s, bits) { m[k] = entry.initial[k] }
                if s < bits {
                    for k in s..<bits {
                        // m_k = 2 a_1 m_{k−1} ⊕ 4 a_2 m_{k−2} ⊕ … ⊕ 2^{s−1} a_{s−1} m_{k−s+1} ⊕ 2^s m_{k−s} ⊕ m_{k−s}
                        var value = m[k - s] ^ (m[k - s] << UInt64(s))
                        for i in 1..<s where (entry.coefficients >> UInt64(s - 1 - i)) & 1 == 1 {
                            value ^= m[k - i] << UInt64(i)
                        }
                        m[k] = value
                    }
                }
            }
            for k in 0..<bits {
                directions[d * bits + k] = m[k] << UInt64(bits - 1 - k)
            }
        }
        return directions
    }

    /// One line of the Joe–Kuo table: degree s, interior coefficient bits a, initial m_1…m_s.
    struct DirectionEntry: Sendable {
        let degree: Int
        let coefficients: UInt64
        let initial: [UInt64]
    }

    /// The Joe–Kuo table (dimensions 2…maximumDimension), parsed once.
    static let parsedDirectionNumbers: [DirectionEntry] = joeKuoDirectionNumbersText
        .split(separator: "\n")
        .map { line in
            let fields = line.split(separator: " ").map { UInt64($0)! }
            return DirectionEntry(degree: Int(fields[1]), coefficients: fields[2], initial: Array(fields[3...]))
        }
}
