import Foundation
import SafeTensors
@testable import Merging

/// A small model family for merge tests, written with the SafeTensors writer; every value is kept
/// so the tests can compute merges independently. Values are multiples of 2⁻⁸ in [−1, 1], exact in
/// BF16, so task vectors M − base are exact in Float and Double alike (and magnitudes tie often,
/// which exercises the tie rules).
struct MergeFixture {
    static let layers = 4
    /// Shapes: one tensor above the radix-selection limit (the embedding: 300 × 256 = 76,800), rows
    /// of different lengths, 1-D norms, and a tensor that matches no layer pattern.
    static let shapes: [(String, [Int])] = {
        var s: [(String, [Int])] = [("model.embed_tokens.weight", [300, 256]), ("model.rotary_extra.weight", [7])]
        for l in 0..<layers {
            s += [("model.layers.\(l).input_layernorm.weight", [16]),
                  ("model.layers.\(l).self_attn.q_proj.weight", [16, 16]),
                  ("model.layers.\(l).mlp.up_proj.weight", [24, 16]),
                  ("model.layers.\(l).mlp.down_proj.weight", [16, 24])]
        }
        return s + [("model.norm.weight", [16]), ("lm_head.weight", [40, 16])]
    }()

    let root: URL
    var models: [URL] = []
    var base: URL
    var modelValues: [[String: [Float]]] = []
    var baseValues: [String: [Float]]

    init(models count: Int, dtype: DType = .bf16, seed: UInt64 = 7, shardMaxBytes: Int = 200_000,
         shapes: [(String, [Int])] = MergeFixture.shapes, overrides: [Int: [(String, [Int])]] = [:]) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("merge-\(UUID().uuidString)")
        self.root = root
        var rng = TestRandom(state: seed)
        func grid(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int(rng.next() % 513) - 256) / 256 } }
        func write(_ name: String, _ shapes: [(String, [Int])], _ values: [String: [Float]]) throws -> URL {
            let dir = root.appendingPathComponent(name)
            let declarations = shapes.map { TensorDeclaration(name: $0.0, dtype: dtype, shape: $0.1) }
            let writer = try CheckpointWriter(directory: dir, tensors: declarations, maxShardBytes: shardMaxBytes)
            for d in declarations {
                let n = d.shape.reduce(1, *)
                try writer.write(floats: values[d.name] ?? [Float](repeating: 0, count: n), tensor: d.name)
            }
            try writer.finish()
            try Data(#"{"model_type": "llama", "num_hidden_layers": \#(Self.layers), "torch_dtype": "bfloat16"}"#.utf8)
                .write(to: dir.appendingPathComponent("config.json"))
            try Data(#"{"tokenizer_class": "Test"}"#.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
            return dir
        }
        var baseValues: [String: [Float]] = [:]
        for (name, shape) in shapes { baseValues[name] = grid(shape.reduce(1, *)) }
        self.baseValues = baseValues
        base = try write("base", shapes, baseValues)
        for i in 0..<count {
            var values: [String: [Float]] = [:]
            for (name, shape) in shapes {
                // A fine-tune: base plus a sparse-ish delta (a third of the elements unchanged).
                let b = baseValues[name]!
                values[name] = (0..<shape.reduce(1, *)).map { j in
                    rng.next() % 3 == 0 ? b[j] : max(-1, min(1, b[j] + Float(Int(rng.next() % 129) - 64) / 256))
                }
            }
            modelValues.append(values)
            models.append(try write("model\(i)", overrides[i] ?? shapes, values))
        }
    }

    func cleanup() { try? FileManager.default.removeItem(at: root) }

    /// The block (0 = embedding, 1…K, K+1 = head) of a tensor under `blocks`.
    static func block(of name: String, blocks: [ClosedRange<Int>]) -> Int {
        if name.hasPrefix("model.layers.") {
            let l = Int(name.dropFirst("model.layers.".count).prefix { $0.isNumber })!
            return 1 + blocks.firstIndex { $0.contains(l) }!
        }
        if name == "model.norm.weight" || name == "lm_head.weight" { return blocks.count + 1 }
        return 0
    }

    func output(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// Every tensor of a merged checkpoint as Float.
    static func read(_ directory: URL) throws -> [String: [Float]] {
        let checkpoint = try Checkpoint(directory: directory)
        var result: [String: [Float]] = [:]
        for t in checkpoint.tensors { result[t.name] = try checkpoint.floats(of: t.name) }
        return result
    }

    /// The bytes of every safetensors file in `directory`, by file name.
    static func shardBytes(_ directory: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".safetensors") {
            result[name] = try Data(contentsOf: directory.appendingPathComponent(name))
        }
        return result
    }
}

/// splitmix64 for test data (independent of the library's generators).
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
