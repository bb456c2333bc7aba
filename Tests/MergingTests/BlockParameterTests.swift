import Foundation
import SafeTensors
import Testing
@testable import Merging

/// Method parameters with one value per block (`density: [d_emb, d_1…d_K, d_head]`).
@Suite("per-block method parameters: merges, recipes, mergekit export, errors")
struct BlockParameterTests {
    static let blocks: [ClosedRange<Int>] = [0...1, 2...2, 3...3]
    static let betas: [Double] = [0.3, 0.6, 0.2, 0.8, 0.5]

    struct Case: CustomTestStringConvertible, Sendable {
        var method: MergeMethod
        var perBlock: MergeParameters
        var testDescription: String { "\(method.rawValue) \(perBlock.setNames.joined(separator: ","))" }
    }

    static let cases: [Case] = [
        Case(method: .ties, perBlock: MergeParameters(density: [0.3, 0.9, 0.5, 1, 0.7])),
        Case(method: .dareLinear, perBlock: MergeParameters(density: [0.4, 0.6, 0.8, 0.2, 1])),
        Case(method: .dareTies, perBlock: MergeParameters(density: [0.9, 0.3, 0.6, 0.5, 0.4], lambda: [1, 0.8, 1.2, 1, 0.5])),
        Case(method: .breadcrumbs, perBlock: MergeParameters(density: [0.9, 0.7, 0.8, 0.6, 0.95], gamma: [0.01, 0.05, 0.1, 0, 0.02])),
        Case(method: .della, perBlock: MergeParameters(density: [0.5, 0.7, 0.4, 0.6, 0.3], epsilon: 0.1)),
        Case(method: .taskArithmetic, perBlock: MergeParameters(lambda: [0.5, 1.5, 1, 0.25, 2])),
    ]

    /// The same parameters with each per-block list replaced by its value in block `b`.
    static func scalar(_ p: MergeParameters, block b: Int) -> MergeParameters {
        func at(_ v: BlockParameter?) -> BlockParameter? { v.map { .all($0.value(inBlock: b)) } }
        return MergeParameters(density: at(p.density), gamma: at(p.gamma), epsilon: at(p.epsilon), lambda: at(p.lambda),
                               normalize: p.normalize, rescale: p.rescale)
    }

