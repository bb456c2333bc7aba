import Foundation
import SafeTensors
import Testing
@testable import Merging

/// A small Llama-named model family written with the SafeTensors writer; the values are kept so
/// the test can compute the profile independently.
private struct Family {
    static let layers = 3
    static let shapes: [(String, [Int])] = {
        var s: [(String, [Int])] = [("model.embed_tokens.weight", [10, 6])]
        for l in 0..<layers {
            s += [("model.layers.\(l).input_layernorm.weight", [6]),
                  ("model.layers.\(l).self_attn.q_proj.weight", [6, 6]),
                  ("model.layers.\(l).mlp.up_proj.weight", [12, 6])]
        }
        return s + [("model.norm.weight", [6]), ("lm_head.weight", [10, 6])]
    }()

    let root: URL
    var models: [URL] = []
    var base: URL?
    var modelValues: [[String: [Float]]] = []
    var baseValues: [String: [Float]]?

    /// Values with 8 significant bits, exact in BF16, F16 range permitting, and F32.
    static func randomValues(_ n: Int, scale: Float, rng: inout SplitMix) -> [Float] {
        (0..<n).map { _ in Float(Int(rng.next() % 255) - 127) * scale }
    }

    init(models count: Int, withBase: Bool, dtype: DType, shardMaxBytes: Int, seed: UInt64) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("profile-\(UUID().uuidString)")
        var rng = SplitMix(state: seed)
        let declarations = Self.shapes.map { TensorDeclaration(name: $0.0, dtype: dtype, shape: $0.1) }
        func write(_ name: String, _ values: [String: [Float]]) throws -> URL {
            let dir = root.appendingPathComponent(name)
            let writer = try CheckpointWriter(directory: dir, tensors: declarations, maxShardBytes: shardMaxBytes)
            for d in declarations { try writer.write(floats: values[d.name]!, tensor: d.name) }
            try writer.finish()
            try Data(#"{"model_type": "llama", "num_hidden_layers": \#(Self.layers)}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
            return dir
        }
        for i in 0..<count {
            var values: [String: [Float]] = [:]
            for (k, (name, shape)) in Self.shapes.enumerated() {
                // Different scales per tensor so layers differ.
                values[name] = Self.randomValues(shape.reduce(1, *), scale: 0x1p-10 * Float(1 << (k % 4)), rng: &rng)
            }
            modelValues.append(values)
            models.append(try write("model\(i)", values))
        }
        if withBase {
            var values: [String: [Float]] = [:]
            for (name, shape) in Self.shapes { values[name] = Self.randomValues(shape.reduce(1, *), scale: 0x1p-9, rng: &rng) }
            baseValues = values
            base = try write("base", values)
        }
    }

    func cleanup() { try? FileManager.default.removeItem(at: root) }

