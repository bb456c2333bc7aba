/// Exact conversions between `Float` and the 16-bit float formats, and bulk encode/decode loops.
///
/// Reading (BF16/F16 → Float) is exact. Writing (Float → BF16/F16) rounds to nearest, ties to even,
/// as IEEE 754 prescribes: NaN stays NaN (quieted, sign kept), ±Inf stays ±Inf, finite values too
/// large for the format become ±Inf, values below half the smallest subnormal become ±0.
/// All data is little-endian, as the safetensors format requires.
public enum FloatCodec {
    // MARK: scalars

    /// bfloat16 bits → Float (exact).
    @inlinable @inline(__always)
    public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float → bfloat16 bits, round to nearest even.
    @inlinable @inline(__always)
    public static func floatToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 {  // NaN: keep sign and top payload, force quiet
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        let roundingBias: UInt32 = 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }

    /// IEEE binary16 bits → Float (exact, subnormals included).
    @inlinable @inline(__always)
    public static func f16ToFloat(_ bits: UInt16) -> Float {
        let h = UInt32(bits)
        let sign = (h & 0x8000) << 16
        let exponent = (h >> 10) & 0x1F
        let mantissa = h & 0x3FF
        if exponent == 0x1F {  // Inf / NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {  // zero / subnormal: mantissa · 2⁻²⁴, exact in Float
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        }
        return Float(bitPattern: sign | ((exponent &+ 112) << 23) | (mantissa << 13))
    }

    /// Float → IEEE binary16 bits, round to nearest even, overflow to ±Inf.
    @inlinable @inline(__always)
    public static func floatToF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude >= 0x7F80_0000 {  // Inf or NaN
            let nanBits: UInt16 = magnitude > 0x7F80_0000 ? 0x0200 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x3FF) : 0
            return sign | 0x7C00 | nanBits
        }
        if magnitude >= 0x3880_0000 {  // normal in binary16 (≥ 2⁻¹⁴) or overflow
            // Rebias the exponent (127 → 15) and round the 13 dropped mantissa bits, ties to even.
            let rounded = (magnitude &- 0x3800_0000 &+ 0x0FFF &+ ((magnitude >> 13) & 1)) >> 13
            return sign | UInt16(truncatingIfNeeded: min(rounded, 0x7C00))
        }
        if magnitude <= 0x3300_0000 {  // ≤ 2⁻²⁵: rounds to zero (2⁻²⁵ itself is a tie, to even 0)
            return sign
        }
        // Subnormal result: value / 2⁻²⁴ = significand · 2^(exponent − 126), shift ≥ 14.
        let exponent = magnitude >> 23
        let significand = (magnitude & 0x007F_FFFF) | 0x0080_0000
        let shift = 126 &- exponent
        var q = significand >> shift
        let remainder = significand & ((1 << shift) &- 1)
        let half: UInt32 = 1 << (shift &- 1)
        if remainder > half || (remainder == half && q & 1 == 1) { q &+= 1 }
        return sign | UInt16(truncatingIfNeeded: q)
    }

    // MARK: bulk

    /// Decodes `out.count` little-endian elements of `dtype` (BF16, F16 or F32) from `bytes`.
    ///
    /// - Precondition: `dtype.isFloatConvertible` and `bytes.count == out.count * dtype.byteSize`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, as dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(dtype.isFloatConvertible, "FloatCodec.decode: \(dtype) is not a float type")
        precondition(bytes.count == out.count * dtype.byteSize, "FloatCodec.decode: byte count mismatch")
        let n = out.count
        guard n > 0, let dst = out.baseAddress, let src = bytes.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .bf16:
            for i in 0..<n {
                dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            }
        case .f16:
            for i in 0..<n {
                dst[i] = f16ToFloat(src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            }
        default:
            preconditionFailure()
        }
    }

    /// Encodes `values` as little-endian `dtype` (BF16, F16 or F32) into `out`, rounding to nearest even.
    ///
    /// - Precondition: `dtype.isFloatConvertible` and `out.count == values.count * dtype.byteSize`.
    public static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType, into out: UnsafeMutableRawBufferPointer) {
        precondition(dtype.isFloatConvertible, "FloatCodec.encode: \(dtype) is not a float type")
        precondition(out.count == values.count * dtype.byteSize, "FloatCodec.encode: byte count mismatch")
        let n = values.count
        guard n > 0, let src = values.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            dst.copyMemory(from: src, byteCount: n * 4)
        case .bf16:
            for i in 0..<n {
                dst.storeBytes(of: floatToBF16(src[i]), toByteOffset: i &* 2, as: UInt16.self)
            }
        case .f16:
            for i in 0..<n {
                dst.storeBytes(of: floatToF16(src[i]), toByteOffset: i &* 2, as: UInt16.self)
            }
        default:
            preconditionFailure()
        }
    }
}
