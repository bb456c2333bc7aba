import Foundation
import Testing
@testable import SafeTensors

/// Reference rounding to a 16-bit format by brute force: of the two neighbouring encodings of
/// `x` (by truncation), take the one nearer in exact Double arithmetic, ties to the even encoding.
private func referenceRound(_ x: Float, truncate: (Float) -> UInt16, decode: (UInt16) -> Double, maxFinite: Double, infBits: UInt16) -> UInt16? {
    guard x.isFinite else { return nil }
    let sign: UInt16 = x.sign == .minus ? 0x8000 : 0
    let a = abs(Double(x))
    let lo = truncate(abs(x))
    let loValue = decode(lo)
    // The next encoding up; past the largest finite value the next value is "2^emax+1"-ish: use the
    // overflow threshold directly (IEEE: round to Inf when |x| ≥ maxFinite + ulp/2).
    let hi = lo + 1
    let hiValue = (hi & 0x7FFF) >= infBits ? maxFinite + (maxFinite - decode(infBits - 1 - 1)) : decode(hi)
    let dLo = a - loValue, dHi = hiValue - a
    let pick: UInt16 = dLo < dHi ? lo : (dHi < dLo ? hi : (lo & 1 == 0 ? lo : hi))
    return sign | min(pick, infBits)
}

private func decodeBF16Double(_ b: UInt16) -> Double { Double(Float(bitPattern: UInt32(b) << 16)) }

@Suite struct FloatCodecTests {
    @Test func bf16DecodeIsTheHighHalfOfAFloat() {
        for bits in UInt16.min...UInt16.max {
            let f = FloatCodec.bf16ToFloat(bits)
            #expect(f.bitPattern == UInt32(bits) << 16)
        }
    }

    #if !(os(macOS) && arch(x86_64))
    @Test func f16DecodeMatchesSwiftFloat16Exhaustively() {
        var mismatches = 0
        for bits in UInt16.min...UInt16.max {
            let ours = FloatCodec.f16ToFloat(bits)
            let reference = Float(Float16(bitPattern: bits))
            if ours.isNaN ? !reference.isNaN : ours.bitPattern != reference.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func f16EncodeMatchesSwiftFloat16OnRandomAndSpecialValues() {
        var rng = TestRNG(seed: 42)
        var inputs: [Float] = [0, -0, 1, 65504, 65519.996, 65520, -65520, .infinity, -.infinity, .greatestFiniteMagnitude,
                               0x1p-24, 0x1p-25, 0x1.8p-25, 0x1.8p-24, 0x1p-14, 0x1.ffcp-15, .leastNonzeroMagnitude]
        for _ in 0..<500_000 { inputs.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        // Dense coverage of the f16 range: every f16 value and the midpoints around it.
        for bits in UInt16(0)..<0x7C00 {
            let v = Float(Float16(bitPattern: bits))
            inputs.append(v)
            inputs.append(v.nextUp)
            inputs.append(v.nextDown)
            let next = Float(Float16(bitPattern: bits + 1))
            inputs.append((v + next) / 2)
        }
        var mismatches: [Float] = []
        for x in inputs {
            let ours = FloatCodec.floatToF16(x)
            let reference = Float16(x).bitPattern
            if x.isNaN {
                if !Float16(bitPattern: ours).isNaN || (ours & 0x8000) != (UInt16(x.bitPattern >> 16) & 0x8000) { mismatches.append(x) }
            } else if ours != reference {
                mismatches.append(x)
            }
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(5).map { String($0.bitPattern, radix: 16) })")
    }
    #endif

    @Test func bf16EncodeMatchesBruteForceNearestEven() {
        var rng = TestRNG(seed: 7)
        var inputs: [Float] = [0, -0, 1, 0x1.01p0, 0x1.03p0, -0x1.01p0, .greatestFiniteMagnitude, Float(bitPattern: 0x7F7F_8000),
                               Float(bitPattern: 0x7F7F_7FFF), .leastNonzeroMagnitude, .leastNormalMagnitude]
        for _ in 0..<1_000_000 { inputs.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        for bits in stride(from: UInt32(0), to: 0x7F80_0000, by: 0x8000) { inputs.append(Float(bitPattern: bits)) }  // every tie
        var mismatches: [Float] = []
        for x in inputs {
            let ours = FloatCodec.floatToBF16(x)
            if x.isNaN {
                if !FloatCodec.bf16ToFloat(ours).isNaN { mismatches.append(x) }
                continue
            }
            let reference = referenceRound(
                x, truncate: { UInt16($0.bitPattern >> 16) }, decode: decodeBF16Double,
                maxFinite: Double(Float(bitPattern: 0x7F7F_0000)), infBits: 0x7F80)!
            if ours != reference { mismatches.append(x) }
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(5).map { String($0.bitPattern, radix: 16) })")
    }

    @Test func specialValuesKeepTheirMeaning() {
        for (encode, decode) in [(FloatCodec.floatToBF16, FloatCodec.bf16ToFloat), (FloatCodec.floatToF16, FloatCodec.f16ToFloat)] {
            #expect(decode(encode(.infinity)) == .infinity)
            #expect(decode(encode(-.infinity)) == -.infinity)
            #expect(decode(encode(.nan)).isNaN)
            #expect(decode(encode(Float(bitPattern: 0x7F80_0001))).isNaN)  // signalling NaN stays NaN
            #expect(decode(encode(-0.0)).sign == .minus)
        }
        #expect(FloatCodec.f16ToFloat(FloatCodec.floatToF16(1e5)) == .infinity)
        #expect(FloatCodec.f16ToFloat(FloatCodec.floatToF16(-1e5)) == -.infinity)
        #expect(FloatCodec.bf16ToFloat(FloatCodec.floatToBF16(.greatestFiniteMagnitude)) == .infinity)
    }

    @Test(arguments: [DType.bf16, .f16, .f32])
    func bulkLoopsAgreeWithScalarConversions(dtype: DType) {
        var rng = TestRNG(seed: 3)
        let values = (0..<10_001).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        // Odd start offset: the bulk loops must handle unaligned data.
        var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize + 1)
        bytes.withUnsafeMutableBytes { raw in
            let region = UnsafeMutableRawBufferPointer(rebasing: raw[1...])
            values.withUnsafeBufferPointer { FloatCodec.encode($0, as: dtype, into: region) }
        }
        var decoded = [Float](repeating: 0, count: values.count)
        bytes.withUnsafeBytes { raw in
            decoded.withUnsafeMutableBufferPointer { FloatCodec.decode(UnsafeRawBufferPointer(rebasing: raw[1...]), as: dtype, into: $0) }
        }
        for (i, x) in values.enumerated() {
            let expected: Float = switch dtype {
            case .bf16: FloatCodec.bf16ToFloat(FloatCodec.floatToBF16(x))
            case .f16: FloatCodec.f16ToFloat(FloatCodec.floatToF16(x))
            default: x
            }
            #expect(decoded[i].bitPattern == expected.bitPattern || (decoded[i].isNaN && expected.isNaN))
            let stored = bytes.withUnsafeBytes { raw -> UInt32 in
                dtype == .f32 ? raw.loadUnaligned(fromByteOffset: 1 + 4 * i, as: UInt32.self)
                    : UInt32(raw.loadUnaligned(fromByteOffset: 1 + 2 * i, as: UInt16.self))
            }
            let scalar: UInt32 = switch dtype {
            case .bf16: UInt32(FloatCodec.floatToBF16(x))
            case .f16: UInt32(FloatCodec.floatToF16(x))
            default: x.bitPattern
            }
            #expect(stored == scalar)
        }
    }
}
