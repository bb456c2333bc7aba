import Foundation
import SafeTensors
import Testing
@testable import Merging

private func qwenNames(layers: Int, tied: Bool) -> [String] {
    var names = ["model.embed_tokens.weight", "model.norm.weight"]
    for l in 0..<layers {
        names += ["input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_norm.weight", "mlp.down_proj.weight"]
            .map { "model.layers.\(l).\($0)" }
    }
    if !tied { names.append("lm_head.weight") }
    return names
}

private func mapError(_ body: () throws -> Void) -> LayerMapError? {
    do { try body() } catch let e as LayerMapError { return e } catch { Issue.record("unexpected \(error)") }
    return nil
}

@Suite struct LayerMapTests {
    @Test func standardNamesMapToTheirGroups() throws {
        let map = try LayerMap(tensorNames: qwenNames(layers: 12, tied: false), layerCount: 12)
        #expect(map.groups["model.embed_tokens.weight"] == .embedding)
        #expect(map.groups["model.layers.11.mlp.down_proj.weight"] == .layer(11))
        #expect(map.groups["model.layers.1.self_attn.q_norm.weight"] == .layer(1))
        #expect(map.groups["model.norm.weight"] == .head)
        #expect(map.groups["lm_head.weight"] == .head)
        #expect(map.tensors(in: .layer(10)).count == 4)
        #expect(map.tensorsByGroup.map(\.group) == [.embedding] + (0..<12).map { .layer($0) } + [.head])
        // Numeric, not lexicographic: layer 10 is not layer 1.
        #expect(!map.tensors(in: .layer(1)).contains { $0.contains("layers.10") })
    }

    @Test func tiedEmbeddingsNeedNoLMHead() throws {
        let map = try LayerMap(tensorNames: qwenNames(layers: 2, tied: true), layerCount: 2)
        #expect(map.tensors(in: .head) == ["model.norm.weight"])
    }

    @Test func layerCountIsCheckedAgainstTheTensors() {
        let beyond = mapError { _ = try LayerMap(tensorNames: qwenNames(layers: 4, tied: true), layerCount: 3, source: "/m") }
        #expect(beyond?.kind == .layerOutOfRange(tensor: "model.layers.3.input_layernorm.weight", layer: 3, layerCount: 3))
        #expect(beyond?.description.contains("/m") == true)
        let names = qwenNames(layers: 4, tied: true).filter { !$0.hasPrefix("model.layers.2.") }
        #expect(mapError { _ = try LayerMap(tensorNames: names, layerCount: 4) }?.kind == .missingLayer(2, layerCount: 4))
    }

    @Test func unmappedAndAmbiguousTensorsAreNamed() {
        let names = qwenNames(layers: 1, tied: true) + ["model.rotary_emb.inv_freq"]
        let error = mapError { _ = try LayerMap(tensorNames: names, layerCount: 1) }
        #expect(error?.kind == .unmappedTensor("model.rotary_emb.inv_freq"))
        #expect(error?.description.contains("\"model.rotary_emb.inv_freq\"") == true)
        let loose = LayerPatterns(embedding: "embed", layer: #"layers\.(\d+)\."#, head: "weight")
        #expect(mapError { _ = try LayerMap(tensorNames: ["model.embed_tokens.weight"], layerCount: 0, patterns: loose) }?.kind
            == .ambiguousTensor("model.embed_tokens.weight", [.embedding, .head]))
    }

    @Test func otherArchitecturesThroughPatterns() throws {
        let gpt2 = LayerPatterns(embedding: #"^transformer\.(wte|wpe)\."#, layer: #"^transformer\.h\.(\d+)\."#,
                                 head: #"^(transformer\.ln_f\.|lm_head\.)"#, layerCountKeys: ["n_layer"])
        let names = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight",
                     "transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.weight"]
        let count = try LayerMap.layerCount(config: ["n_layer": 2, "num_hidden_layers": 9], keys: gpt2.layerCountKeys)
        let map = try LayerMap(tensorNames: names, layerCount: count, patterns: gpt2)
        #expect(map.tensors(in: .embedding) == ["transformer.wpe.weight", "transformer.wte.weight"])
        #expect(map.groups["transformer.h.1.mlp.c_fc.weight"] == .layer(1))
        #expect(map.tensors(in: .head) == ["transformer.ln_f.weight"])
    }

    @Test func badPatternsAreRejected() {
        let noCapture = LayerPatterns(embedding: "^e", layer: #"^layers\.\d+\."#, head: "^h")
        #expect(mapError { _ = try LayerMap(tensorNames: [], layerCount: 0, patterns: noCapture) }?.kind
            == .invalidPattern(name: "layer", pattern: #"^layers\.\d+\."#, reason: "expected exactly one capture group (the layer index), found 0"))
        let broken = LayerPatterns(embedding: "^e(", layer: #"^l\.(\d+)"#, head: "^h")
        guard case .invalidPattern(name: "embedding", pattern: "^e(", reason: _)? = mapError({ _ = try LayerMap(tensorNames: [], layerCount: 0, patterns: broken) })?.kind else {
            Issue.record("expected invalidPattern for the embedding pattern")
            return
        }
    }

    @Test func layerCountFromConfig() throws {
        #expect(try LayerMap.layerCount(config: ["num_hidden_layers": 36]) == 36)
        #expect(try LayerMap.layerCount(config: ["text_config": ["num_hidden_layers": 28]]) == 28)
        let missing = mapError { _ = try LayerMap.layerCount(config: ["hidden_size": 8], source: "/x/config.json") }
        #expect(missing?.kind == .missingLayerCount(keys: ["num_hidden_layers", "text_config.num_hidden_layers"]))
        #expect(missing?.description.hasPrefix("/x/config.json") == true)
        #expect(mapError { _ = try LayerMap.layerCount(config: ["num_hidden_layers": "12"]) } != nil)
    }

    @Test func checkpointFixtureMapsWithItsConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("layermap-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = qwenNames(layers: 3, tied: true)
        let writer = try CheckpointWriter(directory: dir, tensors: names.map { TensorDeclaration(name: $0, dtype: .f32, shape: [2]) }, maxShardBytes: 1 << 20)
        for name in names { try writer.write(floats: [1, 2], tensor: name) }
        try writer.finish()
        try Data(#"{"num_hidden_layers": 3}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        let map = try LayerMap(checkpoint: Checkpoint(directory: dir))
        #expect(map.layerCount == 3 && map.groups.count == names.count)
        try Data(#"{"num_hidden_layers": 4}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        #expect(mapError { _ = try LayerMap(checkpoint: Checkpoint(directory: dir)) }?.kind == .missingLayer(3, layerCount: 4))
    }
}