    /// Eq. 4 computed directly: task vectors against the base (zero without one), their mean,
    /// and the p-norm of each task vector's deviation over the whole group, in Double.
    func referenceProfile(norm: DifferenceNorm) -> LayerProfile {
        func group(of name: String) -> Int {  // 0 embedding, 1…L layers, L+1 head
            if name.hasPrefix("model.embed_tokens.") { return 0 }
            if name.hasPrefix("model.layers.") { return 1 + Int(name.split(separator: ".")[2])! }
            return Self.layers + 1
        }
        var result = [Double](repeating: 0, count: Self.layers + 2)
        let n = modelValues.count
        for g in 0..<(Self.layers + 2) {
            let names = Self.shapes.map(\.0).filter { group(of: $0) == g }
            for i in 0..<n {
                var accumulated = 0.0
                for name in names {
                    for j in 0..<modelValues[i][name]!.count {
                        let b = baseValues.map { Double($0[name]![j]) } ?? 0
                        let taskVectors = modelValues.map { Double($0[name]![j]) - b }
                        let mean = taskVectors.reduce(0, +) / Double(n)
                        let deviation = taskVectors[i] - mean
                        accumulated += norm == .l1 ? abs(deviation) : deviation * deviation
                    }
                }
                result[g] += norm == .l1 ? accumulated : accumulated.squareRoot()
            }
        }
        return LayerProfile(layerDifferences: Array(result[1...Self.layers]), embeddingDifference: result[0],
                            headDifference: result[Self.layers + 1], norm: norm)
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func expectClose(_ a: LayerProfile, _ b: LayerProfile, sourceLocation: SourceLocation = #_sourceLocation) {
    func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= 1e-12 * max(1, abs(y)) }
    #expect(a.norm == b.norm, sourceLocation: sourceLocation)
    #expect(a.layerDifferences.count == b.layerDifferences.count, sourceLocation: sourceLocation)
    #expect(zip(a.layerDifferences, b.layerDifferences).allSatisfy { close($0, $1) }, "\(a.layerDifferences) vs \(b.layerDifferences)", sourceLocation: sourceLocation)
    #expect(close(a.embeddingDifference, b.embeddingDifference), "\(a.embeddingDifference) vs \(b.embeddingDifference)", sourceLocation: sourceLocation)
    #expect(close(a.headDifference, b.headDifference), "\(a.headDifference) vs \(b.headDifference)", sourceLocation: sourceLocation)
}

struct ProfileCase: Sendable, CustomTestStringConvertible {
    var models: Int
    var withBase: Bool
    var dtype: DType
    var shardMaxBytes: Int
    var testDescription: String { "\(models) models, \(withBase ? "base" : "no base"), \(dtype.rawValue), shards ≤ \(shardMaxBytes) B" }
}

@Suite struct ProfileTests {
    static let cases: [ProfileCase] = [
        ProfileCase(models: 2, withBase: false, dtype: .bf16, shardMaxBytes: 300),
        ProfileCase(models: 2, withBase: true, dtype: .f32, shardMaxBytes: 1 << 20),
        ProfileCase(models: 3, withBase: true, dtype: .bf16, shardMaxBytes: 1 << 20),
        ProfileCase(models: 3, withBase: false, dtype: .f32, shardMaxBytes: 500),
        ProfileCase(models: 4, withBase: false, dtype: .f16, shardMaxBytes: 1 << 20),
    ]

    @Test(arguments: cases, DifferenceNorm.allCases)
    func matchesADirectComputation(_ c: ProfileCase, norm: DifferenceNorm) throws {
        let family = try Family(models: c.models, withBase: c.withBase, dtype: c.dtype, shardMaxBytes: c.shardMaxBytes, seed: UInt64(c.models * 10 + c.shardMaxBytes))
        defer { family.cleanup() }
        let reference = family.referenceProfile(norm: norm)
        #expect(reference.layerDifferences.allSatisfy { $0 > 0 })

        let profile = try profileLayerDifferences(models: family.models, base: family.base, norm: norm)
        expectClose(profile, reference)

        // Small chunks (odd size, splitting tensors) give the same numbers.
        let checkpoints = try family.models.map { try Checkpoint(directory: $0) }
        let map = try LayerMap(checkpoint: checkpoints[0])
        expectClose(try profileLayerDifferences(checkpoints: checkpoints, layerMap: map, norm: norm, chunkElements: 7), reference)
    }

    @Test func baseCancelsButIsValidated() throws {
        let family = try Family(models: 2, withBase: true, dtype: .f32, shardMaxBytes: 1 << 20, seed: 5)
        defer { family.cleanup() }
        let with = try profileLayerDifferences(models: family.models, base: family.base, norm: .l2)
        let without = try profileLayerDifferences(models: family.models, base: nil, norm: .l2)
        #expect(with == without)

        // A base of another shape is rejected, naming the tensor.
        let other = try Family(models: 1, withBase: false, dtype: .f32, shardMaxBytes: 1 << 20, seed: 6)
        defer { other.cleanup() }
        let badBase = family.root.appendingPathComponent("badbase")
        let declarations = Family.shapes.map { TensorDeclaration(name: $0.0, dtype: .f32, shape: $0.0 == "model.norm.weight" ? [7] : $0.1) }
        let writer = try CheckpointWriter(directory: badBase, tensors: declarations, maxShardBytes: 1 << 20)
        for d in declarations { try writer.write(floats: [Float](repeating: 0, count: d.elementCount!), tensor: d.name) }
        try writer.finish()
        do {
            _ = try profileLayerDifferences(models: family.models, base: badBase, norm: .l2)
            Issue.record("expected a mismatch error")
        } catch let error as ModelFamilyError {
            guard case let .mismatch(lines) = error.kind else { Issue.record("\(error)"); return }
            #expect(lines.count == 1 && lines[0].contains("\"model.norm.weight\" has shape [6]"))
        }
    }