    @Test("a per-block merge equals, block by block, separate merges with that block's scalar values (byte for byte)", arguments: cases)
    func matchesScalarMerges(_ c: Case) throws {
        let fixture = try MergeFixture(models: 2, seed: 21)
        defer { fixture.cleanup() }
        func merge(_ parameters: MergeParameters, _ name: String) throws -> [String: Data] {
            _ = try MergeEngine.merge(MergeRequest(
                models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: Self.betas),
                method: c.method, parameters: parameters, seed: 5, output: fixture.output(name), threads: 2, chunkElements: 3000))
            let checkpoint = try Checkpoint(directory: fixture.output(name))
            var bytes: [String: Data] = [:]
            for t in checkpoint.tensors { bytes[t.name] = try checkpoint.withRawBytes(of: t.name) { Data($0) } }
            return bytes
        }
        let perBlock = try merge(c.perBlock, "per-block")
        var differs = 0
        for b in 0..<(Self.blocks.count + 2) {
            let reference = try merge(Self.scalar(c.perBlock, block: b), "block\(b)")
            for (name, _) in MergeFixture.shapes where MergeFixture.block(of: name, blocks: Self.blocks) == b {
                #expect(perBlock[name] == reference[name], "\(name) (block \(b)) differs from the merge with block \(b)'s scalar values")
            }
            // The test can fail: another block's values give other tensors in this block.
            let other = Self.scalar(c.perBlock, block: (b + 1) % (Self.blocks.count + 2))
            if other != Self.scalar(c.perBlock, block: b) {
                let name = MergeFixture.shapes.first { MergeFixture.block(of: $0.0, blocks: Self.blocks) == b }!.0
                if try merge(other, "other\(b)")[name] != perBlock[name] { differs += 1 }
            }
        }
        #expect(differs >= 3, "other blocks' values change the tensors of a block")
    }

    @Test("a list of equal values merges exactly like the scalar")
    func constantListIsScalar() throws {
        let fixture = try MergeFixture(models: 2, seed: 4)
        defer { fixture.cleanup() }
        for (i, density) in [BlockParameter.all(0.4), [0.4, 0.4, 0.4, 0.4, 0.4]].enumerated() {
            _ = try MergeEngine.merge(MergeRequest(
                models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: Self.betas),
                method: .ties, parameters: MergeParameters(density: density), output: fixture.output("run\(i)")))
        }
        #expect(try MergeFixture.read(fixture.output("run0")) == MergeFixture.read(fixture.output("run1")))
    }

    @Test("the recipe records per-block values; bambo-merge.yaml and the metadata read back the same")
    func recipeRoundTrip() throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let parameters = MergeParameters(density: [0.9, 0.5, 0.25, 0.75, 1], epsilon: 0.05)
        let out = fixture.output("out")
        let summary = try MergeEngine.merge(MergeRequest(
            models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: Self.betas),
            method: .della, parameters: parameters, output: out))
        #expect(summary.recipe.parameters == parameters)
        let yaml = try String(contentsOf: out.appendingPathComponent(MergeRecipe.fileName), encoding: .utf8)
        #expect(yaml.contains("  density: [0.9, 0.5, 0.25, 0.75, 1]\n") && yaml.contains("  epsilon: 0.05\n"), "\(yaml)")
        #expect(try MergeRecipe.load(yaml: yaml, file: "bambo-merge.yaml") == summary.recipe)
        let metadata = try #require(try Checkpoint(directory: out).files.values.first?.metadata?[MergeRecipe.metadataKey])
        #expect(try JSONDecoder().decode(MergeRecipe.self, from: Data(metadata.utf8)) == summary.recipe)
    }

    @Test("command-line values: a number, or one per block separated by commas")
    func commandLine() throws {
        var p = MergeParameters()
        try p.set("density", to: "0.5")
        try p.set("gamma", to: "0.01, 0.02,0.03")
        try p.set("lambda", to: "[1,2,3]")
        try p.set("normalize", to: "false")
        #expect(p == MergeParameters(density: 0.5, gamma: [0.01, 0.02, 0.03], lambda: [1, 2, 3], normalize: false))
        #expect(p.gamma?.commandLineText == "0.01,0.02,0.03" && p.density?.commandLineText == "0.5")
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        #expect(message { try p.set("density", to: "0.5,x,0.5") }.contains("density=0.5,x,0.5 (block 2 of 3): \"x\" is not a finite number"))
        #expect(message { try p.set("density", to: "abc") }.contains("density=abc: \"abc\" is not a finite number"))
        #expect(message { try p.set("normalize", to: .perBlock([1, 0, 1])) }.contains("normalize: expected true or false"))
        #expect(message { try p.set("alpha", to: "0.5") }.contains("unknown parameter \"alpha\""))
    }

    // MARK: errors

    /// The message of a merge that must fail; checks nothing was left behind.
    private func failure(_ fixture: MergeFixture, method: MergeMethod, _ parameters: MergeParameters) -> String {
        let out = fixture.output("bad")
        defer {
            #expect(!FileManager.default.fileExists(atPath: out.path), "no output directory")
        }
        do {
            _ = try MergeEngine.merge(MergeRequest(
                models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: Self.betas),
                method: method, parameters: parameters, output: out))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("a wrong number of values, a value out of range: errors name the parameter and the block")
    func errors() throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let cases: [(MergeMethod, MergeParameters, String)] = [
            (.ties, MergeParameters(density: [0.5, 0.5, 0.5, 0.5]),
             "density has 4 values; expected 5, one per block (embedding, 3 layer blocks, head), or a single number"),
            (.ties, MergeParameters(density: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), "density has 6 values; expected 5"),
            (.ties, MergeParameters(density: [0.5, 0.5, 0, 0.5, 0.5]), "density[2] (block 2) = 0: expected a number in (0, 1]"),
            (.dareTies, MergeParameters(density: [0.5, 0.5, 0.5, 0.5, 1.2]), "density[4] (head) = 1.2: expected a number in (0, 1]"),
            (.dareTies, MergeParameters(density: [-0.1, 0.5, 0.5, 0.5, 0.5]), "density[0] (embedding) = -0.1: expected a number in (0, 1]"),
            (.ties, MergeParameters(density: 0), "density = 0: expected a number in (0, 1]"),
            (.breadcrumbs, MergeParameters(gamma: [0.1, 0.1, 1.5, 0.1, 0.1]), "gamma[2] (block 2) = 1.5: expected a number in [0, 1]"),
            (.della, MergeParameters(density: [0.5, 0.2, 0.5, 0.5, 0.5], epsilon: 0.3),
             "epsilon = 0.3 with density[1] (block 1) = 0.2: expected ε ≥ 0 and density ± ε within (0, 1]"),
            (.ties, MergeParameters(density: 0.5, lambda: [1, 1, 1]), "lambda has 3 values; expected 5"),
            (.ties, MergeParameters(gamma: [0.1, 0.1, 0.1, 0.1, 0.1]), "ties takes no parameter \"gamma\""),
        ]
        for (method, parameters, expected) in cases {
            let message = failure(fixture, method: method, parameters)
            #expect(message.contains(expected), "got: \(message)")
        }
    }

    @Test("a --config file with a bad per-block list names the field")
    func badRecipeFile() throws {
        let yaml = """
            merge_method: ties
            models: [{model: a}, {model: b}]
            base_model: base
            blocks: [[0, 3]]
            weights: [0, 0.5, 1]
            parameters: {density: [0.5, abc, 0.5]}
            """
        do {
            _ = try MergeRecipe.load(yaml: yaml, file: "merge.yaml")
            Issue.record("the file should have been refused")
        } catch {
            #expect("\(error)".contains("merge.yaml: field parameters.density: expected a number or a list of numbers, one per block"), "\(error)")
        }
    }

    @Test("validation without the block count: lists checked value by value, lengths consistent")
    func validateWithoutBlocks() throws {
        try MergeParameters(density: [0.5, 0.6, 0.7, 0.8]).validate(for: .ties)
        #expect(throws: MergeError.self) { try MergeParameters(density: [0.5, 0, 0.7]).validate(for: .ties) }
        #expect(throws: MergeError.self) { try MergeParameters(density: [0.5, 0.7]).validate(for: .ties) }
        #expect(throws: MergeError.self) { try MergeParameters(density: [0.5, 0.6, 0.7], gamma: [0, 0, 0, 0]).validate(for: .breadcrumbs) }
    }

    // MARK: mergekit export

    @Test("mergekit export: per-block density as filter lists per slice, per-block lambda in each slice's parameters")
    func mergekitExport() throws {
        let recipe = MergeRecipe(
            mergeMethod: .dareTies, models: ["m/a", "m/b"], baseModel: "m/base", blocks: [[0, 1], [2, 2], [3, 3]],
            weights: BlockWeights(betas: Self.betas), parameters: MergeParameters(density: [0.9, 0.3, 0.6, 0.5, 0.4], lambda: [1, 0.8, 1.2, 1, 0.5]),
            dtype: nil, seed: 1)
        let yaml = try MergekitExport.yaml(
            recipe: recipe, embeddingTensors: ["model.embed_tokens.weight"], headTensors: ["model.norm.weight", "lm_head.weight"], outputDType: .bf16)
        // Slice 2 (layer block 2, layers [2, 3)): the second model's density list.
        let slice2 = yaml.components(separatedBy: "  - sources:\n")[2]
        #expect(slice2.contains("""
                  - model: "m/b"
                    layer_range: [2, 3]
                    parameters:
                      weight:
                        - filter: "model.embed_tokens.weight"
                          value: 0.3
                        - filter: "model.norm.weight"
                          value: 0.5
                        - filter: "lm_head.weight"
                          value: 0.5
                        - value: 0.2
                      density:
                        - filter: "model.embed_tokens.weight"
                          value: 0.9
                        - filter: "model.norm.weight"
                          value: 0.4
                        - filter: "lm_head.weight"
                          value: 0.4
                        - value: 0.6

            """), "\(slice2)")
        #expect(slice2.contains("""
                parameters:
                  lambda:
                    - filter: "model.embed_tokens.weight"
                      value: 1
                    - filter: "model.norm.weight"
                      value: 0.5
                    - filter: "lm_head.weight"
                      value: 0.5
                    - value: 1.2
            """), "\(slice2)")
        #expect(!yaml.contains("\n  lambda:"), "no global lambda when it varies by block")
        // Scalars stay plain numbers.
        var scalar = recipe
        scalar.parameters = MergeParameters(density: 0.5, lambda: 0.9)
        let plain = try MergekitExport.yaml(recipe: scalar, embeddingTensors: ["model.embed_tokens.weight"], headTensors: ["lm_head.weight"], outputDType: .bf16)
        #expect(plain.contains("\n  lambda: 0.9\n") && plain.contains("          density: 0.5\n") && !plain.contains("    parameters:\n      lambda"))
        // A list of the wrong length is refused.
        scalar.parameters = MergeParameters(density: [0.5, 0.5])
        #expect(throws: MergeError.self) {
            try MergekitExport.yaml(recipe: scalar, embeddingTensors: [], headTensors: [], outputDType: .bf16)
        }
    }
}
