import ArgumentParser
import Foundation
import Merging
import SafeTensors

/// Floating-point dtypes as users name them on the command line.
enum FloatDTypeArgument: String, ExpressibleByArgument, CaseIterable {
    case bfloat16, float16, float32

    var dtype: DType {
        switch self {
        case .bfloat16: .bf16
        case .float16: .f16
        case .float32: .f32
        }
    }
}

struct SynthesizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthesize",
        abstract: "Write a synthetic Qwen3-shaped model family (base, instruct, thinking) for trying BAMBO out.",
        discussion: """
        The two fine-tunes are the base plus seeded random deltas whose size \
        grows with depth, so `bambo profile` shows the shape the paper reports \
        for real Thinking/Instruct pairs. The files are real Hugging Face model \
        directories (config.json, safetensors shards, index); their weights are \
        noise: they exercise merge, profile and partition, not text generation.

        Examples:
          bambo synthesize --out models --layers 24 --hidden 256
          bambo synthesize --out big --size-mb 4000 --layers 36   # ~4 GB each
        """)

    @Option(help: ArgumentHelp("Output directory; base/, instruct/ and thinking/ are created in it.", valueName: "dir"))
    var out: String

    @Option(help: "Number of transformer layers.")
    var layers: Int = 24

    @Option(help: "Hidden size (ignored with --size-mb).")
    var hidden: Int = 256

    @Option(name: .customLong("size-mb"), help: ArgumentHelp("Pick the shape for about this many MB of weights per model.", valueName: "mb"))
    var sizeMB: Int?

    @Option(help: "Storage dtype: bfloat16, float16 or float32.")
    var dtype: FloatDTypeArgument = .bfloat16

    @Option(help: "Seed of the random weights (same seed, same bytes).")
    var seed: UInt64 = 0

    @Option(name: .customLong("shard-mb"), help: ArgumentHelp("Maximum shard size in MB.", valueName: "mb"))
    var shardMB: Int = 1000

    func validate() throws {
        guard layers >= 1 else { throw ValidationError("--layers must be ≥ 1 (got \(layers))") }
        guard hidden >= 64, hidden % 64 == 0 else { throw ValidationError("--hidden must be a positive multiple of 64 (got \(hidden))") }
        if let sizeMB, sizeMB < 1 { throw ValidationError("--size-mb must be ≥ 1 (got \(sizeMB))") }
        guard shardMB >= 1 else { throw ValidationError("--shard-mb must be ≥ 1 (got \(shardMB))") }
    }

    func run() throws {
        var family: SyntheticFamily
        if let sizeMB {
            family = .sized(totalBytesPerModel: sizeMB * 1_000_000, layers: layers, dtype: dtype.dtype, seed: seed)
        } else {
            family = SyntheticFamily(
                layers: layers, hidden: hidden, intermediate: 3 * hidden, heads: max(1, hidden / 64),
                kvHeads: max(1, hidden / 128), headDim: 64, vocab: 4 * hidden, dtype: dtype.dtype, seed: seed)
        }
        family.shardMaxBytes = shardMB * 1_000_000
        let progress = ProgressLine("writing")
        try family.write(to: URL(fileURLWithPath: out)) { done, total in progress.update(bytesDone: done, of: total) }
        progress.finish()
        print("wrote \(SyntheticFamily.memberNames.map { "\(out)/\($0)" }.joined(separator: ", ")): \(family.layers) layers, hidden \(family.hidden), \(ProgressLine.bytes(Double(family.bytesPerModel))) per model")
    }
}
