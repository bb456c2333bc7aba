import ArgumentParser
import Foundation
import Merging
import Partitioning

struct PartitionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partition",
        abstract: "Group the layers into K blocks (Hybrid Optimal Block Partitioning, paper Algorithm 1).",
        discussion: """
        Minimizes exactly, by dynamic programming,
          J = Σ_B [ Σ_{l∈B} (d_l − μ_B)²  +  λ · (Σ_{l∈B} d_l − Σd/K)² ]
        The first term keeps layers with similar differences together \
        (homogeneity); the second gives every block an equal share of the \
        difference mass (balance). λ trades them:
          λ = 0     variance only (Fisher–Jenks): blocks follow the shape of d
          λ = 1     the paper's hybrid (default)
          λ large   balance dominates: heavy layers get blocks of their own,
                    light ones are pooled
        --strategy variance|balance|uniform gives the paper's ablations and \
        the naive equal split. The optimizer then searches K + 2 weights: \
        embedding, the K blocks, head.

        Examples:
          bambo partition --model ckpt/instruct --model ckpt/thinking \\
              --blocks 6 --out partition.json
          bambo partition --profile profile.json --blocks 4 --lambda 0.5 --json
        """)

    @OptionGroup var source: ModelsOptions

    @Option(help: ArgumentHelp("Take d_l from a saved `bambo profile --json` (or partition) file instead of reading checkpoints.", valueName: "file"))
    var profile: String?

    @Option(help: "Number of layer blocks K (1 ≤ K ≤ number of layers).")
    var blocks: Int

    @Option(help: "Balance weight λ ≥ 0 (see above).")
    var lambda: Double = 1

    @Option(help: "hybrid (paper), variance (Fisher–Jenks), balance, or uniform.")
    var strategy: PartitionStrategy = .hybrid

    @Flag(help: "Print exactly one JSON object on stdout (the partition file's content) instead of the picture.")
    var json = false

    @Option(help: ArgumentHelp("Write the partition file here (what `--partition` options read).", valueName: "file"))
    var out: String?

    func validate() throws {
        if profile == nil { try source.validateModels() }
        guard blocks >= 1 else { throw ValidationError("--blocks must be ≥ 1 (got \(blocks))") }
        guard lambda.isFinite, lambda >= 0 else { throw ValidationError("--lambda must be a finite number ≥ 0 (got \(lambda))") }
    }

    func run() throws {
        let layerProfile: LayerProfile
        if let profile {
            layerProfile = try loadProfile(path: profile)
        } else {
            layerProfile = try source.profile()
        }
        let partition: BlockPartition
        do {
            partition = try partitionLayers(
                differences: layerProfile.layerDifferences, blocks: blocks, lambda: lambda, strategy: strategy)
        } catch let error as PartitioningError {
            throw ValidationError(error.description)
        }
        let document = PartitionDocument(
            profile: layerProfile, partition: partition, lambda: lambda, strategy: strategy,
            models: profile == nil ? source.models : nil, base: profile == nil ? source.base : nil)
        if let out {
            try document.jsonData().write(to: URL(fileURLWithPath: out), options: .atomic)
            Terminal.error("wrote \(out)")
        }
        if json {
            FileHandle.standardOutput.write(try document.jsonData())
        } else {
            print("\(blocks) blocks over \(layerProfile.layerDifferences.count) layers: strategy \(strategy.rawValue), λ = \(lambda), \(layerProfile.norm.rawValue) norm")
            print("J = \(PartitionChart.format(partition.cost))   (variance term \(PartitionChart.format(partition.varianceTerm)), balance term \(PartitionChart.format(partition.balanceTerm)))\n")
            print(PartitionChart.render(
                differences: layerProfile.layerDifferences, blocks: partition.blocks,
                before: [("embedding", layerProfile.embeddingDifference)],
                after: [("head", layerProfile.headDifference)]))
            print("\nDecision vector: \(blocks + 2) weights = embedding, B1…B\(blocks), head.")
        }
    }

    /// Reads a profile (or partition) JSON; errors name the file and field.
    private func loadProfile(path: String) throws -> LayerProfile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("cannot read profile \(path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(LayerProfile.self, from: data)
        } catch let error as DecodingError {
            throw ValidationError("profile \(path): \(describe(error))")
        }
    }
}