    @Test func mismatchedModelsAreListed() throws {
        let a = try Family(models: 2, withBase: false, dtype: .bf16, shardMaxBytes: 1 << 20, seed: 1)
        let b = try Family(models: 1, withBase: false, dtype: .f32, shardMaxBytes: 1 << 20, seed: 2)
        defer { a.cleanup(); b.cleanup() }
        do {
            _ = try profileLayerDifferences(models: [a.models[0], b.models[0]], base: nil, norm: .l1)
            Issue.record("expected a mismatch error")
        } catch let error as ModelFamilyError {
            guard case let .mismatch(lines) = error.kind else { Issue.record("\(error)"); return }
            #expect(lines.count == 6 && lines[0].contains("is BF16 in") && lines.last!.hasPrefix("… and"))
            #expect(error.description.contains(a.models[0].path) && error.description.contains(b.models[0].path))
        }
        #expect(throws: ModelFamilyError(.tooFewModels(1))) { try profileLayerDifferences(models: [a.models[0]], base: nil, norm: .l1) }
    }

    @Test func nonFiniteWeightsAreReported() throws {
        let family = try Family(models: 2, withBase: false, dtype: .f32, shardMaxBytes: 1 << 20, seed: 8)
        defer { family.cleanup() }
        // Overwrite model 1's layer 1 q_proj with a NaN by writing the checkpoint again.
        var values = family.modelValues[1]
        values["model.layers.1.self_attn.q_proj.weight"]![3] = .nan
        let declarations = Family.shapes.map { TensorDeclaration(name: $0.0, dtype: .f32, shape: $0.1) }
        let writer = try CheckpointWriter(directory: family.models[1], tensors: declarations, maxShardBytes: 1 << 20)
        for d in declarations { try writer.write(floats: values[d.name]!, tensor: d.name) }
        try writer.finish()
        #expect(throws: ModelFamilyError(.nonFinite(group: .layer(1)))) {
            try profileLayerDifferences(models: family.models, base: nil, norm: .l1)
        }
    }

    @Test func layerMapMustCoverTheCheckpoint() throws {
        let family = try Family(models: 2, withBase: false, dtype: .f32, shardMaxBytes: 1 << 20, seed: 8)
        defer { family.cleanup() }
        let checkpoints = try family.models.map { try Checkpoint(directory: $0) }
        let partial = try LayerMap(tensorNames: Family.shapes.map(\.0).filter { $0 != "lm_head.weight" }, layerCount: Family.layers)
        #expect(throws: ModelFamilyError(.mismatch(["\"lm_head.weight\" is not in the layer map"]))) {
            try profileLayerDifferences(checkpoints: checkpoints, layerMap: partial, norm: .l2)
        }
    }

    @Test func progressIsMonotoneAndReachesTheTotal() throws {
        let family = try Family(models: 3, withBase: false, dtype: .bf16, shardMaxBytes: 400, seed: 9)
        defer { family.cleanup() }
        final class Log: @unchecked Sendable {
            let lock = NSLock()
            var events: [ProfileProgress] = []
        }
        let log = Log()
        let checkpoints = try family.models.map { try Checkpoint(directory: $0) }
        _ = try profileLayerDifferences(checkpoints: checkpoints, layerMap: LayerMap(checkpoint: checkpoints[0]), norm: .l2, chunkElements: 16) { p in
            log.lock.lock()
            log.events.append(p)
            log.lock.unlock()
        }
        let total = Int64(3 * Family.shapes.reduce(0) { $0 + $1.1.reduce(1, *) } * 2)
        #expect(log.events.count > 10)
        #expect(log.events.last == ProfileProgress(bytesDone: total, bytesTotal: total))
        #expect(zip(log.events, log.events.dropFirst()).allSatisfy { $0.bytesDone < $1.bytesDone })
    }
}
