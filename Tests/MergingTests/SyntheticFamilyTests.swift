import Foundation
import SafeTensors
import Testing
@testable import Merging

@Suite struct SyntheticFamilyTests {
    static let small = SyntheticFamily(layers: 6, hidden: 64, intermediate: 192, heads: 4, kvHeads: 2, headDim: 32, vocab: 128,
                                       seed: 11, shardMaxBytes: 200_000)

    @Test func familyLoadsMapsToLayersAndItsProfileRisesWithDepth() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("family-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        final class Last: @unchecked Sendable { var done: Int64 = 0; var total: Int64 = 0 }
        let last = Last()
        try Self.small.write(to: root) { done, total in last.done = done; last.total = total }
        #expect(last.done == last.total && last.total == Int64(3 * Self.small.bytesPerModel))

        var checkpoints: [Checkpoint] = []
        for name in SyntheticFamily.memberNames {
            let checkpoint = try Checkpoint(directory: root.appendingPathComponent(name))
            #expect(checkpoint.isSharded)
            #expect(checkpoint.tensors.count == 1 + 11 * 6 + 1)
            #expect(checkpoint.files.values.allSatisfy { $0.header.dataSize <= 200_000 || $0.tensors.count == 1 })
            #expect(checkpoint.totalBytes == Int64(Self.small.bytesPerModel))
            checkpoints.append(checkpoint)
        }
        let base = checkpoints[0]
        let config = try base.config()
        #expect(config["architectures"] == ["Qwen3ForCausalLM"] && config["model_type"] == "qwen3")
        for (key, value) in ["hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 6, "num_attention_heads": 4,
                             "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 128] {
            #expect(config[key]?.intValue == value, "\(key)")
        }
        #expect(config["tie_word_embeddings"] == true && config["rms_norm_eps"]?.doubleValue == 1e-6)
        #expect(try base.tensor("model.layers.5.self_attn.q_proj.weight").shape == [128, 64])
        #expect(try base.tensor("model.layers.5.self_attn.k_proj.weight").shape == [64, 64])
        #expect(try base.tensor("model.layers.0.self_attn.o_proj.weight").shape == [64, 128])
        #expect(try base.tensor("model.layers.0.self_attn.k_norm.weight").shape == [32])
        #expect(try base.tensor("model.layers.3.mlp.down_proj.weight").shape == [64, 192])
        #expect(try base.tensor("model.embed_tokens.weight").dtype == .bf16)

        let map = try LayerMap(checkpoint: base)
        #expect(map.layerCount == 6)

        // Weights as described: norms near 1, matrices within ±baseScale; fine-tunes differ from the base by
        // at most the layer's delta scale (plus bf16 rounding).
        let norm = try base.floats(of: "model.layers.2.input_layernorm.weight")
        #expect(norm.allSatisfy { abs($0 - 1) <= 0.021 })
        let q0 = try base.floats(of: "model.layers.0.self_attn.q_proj.weight")
        #expect(q0.allSatisfy { abs($0) <= 0.0201 } && Set(q0).count > 1000)
        let q5 = try checkpoints[2].floats(of: "model.layers.5.self_attn.q_proj.weight")
        let b5 = try base.floats(of: "model.layers.5.self_attn.q_proj.weight")
        let maxDelta = zip(q5, b5).map { abs($0 - $1) }.max()!
        #expect(maxDelta > 0.006 && maxDelta < 0.0082)

        let profile = try profileLayerDifferences(models: [root.appendingPathComponent("instruct"), root.appendingPathComponent("thinking")],
                                                  base: root.appendingPathComponent("base"), norm: .l2)
        let d = profile.layerDifferences
        #expect(d.count == 6)
        #expect(zip(d, d.dropFirst()).allSatisfy { $0 < $1 }, "profile should rise with depth: \(d)")
        #expect(d.last! / d.first! > 5, "\(d)")
        #expect(profile.embeddingDifference > 0 && profile.headDifference > 0)
    }

    @Test func outputIsDeterministic() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("family-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var family = SyntheticFamily(layers: 2, hidden: 64, intermediate: 64, heads: 1, kvHeads: 1, headDim: 64, vocab: 64, seed: 3, shardMaxBytes: 1 << 30)
        try family.write(to: root.appendingPathComponent("a"))
        try family.write(to: root.appendingPathComponent("b"))
        for member in SyntheticFamily.memberNames {
            for file in ["model.safetensors", "config.json"] {
                let a = try Data(contentsOf: root.appendingPathComponent("a/\(member)/\(file)"))
                let b = try Data(contentsOf: root.appendingPathComponent("b/\(member)/\(file)"))
                #expect(a == b, "\(member)/\(file)")
            }
        }
        family.seed = 4
        try family.write(to: root.appendingPathComponent("c"))
        #expect(try Data(contentsOf: root.appendingPathComponent("a/base/model.safetensors"))
            != Data(contentsOf: root.appendingPathComponent("c/base/model.safetensors")))
        // f32 and untied embeddings work too.
        family.dtype = .f32
        family.tieWordEmbeddings = false
        try family.write(to: root.appendingPathComponent("d"))
        let d = try Checkpoint(directory: root.appendingPathComponent("d/thinking"))
        #expect(try d.tensor("lm_head.weight").dtype == .f32)
        #expect(try LayerMap(checkpoint: d).tensors(in: .head) == ["lm_head.weight", "model.norm.weight"])
    }

    @Test func invalidParametersAreRejected() {
        var family = Self.small
        family.kvHeads = 3
        family.layers = 0
        #expect(throws: SyntheticFamilyError(problems: ["layers is 0; expected at least 1", "heads (4) must be a multiple of kvHeads (3)"])) {
            try family.write(to: FileManager.default.temporaryDirectory.appendingPathComponent("never-\(UUID().uuidString)"))
        }
    }

    @Test(arguments: [(1_500_000, 6), (100_000_000, 24), (2_500_000_000, 36), (8_000_000_000, 36)])
    func sizedFamiliesHitTheirTarget(bytes: Int, layers: Int) {
        let family = SyntheticFamily.sized(totalBytesPerModel: bytes, layers: layers)
        #expect(family.layers == layers)
        let relativeError = abs(Double(family.bytesPerModel - bytes)) / Double(bytes)
        #expect(relativeError < 0.05, "\(family.bytesPerModel) vs \(bytes): \(family)")
        #expect(family.hidden % 64 == 0 && family.heads * family.headDim >= family.hidden / 2 && family.heads % family.kvHeads == 0)
        #expect(family.vocab >= 4 * family.hidden)
    }
}
