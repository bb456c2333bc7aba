import ArgumentParser
import Foundation
import Merging
import SafeTensors
#if canImport(Glibc)
    import Glibc
#endif

extension MergeMethod: ExpressibleByArgument {}
extension MergeRequest.InputAccess: ExpressibleByArgument {}

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge models block-wise: each block of layers (plus embedding and head) gets its own weights.",
        discussion: """
        Weights follow the partition file (`bambo partition --out`): one per block, \
        in the order embedding, B1…BK, head. For two models a block's weight is β \
        and the block becomes (1 − β)·first + β·second. For N models give N \
        weights per block separated by colons, summing to 1:
          --weights 0.5:0.5:0,0.2:0.3:0.5,…
        Tensors outside the layers follow the embedding block; the final norm and \
        lm_head form the head block.

        Methods (mergekit's names; all but linear need --base):
          linear           Σ w_i·M_i
          task_arithmetic  base + λ·Σ w_i·δ_i, δ_i = M_i − base    (lambda)
          ties             top-density |δ_i|, sign election, mean  (density)
          dare_linear      keep δ with probability density, /density (density)
          dare_ties        dare_linear + sign election             (density)
          breadcrumbs      drop the largest gamma and the smallest (density, gamma)
          della            keep prob. density ± epsilon by rank in the row,
                           /prob., sign election                   (density, epsilon)
        All task-vector methods also take lambda and normalize; dare_* and della \
        take rescale. Defaults are mergekit's. density, gamma, epsilon and lambda \
        take one value, or one per block in the order of --weights:
          --param density=0.9,0.5,0.3,0.9   (YAML: density: [0.9, 0.5, 0.3, 0.9])

        The output is a Hugging Face model directory: shards (at most --shard-mb \
        each) with an index, config.json, tokenizer and generation files of the \
        first model, and bambo-merge.yaml (the recipe, also in each shard's \
        metadata). It is written under a hidden name and renamed at the end: a \
        failed merge leaves nothing behind. Memory stays small at any model size.

        --config FILE reads the same fields from YAML (bambo-merge.yaml's format):
          merge_method: ties
          models: [{model: ckpt/instruct}, {model: ckpt/thinking}]
          base_model: ckpt/base
          partition: partition.json      # or blocks: [[0, 11], [12, 23]]
          weights: [0.0, 0.3, 0.8, 1.0]  # N models: [[w1, …, wN], …]
          parameters: {density: 0.5}
          dtype: bfloat16
          seed: 0

        Examples:
          bambo merge --model ckpt/instruct --model ckpt/thinking \\
              --partition partition.json --weights 0,0.1,0.4,0.9,1 --out merged
          bambo merge --model A --model B --base BASE --partition p.json \\
              --weights 0.5,0.5,0.5 --method ties --param density=0.4 \\
              --out merged --emit-mergekit merged.mergekit.yaml
          bambo merge --config merged/bambo-merge.yaml --out again
        """)

    @Option(name: .customLong("model"), help: ArgumentHelp("A model directory; once per model (the weights refer to them in this order).", valueName: "dir"))
    var models: [String] = []

    @Option(help: ArgumentHelp("Base model for task-vector methods.", valueName: "dir"))
    var base: String?

    @Option(help: ArgumentHelp("Partition file from `bambo partition --out`.", valueName: "file"))
    var partition: String?

    @Option(help: ArgumentHelp("Block weights: embedding, B1…BK, head (see above).", valueName: "E,B1,…,BK,H"))
    var weights: String?

    @Option(help: "linear, task_arithmetic, ties, dare_linear, dare_ties, breadcrumbs or della.")
    var method: MergeMethod?

    @Option(name: .customLong("param"), help: ArgumentHelp("A method parameter, e.g. density=0.5, or one value per block: density=0.9,0.5,0.9 (repeatable).", valueName: "name=value"))
    var params: [String] = []

    @Option(help: "Output dtype: bfloat16, float16 or float32 (default: as the inputs).")
    var dtype: FloatDTypeArgument?

    @Option(help: "Seed of the random drops (dare_*, della).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Take the merge from a YAML file (instead of the options above).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Output directory (must not exist, unless --force).", valueName: "dir"))
    var out: String?

    @Option(name: .customLong("emit-mergekit"), help: ArgumentHelp("Also write a mergekit YAML that performs the same merge (alone, without --out, only that file is written).", valueName: "file"))
    var emitMergekit: String?

    @Option(name: .customLong("shard-mb"), help: ArgumentHelp("Maximum shard size in MB.", valueName: "mb"))
    var shardMB: Int = 5000

    @Option(help: "Worker threads (default: all cores). The result does not depend on it.")
    var threads: Int?

    @Flag(name: .customLong("no-fsync"), help: "Do not fsync the output (faster; for scratch merges).")
    var noFsync = false

    @Option(name: .customLong("input-access"), help: "Read inputs through the memory maps (mmap, default) or with pread (smallest resident memory). The result does not depend on it.")
    var inputAccess: MergeRequest.InputAccess = .mmap

    @Flag(help: "Replace the output directory if it exists.")
    var force = false

    func validate() throws {
        guard out != nil || emitMergekit != nil else { throw ValidationError("give --out DIR (and/or --emit-mergekit FILE)") }
        guard shardMB >= 1 else { throw ValidationError("--shard-mb must be ≥ 1 (got \(shardMB))") }
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1 (got \(threads))") }
        if config != nil {
            let given = [!models.isEmpty ? "--model" : nil, base != nil ? "--base" : nil, partition != nil ? "--partition" : nil,
                         weights != nil ? "--weights" : nil, method != nil ? "--method" : nil, !params.isEmpty ? "--param" : nil,
                         dtype != nil ? "--dtype" : nil, seed != nil ? "--seed" : nil].compactMap { $0 }
            guard given.isEmpty else { throw ValidationError("--config carries the whole merge; drop \(given.joined(separator: ", ")) or the --config") }
        } else {
            guard models.count >= 2 else { throw ValidationError("need at least two models: pass --model DIR for each (got \(models.count))") }
            guard partition != nil else { throw ValidationError("give the partition file: --partition FILE (from `bambo partition --out`)") }
            guard weights != nil else { throw ValidationError("give the block weights: --weights E,B1,…,BK,H") }
        }
    }

    func run() throws {
        let request = try makeRequest()
        if let emitMergekit {
            let text = try MergekitExport.yaml(for: request)
            try text.write(toFile: emitMergekit, atomically: true, encoding: .utf8)
            Terminal.error("wrote \(emitMergekit) (mergekit-yaml \(emitMergekit) OUTPUT_DIR)")
        }
        guard out != nil else { return }
        let summary = try mergeShowingProgress(request)
        let rate = summary.seconds > 0 ? Double(summary.bytesRead + summary.bytesWritten) / summary.seconds : 0
        print("wrote \(summary.output.path): \(summary.tensorCount) tensors in \(summary.shards.count) shard\(summary.shards.count == 1 ? "" : "s"), \(ProgressLine.bytes(Double(summary.bytesWritten))) in \(String(format: "%.2f", summary.seconds)) s (read + write \(ProgressLine.bytes(rate))/s)")
    }

    /// The request from the options or the --config file.
    func makeRequest() throws -> MergeRequest {
        let recipe: MergeRecipe
        var relativeTo = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if let config {
            let url = URL(fileURLWithPath: config)
            let text: String
            do {
                // Through a file handle: `String(contentsOf:)` refuses /dev/null and pipes ("permission").
                let handle = try FileHandle(forReadingFrom: url)
                defer { try? handle.close() }
                text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
            } catch {
                throw ValidationError("cannot read --config \(config): \(error.localizedDescription)")
            }
            recipe = try MergeRecipe.load(yaml: text, file: config)
            relativeTo = url.deletingLastPathComponent()
        } else {
            var parameters = MergeParameters()
            for p in params {
                guard let eq = p.firstIndex(of: "=") else { throw ValidationError("--param \(p): expected name=value, e.g. density=0.5") }
                try parameters.set(String(p[..<eq]).trimmingCharacters(in: .whitespaces), to: String(p[p.index(after: eq)...]))
            }
            recipe = MergeRecipe(
                mergeMethod: method ?? .linear, models: models, baseModel: base, blocks: nil, partition: partition,
                weights: try BlockWeights.parse(weights!, models: models.count),
                parameters: parameters, dtype: dtype?.dtype, seed: seed)
        }
        func resolve(_ path: String) -> URL {
            path.hasPrefix("/") ? URL(fileURLWithPath: path) : relativeTo.appendingPathComponent(path)
        }
        let blocks: [ClosedRange<Int>]
        if let partitionPath = recipe.partition {
            blocks = try PartitionDocument.load(from: resolve(partitionPath)).blockRanges
        } else if let pairs = recipe.blocks {
            if let bad = pairs.first(where: { $0.count != 2 || $0[0] > $0[1] }) {
                throw ValidationError("\(config ?? "recipe"): block \(bad) must be a pair [first, last] with first ≤ last")
            }
            blocks = pairs.map { $0[0]...$0[1] }
        } else {
            throw ValidationError("\(config ?? "recipe"): give the layer blocks (blocks: [[first, last], …]) or a partition file (partition: FILE)")
        }
        return MergeRequest(
            models: recipe.models.map { resolve($0.model) }, base: recipe.baseModel.map(resolve), blocks: blocks,
            weights: recipe.weights, method: recipe.mergeMethod, parameters: recipe.parameters ?? MergeParameters(),
            outputDType: try recipe.outputDType(), seed: recipe.seed ?? 0,
            output: URL(fileURLWithPath: out ?? "."), shardMaxBytes: shardMB * 1_000_000,
            threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
            durable: !noFsync, replaceExisting: force, inputAccess: inputAccess)
    }
}

/// Runs a merge with progress lines on stderr (the statistics pass, then the merge).
/// Runs `request` with progress lines on stderr; SIGINT/SIGTERM stop the merge between chunks and
/// its partial output is removed.
func mergeShowingProgress(_ request: MergeRequest) throws -> MergeSummary {
    let progress = ProgressLine("merging")
    let statistics = ProgressLine("magnitude statistics")
    let cancellation = MergeCancellation()
    let signalSources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { cancellation.cancel() }
        source.resume()
        return source
    }
    defer { signalSources.forEach { $0.cancel() } }
    let summary = try MergeEngine.merge(request, cancellation: cancellation) { p in
        switch p.phase {
        case .statistics: statistics.update(bytesDone: p.bytesDone, of: p.bytesTotal)
        case .merging: progress.update(bytesDone: p.bytesDone, of: p.bytesTotal)
        }
    }
    progress.finish()
    return summary
}
