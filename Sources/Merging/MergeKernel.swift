import Foundation
import SafeTensors

/// Which magnitudes of a task vector survive magnitude-based sparsification (TIES, Breadcrumbs):
/// an element is kept when `lowKey ≤ key(|δ|) ≤ highKey`, where key(x) is the bit pattern of the
/// Float |x| (monotone in |x| for non-negative floats; NaN above +∞).
public struct MagnitudeWindow: Sendable, Equatable, Codable {
    public var lowKey: UInt32
    public var highKey: UInt32

    public init(lowKey: UInt32, highKey: UInt32) {
        self.lowKey = lowKey
        self.highKey = highKey
    }

    /// Keeps everything.
    public static let all = MagnitudeWindow(lowKey: 0, highKey: .max)
    /// Keeps nothing.
    public static let none = MagnitudeWindow(lowKey: 1, highKey: 0)

    /// The key of a magnitude: the bit pattern of |x|.
    @inline(__always)
    public static func key(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }

    @inline(__always)
    func keeps(_ x: Float) -> Bool {
        let k = Self.key(x)
        return k >= lowKey && k <= highKey
    }

    /// The window for `n` elements given the magnitude at ascending rank `r` (0-based) by `valueAt`:
    /// - TIES (`magnitude`): k = max(1, ⌊density·n⌋) largest; every magnitude ≥ the k-th largest is
    ///   kept (ties at the threshold are all kept, so a few more than k survive when values repeat).
    /// - Breadcrumbs (`magnitudeOutliers`): t = ⌊density·n⌋ kept, n_top = ⌊gamma·n⌋ largest
    ///   dropped, n_bot = max(0, n − t − n_top) smallest dropped; kept: magnitudes between the
    ///   order statistics n_bot and n_bot + t − 1 (inclusive, ties at both ends kept).
    /// density ≥ 1 keeps everything; density ≤ 0 (or an empty tensor) keeps nothing.
    public static func window(
        for sparsification: MergeMethod.Sparsification, elements n: Int, density: Double, gamma: Double,
        keyAtAscendingRank: (Int) throws -> UInt32
    ) rethrows -> MagnitudeWindow {
        if density >= 1 { return .all }
        if density <= 0 || n == 0 { return .none }
        switch sparsification {
        case .magnitude:
            let k = max(1, Int((density * Double(n)).rounded(.towardZero)))
            return MagnitudeWindow(lowKey: try keyAtAscendingRank(n - min(k, n)), highKey: .max)
        case .magnitudeOutliers:
            let target = Int((density * Double(n)).rounded(.towardZero))
            guard target > 0 else { return .none }
            let top = Int((gamma * Double(n)).rounded(.towardZero))
            let bottom = max(0, n - target - top)
            return MagnitudeWindow(lowKey: try keyAtAscendingRank(bottom), highKey: try keyAtAscendingRank(bottom + target - 1))
        case .random, .rankedRandom:
            return .all
        }
    }

    /// The ascending ranks `window(for:…)` asks for (for planning a selection pass).
    public static func ranksNeeded(for sparsification: MergeMethod.Sparsification, elements n: Int, density: Double, gamma: Double) -> [Int] {
        var ranks: [Int] = []
        _ = window(for: sparsification, elements: n, density: density, gamma: gamma) { ranks.append($0); return 0 }
        return ranks
    }
}

/// The seeded random streams of DARE and DELLA: one counter-based stream per (seed, tensor name,
/// model index), so the draw for an element depends only on those and the element's index — not
/// on chunking, threads or scheduling.
public enum MergeRandom {
    /// The stream key of a tensor of a model: splitmix64-mixing of the seed, the FNV-1a hash of the
    /// name's UTF-8 bytes and the model index (0-based, in the order the models were given).
    public static func streamKey(seed: UInt64, tensor: String, model: Int) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in tensor.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return mixSeeds(seed, hash, UInt64(model))
    }

    /// Uniform in [0, 1) with 53 random bits: the splitmix64 output number `element` + 1 of the stream.
    @inline(__always)
    public static func uniform(key: UInt64, element: Int) -> Double {
        var z = key &+ (UInt64(element) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) * 0x1p-53
    }
}

/// Everything the element-wise merge of one tensor needs besides the data.
struct TensorMergeContext {
    var method: MergeMethod
    var parameters: ResolvedMergeParameters
    /// Weight of each model in the tensor's block.
    var weights: [Float]
    /// Per model: magnitude window (TIES, Breadcrumbs).
    var windows: [MagnitudeWindow]
    /// Per model: random stream key (DARE, DELLA).
    var streamKeys: [UInt64]
    /// DELLA ranks magnitudes within rows of this many elements (the last dimension; the whole tensor if 1-D).
    var rowLength: Int
}

