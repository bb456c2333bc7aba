import Foundation
import SafeTensors

/// A mergekit configuration (YAML) that performs the same block-wise merge.
///
/// One slice per layer block, each listing every model (and the base, for task-vector methods)
/// with the block's `layer_range` (half-open, as mergekit wants) and the model's block weight.
/// mergekit takes the embedding's parameters from the first slice and the final norm's and
/// `lm_head`'s from the last; both get their own weights through `filter` entries naming those
/// tensors exactly (written into every slice, so the order of mergekit's lookup does not matter).
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
        let parameters = try (recipe.parameters ?? MergeParameters()).resolved(for: method)
        let weights = recipe.weights.perBlock
        let k = blocks.count
        var lines: [String] = [
            "# mergekit configuration written by bambo \(bamboLibraryVersion): the same block-wise merge",
            "# (\(method.rawValue), \(k) layer block\(k == 1 ? "" : "s"), weights embedding, B1…B\(k), head = \(recipe.weights.commandLineText)).",
            "# Run: mergekit-yaml THIS_FILE OUTPUT_DIR",
            "merge_method: \(method.rawValue)",
            "dtype: float32",
        ]
        lines.append("out_dtype: \(MergeRecipe.dtypeName(outputDType))")
        if method.needsBase, let base = recipe.baseModel { lines.append("base_model: \(quoted(base))") }
        var global: [String] = []
        if method == .linear {
            global.append("normalize: false")
        } else {
            global.append("normalize: \(parameters.normalize)")
            global.append("lambda: \(formatNumber(parameters.lambda))")
            if method.parameterNames.contains("rescale") { global.append("rescale: \(parameters.rescale)") }
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
                lines.append("          weight:")
                for name in embeddingTensors {
                    lines.append("            - filter: \(quoted(name))")
                    lines.append("              value: \(formatNumber(weights[0][i]))")
                }
                for name in headTensors {
                    lines.append("            - filter: \(quoted(name))")
                    lines.append("              value: \(formatNumber(weights[k + 1][i]))")
                }
                lines.append("            - value: \(formatNumber(weights[b + 1][i]))")
                if method.parameterNames.contains("density") { lines.append("          density: \(formatNumber(parameters.density))") }
                if method == .breadcrumbs { lines.append("          gamma: \(formatNumber(parameters.gamma))") }
                if method == .della { lines.append("          epsilon: \(formatNumber(parameters.epsilon))") }
            }
            if method.needsBase, let base = recipe.baseModel {
                lines.append("      - model: \(quoted(base))")
                lines.append("        layer_range: [\(block[0]), \(block[1] + 1)]")
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
