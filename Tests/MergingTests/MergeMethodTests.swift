import Foundation
import SafeTensors
import Testing
@testable import Merging

/// The merge of one tensor written straight from the papers' definitions (TIES, DARE,
/// Breadcrumbs, DELLA) and mergekit's parameter semantics, in Double, by sorting whole tensors —
/// independent of the engine's streaming selection, chunking and Float arithmetic. The only shared
/// piece is the specified random stream (``MergeRandom``), which DARE and DELLA must consume.
enum ReferenceMerge {
    static func merge(
        tensor name: String, shape: [Int], models: [[Float]], base: [Float], weights: [Double],
        method: MergeMethod, density: Double = 1, gamma: Double = 0.01, epsilon: Double = 0.15,
        lambda: Double = 1, normalize: Bool? = nil, rescale: Bool = true, seed: UInt64 = 0
    ) -> [Double] {
        let n = base.count
        if method == .linear {
            return (0..<n).map { j in (0..<models.count).reduce(0.0) { $0 + weights[$1] * Double(models[$1][j]) } }
        }
        let normalize = normalize ?? (method == .ties || method == .della)
        // Sparsified task vectors.
        var deltas: [[Double]] = models.map { m in (0..<n).map { Double(m[$0]) - Double(base[$0]) } }
        if density < 1 {
            for i in 0..<models.count {
                let d = deltas[i]
                let key = MergeRandom.streamKey(seed: seed, tensor: name, model: i)
                switch method {
                case .ties:
                    let k = max(1, Int(density * Double(n)))
                    let threshold = d.map(abs).sorted(by: >)[k - 1]
                    deltas[i] = d.map { abs($0) >= threshold ? $0 : 0 }
                case .breadcrumbs:
                    let target = Int(density * Double(n)), top = Int(gamma * Double(n))
                    let bottom = max(0, n - target - top)
                    let ascending = d.map(abs).sorted()
                    if target == 0 { deltas[i] = d.map { _ in 0 }; break }
                    let lo = ascending[bottom], hi = ascending[bottom + target - 1]
                    deltas[i] = d.map { abs($0) >= lo && abs($0) <= hi ? $0 : 0 }
                case .dareLinear, .dareTies:
                    deltas[i] = (0..<n).map { j in
                        MergeRandom.uniform(key: key, element: j) < density ? (rescale ? d[j] / density : d[j]) : 0
                    }
                case .della:
                    let m = shape.count >= 2 ? shape[shape.count - 1] : n
                    var out = [Double](repeating: 0, count: n)
                    for rowStart in stride(from: 0, to: n, by: m) {
                        let order = (0..<m).sorted { (abs(d[rowStart + $0]), $0) < (abs(d[rowStart + $1]), $1) }
                        for (rank, j) in order.enumerated() {
                            let p = m == 1 ? density : density - epsilon + 2 * epsilon * Double(rank) / Double(m - 1)
                            let e = rowStart + j
                            out[e] = MergeRandom.uniform(key: key, element: e) < p ? (rescale ? d[e] / p : d[e]) : 0
                        }
                    }
                    deltas[i] = out
                default:
                    break
                }
            }
        }
        let elect = method == .ties || method == .dareTies || method == .della
        return (0..<n).map { j in
            let wd = (0..<models.count).map { weights[$0] * deltas[$0][j] }
            var mixed = 0.0, divisor = 0.0
            if elect {
                let sign: Double = wd.reduce(0, +) >= 0 ? 1 : -1
                for i in wd.indices where wd[i] != 0 && (wd[i] > 0 ? 1.0 : -1.0) == sign {
                    mixed += wd[i]
                    divisor += weights[i]
                }
                if divisor == 0 { divisor = 1 }
            } else {
                mixed = wd.reduce(0, +)
                divisor = weights.reduce(0, +)
                if abs(divisor) < 1e-8 { divisor = 1 }
            }
            if normalize { mixed /= divisor }
            return Double(base[j]) + lambda * mixed
        }
    }
}

