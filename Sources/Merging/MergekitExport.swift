import Foundation
import SafeTensors

/// A mergekit configuration (YAML) that performs the same block-wise merge.
///
/// One slice per layer block, each listing every model (and the base, for task-vector methods)
/// with the block's `layer_range` (half-open, as mergekit wants), the model's block weight and the
/// block's `density`, `gamma` and `epsilon` (constant within a slice, so no gradient lists);
/// a per-block `lambda` goes into each slice's own `parameters`.
/// mergekit takes the embedding's parameters from the first slice and the final norm's and
/// `lm_head`'s from the last; both get their own weights (and per-block parameters) through
/// `filter` entries naming those tensors exactly (written into every slice, so the order of
/// mergekit's lookup does not matter).
/// Arithmetic is set to float32 (`dtype`) and the result rounded to the output dtype (`out_dtype`),
/// as bambo does.
///
/// What mergekit cannot reproduce bit for bit: DARE/DELLA draw their random masks from torch's
/// generator rather than bambo's seeded streams, and mergekit 0.1.x rescales kept elements to
/// match the L1 norm of the task vector instead of dividing by the keep probability; TIES keeps
/// exactly k elements where bambo keeps every magnitude tied with the k-th largest. Linear and
/// task arithmetic are the same formula.
public enum MergekitExport {
    /// The YAML text for `recipe`, whose models and base are given as paths mergekit can read.
    /// `embeddingTensors` and `headTensors` are the exact names of the tensors of those blocks;
    /// `outputDType` is the merged model's dtype (the recipe's, or the inputs').
    public static func yaml(recipe: MergeRecipe, embeddingTensors: [String], headTensors: [String], outputDType: DType) throws -> String {
        guard let blocks = recipe.blocks else {
            throw MergeError(.invalidRequest("mergekit export needs the layer blocks"))
        }
        let method = recipe.mergeMethod
        let given = recipe.parameters ?? MergeParameters()
        let k = blocks.count
        let parameters = try given.resolved(for: method, blockCount: k + 2)
        let weights = recipe.weights.perBlock
        var lines: [String] = [
            "# mergekit configuration written by bambo \(bamboLibraryVersion): the same block-wise merge",
            "# (\(method.rawValue), \(k) layer block\(k == 1 ? "" : "s"), weights embedding, B1…B\(k), head = \(recipe.weights.commandLineText)).",
            "# Run: mergekit-yaml THIS_FILE OUTPUT_DIR",
            "merge_method: \(method.rawValue)",
            "dtype: float32",
        ]
        lines.append("out_dtype: \(MergeRecipe.dtypeName(outputDType))")
        if method.needsBase, let base = recipe.baseModel { lines.append("base_model: \(quoted(base))") }
        // A value per block as mergekit reads it for slice `b` (layer block b + 1): a plain number
        // when the same in every block, else a list of `filter` entries giving the embedding's and
        // head's tensors their blocks' values, then the layer block's value.
        func setting(_ key: String, indent: String, constant: Bool, slice b: Int, value: (Int) -> Double) -> [String] {
            if constant { return ["\(indent)\(key): \(formatNumber(value(b + 1)))"] }
            var out = ["\(indent)\(key):"]
            for name in embeddingTensors { out += ["\(indent)  - filter: \(quoted(name))", "\(indent)    value: \(formatNumber(value(0)))"] }
            for name in headTensors { out += ["\(indent)  - filter: \(quoted(name))", "\(indent)    value: \(formatNumber(value(k + 1)))"] }
            out.append("\(indent)  - value: \(formatNumber(value(b + 1)))")
            return out
        }
        // mergekit's `lambda` is a method-wide parameter; per block it goes to each slice's own
        // `parameters`, which mergekit consults before the top-level ones.
        func varies(_ value: BlockParameter?) -> Bool { if case .perBlock? = value { true } else { false } }
        let lambdaPerBlock = varies(given.lambda)
        var global: [String] = []
        if method == .linear {
            global.append("normalize: false")
        } else {
            global.append("normalize: \(parameters[0].normalize)")
            if !lambdaPerBlock { global.append("lambda: \(formatNumber(parameters[0].lambda))") }
            if method.parameterNames.contains("rescale") { global.append("rescale: \(parameters[0].rescale)") }
        }
        lines.append("parameters:")
        lines += global.map { "  " + $0 }
        lines.append("slices:")
        for (b, block) in blocks.enumerated() {
            lines.append("  - sources:")
            for (i, model) in recipe.models.enumerated() {
                lines.append("      - model: \(quoted(model.model))")
                lines.append("        layer_range: [\(block[0]), \(block[1] + 1)]")
                lines.append("        parameters:")
                lines += setting("weight", indent: "          ", constant: false, slice: b) { weights[$0][i] }
                if method.parameterNames.contains("density") {
                    lines += setting("density", indent: "          ", constant: !varies(given.density), slice: b) { parameters[$0].density }
                }
                if method == .breadcrumbs {
                    lines += setting("gamma", indent: "          ", constant: !varies(given.gamma), slice: b) { parameters[$0].gamma }
                }
                if method == .della {
                    lines += setting("epsilon", indent: "          ", constant: !varies(given.epsilon), slice: b) { parameters[$0].epsilon }
                }
            }
            if method.needsBase, let base = recipe.baseModel {
                lines.append("      - model: \(quoted(base))")
                lines.append("        layer_range: [\(block[0]), \(block[1] + 1)]")
            }
            if lambdaPerBlock {
                lines.append("    parameters:")
                lines += setting("lambda", indent: "      ", constant: false, slice: b) { parameters[$0].lambda }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The YAML for a request: reads the first model's tensor names to find the embedding and head tensors.
    public static func yaml(for request: MergeRequest) throws -> String {
        let recipe = try MergeEngine.validate(request)
        let checkpoint = try Checkpoint(directory: request.models[0])
        let map = try LayerMap(checkpoint: checkpoint, patterns: request.patterns, unmappedGroup: .embedding)
        let dtype = request.outputDType ?? checkpoint.tensors.first?.dtype ?? .f32
        return try yaml(recipe: recipe, embeddingTensors: map.tensors(in: .embedding), headTensors: map.tensors(in: .head), outputDType: dtype)
    }

    /// A YAML double-quoted string.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