/// The pure merge of a run of elements. `models[i]` and `base` hold `count` decoded values starting
/// at element `firstElement` of the tensor; the result goes to `out`. `scratch` holds at least
/// `models.count × count` floats (DELLA keep probabilities).
func mergeElements(
    models: [UnsafeBufferPointer<Float>], base: UnsafeBufferPointer<Float>?, firstElement: Int,
    context c: TensorMergeContext, scratch: UnsafeMutableBufferPointer<Float>, out: UnsafeMutableBufferPointer<Float>
) {
    let n = models.count
    let count = out.count
    if c.method == .linear {
        if n == 2 {
            let w0 = c.weights[0], w1 = c.weights[1]
            let a = models[0].baseAddress!, b = models[1].baseAddress!, o = out.baseAddress!
            for j in 0..<count { o[j] = w0 * a[j] + w1 * b[j] }
        } else {
            for j in 0..<count {
                var s: Float = 0
                for i in 0..<n { s += c.weights[i] * models[i][j] }
                out[j] = s
            }
        }
        return
    }
    let base = base!
    let p = c.parameters
    let sparsify: MergeMethod.Sparsification? = p.density >= 1 ? nil : c.method.sparsification
    let density = p.density
    let invDensity = Float(1 / p.density)
    let rescale = p.rescale
    if sparsify == .rankedRandom {
        dellaKeepProbabilities(models: models, base: base, rowLength: c.rowLength, density: p.density, epsilon: p.epsilon, into: scratch)
    }
    let lambda = Float(p.lambda)
    let weights = c.weights
    withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { wd in
        for j in 0..<count {
            let b = base[j]
            // Sparsified, weighted task vectors.
            for i in 0..<n {
                var d = models[i][j] - b
                switch sparsify {
                case nil:
                    break
                case .magnitude, .magnitudeOutliers:
                    if !c.windows[i].keeps(d) { d = 0 }
                case .random:
                    if MergeRandom.uniform(key: c.streamKeys[i], element: firstElement + j) < density {
                        if rescale { d *= invDensity }
                    } else {
                        d = 0
                    }
                case .rankedRandom:
                    let keep = scratch[i * count + j]
                    if MergeRandom.uniform(key: c.streamKeys[i], element: firstElement + j) < Double(keep) {
                        if rescale { d /= keep }
                    } else {
                        d = 0
                    }
                }
                wd[i] = weights[i] * d
            }
            var mixed: Float = 0
            var divisor: Float = 0
            if c.method.electsSign {
                var total: Float = 0
                for i in 0..<n { total += wd[i] }
                let majorityPositive = total >= 0
                for i in 0..<n where wd[i] != 0 && (wd[i] > 0) == majorityPositive {
                    mixed += wd[i]
                    divisor += weights[i]
                }
                if divisor == 0 { divisor = 1 }
            } else {
                for i in 0..<n {
                    mixed += wd[i]
                    divisor += weights[i]
                }
                if abs(divisor) < 1e-8 { divisor = 1 }
            }
            if p.normalize { mixed /= divisor }
            if lambda != 1 { mixed *= lambda }
            out[j] = b + mixed
        }
    }
}

/// DELLA (MAGPRUNE) keep probabilities: within each row, magnitudes |δ| are ranked ascending
/// (equal magnitudes by position), rank r ∈ 0…m−1 gets p = density − ε + 2ε·r/(m − 1)
/// (a one-element row gets `density`). Written to `out[i·count + j]`.
func dellaKeepProbabilities(
    models: [UnsafeBufferPointer<Float>], base: UnsafeBufferPointer<Float>, rowLength: Int,
    density: Double, epsilon: Double, into out: UnsafeMutableBufferPointer<Float>
) {
    let count = base.count
    let m = max(1, rowLength)
    precondition(count % m == 0, "DELLA rows must not straddle chunks")
    var keys = [UInt64](repeating: 0, count: m)
    for (i, model) in models.enumerated() {
        for rowStart in stride(from: 0, to: count, by: m) {
            for j in 0..<m {
                let key = MagnitudeWindow.key(model[rowStart + j] - base[rowStart + j])
                keys[j] = UInt64(key) << 32 | UInt64(j)  // magnitude, then position
            }
            keys.sort()
            for (rank, packed) in keys.enumerated() {
                let j = Int(packed & 0xFFFF_FFFF)
                let p = m == 1 ? density : density - epsilon + 2 * epsilon * Double(rank) / Double(m - 1)
                out[i * count + rowStart + j] = Float(p)
            }
        }
    }
}

/// The linear merge of two BF16 runs straight into BF16: per element exactly the general path's
/// arithmetic (Float w0·a + w1·b, then round to nearest even with NaN kept, as
/// ``FloatCodec/floatToBF16(_:)``), so the bytes are the same; only the intermediate Float buffers
/// are skipped. A plain loop over typed pointers, which the compiler vectorizes.
func linearBF16(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int, w0: Float, w1: Float, into out: UnsafeMutableRawPointer) {
    let x = a.bindMemory(to: UInt16.self, capacity: count), y = b.bindMemory(to: UInt16.self, capacity: count)
    let o = out.bindMemory(to: UInt16.self, capacity: count)
    for j in 0..<count {
        let r = w0 * Float(bitPattern: UInt32(x[j]) &<< 16) + w1 * Float(bitPattern: UInt32(y[j]) &<< 16)
        let bits = r.bitPattern
        let rounded = UInt16(truncatingIfNeeded: (bits &+ (0x7FFF &+ ((bits &>> 16) & 1))) &>> 16)
        let nan = UInt16(truncatingIfNeeded: bits &>> 16) | 0x0040
        o[j] = bits & 0x7FFF_FFFF > 0x7F80_0000 ? nan : rounded
    }
}
