import ArgumentParser
import Foundation
import Merging
import Partitioning

/// Options shared by `profile` and `partition`: which checkpoints, and which norm.
struct ModelsOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: ArgumentHelp(
        "A model directory (Hugging Face layout: config.json + model.safetensors or sharded *.safetensors with model.safetensors.index.json). Give it once per model, at least twice.",
        valueName: "dir"))
    var models: [String] = []

    @Option(help: ArgumentHelp("The shared base model the others were fine-tuned from (optional; Eq. 4's task vectors are taken against it).", valueName: "dir"))
    var base: String?

    @Option(help: "Norm of the per-layer difference vectors: l1 or l2 (paper Eq. 4).")
    var norm: DifferenceNorm = .l2

    func validateModels() throws {
        guard models.count >= 2 else {
            throw ValidationError("need at least two models: pass --model DIR for each (got \(models.count))")
        }
    }

    var modelURLs: [URL] { models.map { URL(fileURLWithPath: $0) } }
    var baseURL: URL? { base.map { URL(fileURLWithPath: $0) } }

    /// Profiles the models with a progress line on stderr.
    func profile() throws -> LayerProfile {
        let progress = ProgressLine("profiling")
        let profile = try profileLayerDifferences(
            models: modelURLs, base: baseURL, norm: norm,
            progress: { progress.update(bytesDone: $0.bytesDone, of: $0.bytesTotal) })
        progress.finish()
        return profile
    }
}

extension DifferenceNorm: ExpressibleByArgument {}
extension PartitionStrategy: ExpressibleByArgument {}

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure how much the models differ, layer by layer (paper Eq. 4).",
        discussion: """
        For models M_1…M_N (and an optional base), the difference of layer l is
          d_l = Σ_i ‖TV_l^(i) − mean_i TV_l‖_p,   TV_l^(i) = M_i,l − base_l
        with all tensors of layer l taken as one vector. The embedding and \
        the head (final norm + lm_head) are profiled too and reported apart. \
        Checkpoints are streamed: memory stays small.

        Example:
          bambo profile --model ckpt/instruct --model ckpt/thinking --norm l1
          bambo profile --model A --model B --json > profile.json
          bambo partition --profile profile.json --blocks 6
        """)

    @OptionGroup var source: ModelsOptions

    @Flag(help: "Print exactly one JSON object on stdout instead of the table.")
    var json = false

    func validate() throws { try source.validateModels() }

    func run() throws {
        let profile = try source.profile()
        if json {
            try printJSON(profile)
        } else {
            print("Layer differences (\(profile.norm.rawValue) norm) over \(profile.layerDifferences.count) layers\n")
            print(PartitionChart.render(
                differences: profile.layerDifferences,
                blocks: [0...(profile.layerDifferences.count - 1)],
                before: [("embedding", profile.embeddingDifference)],
                after: [("head", profile.headDifference)]))
        }
    }
}

/// Prints a value as pretty JSON (sorted keys) on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