@Suite("merge methods against an independent double-precision reference")
struct MergeMethodTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var method: MergeMethod
        var parameters: MergeParameters
        var models = 2
        var testDescription: String {
            "\(method.rawValue) \(parameters.setNames.joined(separator: ","))\(parameters.hasPerBlockValues ? " per block" : "")\(models > 2 ? " \(models) models" : "")"
        }
    }

    static let cases: [Case] = [
        Case(method: .linear, parameters: MergeParameters()),
        Case(method: .linear, parameters: MergeParameters(), models: 3),
        Case(method: .taskArithmetic, parameters: MergeParameters(lambda: 0.8)),
        Case(method: .ties, parameters: MergeParameters(density: 0.4)),
        Case(method: .ties, parameters: MergeParameters(density: 0.3, normalize: false), models: 3),
        Case(method: .dareLinear, parameters: MergeParameters(density: 0.6)),
        Case(method: .dareTies, parameters: MergeParameters(density: 0.5, lambda: 1.2, rescale: false), models: 3),
        Case(method: .breadcrumbs, parameters: MergeParameters(density: 0.7, gamma: 0.05)),
        Case(method: .della, parameters: MergeParameters(density: 0.5, epsilon: 0.2)),
        Case(method: .della, parameters: MergeParameters(density: 0.6, epsilon: 0.1, lambda: 0.9), models: 3),
        // One value per block (embedding, B1, B2, B3, head).
        Case(method: .taskArithmetic, parameters: MergeParameters(lambda: [0.5, 1, 1.5, 0.8, 1.2])),
        Case(method: .ties, parameters: MergeParameters(density: [0.2, 0.9, 0.4, 1, 0.6])),
        Case(method: .dareTies, parameters: MergeParameters(density: [0.7, 0.3, 1, 0.5, 0.9], lambda: [1, 1.1, 0.9, 1, 1.3]), models: 3),
        Case(method: .breadcrumbs, parameters: MergeParameters(density: [0.8, 0.6, 0.9, 0.7, 0.5], gamma: [0.01, 0.1, 0, 0.05, 0.2])),
        Case(method: .della, parameters: MergeParameters(density: [0.5, 0.8, 0.3, 0.6, 1], epsilon: [0.2, 0.1, 0.25, 0, 0.1])),
    ]

    @Test("every tensor equals the reference formula (F32 output, several chunks, radix and sort selection)", arguments: cases)
    func matchesReference(_ c: Case) throws {
        let fixture = try MergeFixture(models: c.models, seed: 11 + UInt64(c.models))
        defer { fixture.cleanup() }
        let blocks: [ClosedRange<Int>] = [0...0, 1...2, 3...3]
        var rng = TestRandom(state: 3)
        let perBlock: [[Double]] = (0..<(blocks.count + 2)).map { _ in
            let raw = (0..<c.models).map { _ in Double(rng.next() % 900 + 100) }
            return raw.map { $0 / raw.reduce(0, +) }
        }
        let request = MergeRequest(
            models: fixture.models, base: c.method.needsBase ? fixture.base : nil, blocks: blocks,
            weights: BlockWeights(perBlock: perBlock), method: c.method, parameters: c.parameters,
            outputDType: .f32, seed: 42, output: fixture.output("merged"), threads: 3, chunkElements: 5000)
        let summary = try MergeEngine.merge(request)
        #expect(summary.tensorCount == MergeFixture.shapes.count)
        let merged = try MergeFixture.read(fixture.output("merged"))
        let p = c.parameters
        for (name, shape) in MergeFixture.shapes {
            let b = MergeFixture.block(of: name, blocks: blocks)
            let w = perBlock[b]
            let expected = ReferenceMerge.merge(
                tensor: name, shape: shape, models: fixture.modelValues.map { $0[name]! }, base: fixture.baseValues[name]!,
                weights: w.map { Double(Float($0)) }, method: c.method, density: p.density?.value(inBlock: b) ?? 1,
                gamma: p.gamma?.value(inBlock: b) ?? 0.01, epsilon: p.epsilon?.value(inBlock: b) ?? 0.15,
                lambda: p.lambda?.value(inBlock: b) ?? 1, normalize: p.normalize, rescale: p.rescale ?? true, seed: 42)
            let got = try #require(merged[name])
            #expect(got.count == expected.count)
            var worst = 0.0
            for j in expected.indices { worst = max(worst, abs(Double(got[j]) - expected[j])) }
            #expect(worst <= 1e-5, "\(name): max |engine − reference| = \(worst)")
        }
    }

    @Test("sparsification keeps the expected fraction: TIES ≥ k, DARE ≈ density")
    func keptFractions() throws {
        let fixture = try MergeFixture(models: 2, seed: 5)
        defer { fixture.cleanup() }
        let name = "model.embed_tokens.weight"
        for (method, density) in [(MergeMethod.ties, 0.25), (.dareLinear, 0.25)] {
            let out = fixture.output("\(method.rawValue)")
            // Weight 1 on the first model alone: the output's task vector is the first model's, sparsified.
            _ = try MergeEngine.merge(MergeRequest(
                models: fixture.models, base: fixture.base, blocks: [0...3], weights: BlockWeights(betas: [0, 0, 0]),
                method: method, parameters: MergeParameters(density: .all(density), normalize: false, rescale: method == .ties ? nil : false),
                outputDType: .f32, output: out))
            let merged = try MergeFixture.read(out)[name]!
            let base = fixture.baseValues[name]!, model = fixture.modelValues[0][name]!
            let nonzero = model.indices.filter { model[$0] != base[$0] }.count
            let kept = merged.indices.filter { merged[$0] != base[$0] }.count
            if method == .ties {
                #expect(kept >= Int(density * Double(model.count)))
                #expect(kept <= min(nonzero, Int(density * Double(model.count)) + model.count / 25), "ties at the threshold add only a few")
            } else {
                let expected = density * Double(nonzero)
                #expect(abs(Double(kept) - expected) < 4 * (expected * (1 - density)).squareRoot(), "kept \(kept) of \(nonzero), expected ≈ \(expected)")
            }
        }
    }
}
