import Foundation
import Partitioning

/// The partition file: what `bambo partition --out` writes and what `--partition` options read.
///
/// It carries the profile it came from (so a picture can be redrawn) and the blocks as 0-based
/// inclusive `[first, last]` layer pairs. Decoding validates that the blocks cover every layer once.
public struct PartitionDocument: Codable, Sendable, Equatable {
    /// d_l for each layer, layer 0 first.
    public var layerDifferences: [Double]
    /// K pairs `[first, last]`, in order.
    public var blocks: [[Int]]
    /// The cost J the strategy minimized.
    public var cost: Double
    public var lambda: Double
    public var norm: DifferenceNorm
    public var strategy: PartitionStrategy
    /// Σ_k Var(B_k) and Σ_k Dev(B_k), unweighted.
    public var varianceTerm: Double
    public var balanceTerm: Double
    /// Differences of the embedding block and the head block (final norm + lm_head), reported apart.
    public var embeddingDifference: Double?
    public var headDifference: Double?
    /// The model directories profiled, and the base if one was given.
    public var models: [String]?
    public var base: String?

    public init(
        profile: LayerProfile, partition: BlockPartition, lambda: Double, strategy: PartitionStrategy,
        models: [String]? = nil, base: String? = nil
    ) {
        self.layerDifferences = profile.layerDifferences
        self.blocks = partition.blocks.map { [$0.lowerBound, $0.upperBound] }
        self.cost = partition.cost
        self.lambda = lambda
        self.norm = profile.norm
        self.strategy = strategy
        self.varianceTerm = partition.varianceTerm
        self.balanceTerm = partition.balanceTerm
        self.embeddingDifference = profile.embeddingDifference
        self.headDifference = profile.headDifference
        self.models = models
        self.base = base
    }

    /// Number of transformer layers L.
    public var layerCount: Int { layerDifferences.count }

    /// The blocks as ranges (validated at decoding).
    public var blockRanges: [ClosedRange<Int>] { blocks.map { $0[0]...$0[1] } }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        layerDifferences = try container.decode([Double].self, forKey: .layerDifferences)
        blocks = try container.decode([[Int]].self, forKey: .blocks)
        cost = try container.decode(Double.self, forKey: .cost)
        lambda = try container.decode(Double.self, forKey: .lambda)
        norm = try container.decode(DifferenceNorm.self, forKey: .norm)
        strategy = try container.decode(PartitionStrategy.self, forKey: .strategy)
        varianceTerm = try container.decodeIfPresent(Double.self, forKey: .varianceTerm) ?? 0
        balanceTerm = try container.decodeIfPresent(Double.self, forKey: .balanceTerm) ?? 0
        embeddingDifference = try container.decodeIfPresent(Double.self, forKey: .embeddingDifference)
        headDifference = try container.decodeIfPresent(Double.self, forKey: .headDifference)
        models = try container.decodeIfPresent([String].self, forKey: .models)
        base = try container.decodeIfPresent(String.self, forKey: .base)
        if let problem = Self.coverageProblem(blocks: blocks, layers: layerDifferences.count) {
            throw DecodingError.dataCorruptedError(forKey: .blocks, in: container, debugDescription: problem)
        }
    }

    /// Why `blocks` does not cover layers 0..<layers exactly once, in order; nil when it does.
    public static func coverageProblem(blocks: [[Int]], layers: Int) -> String? {
        guard !blocks.isEmpty else { return "no blocks: expected K ≥ 1 pairs [first, last]" }
        var next = 0
        for (index, pair) in blocks.enumerated() {
            guard pair.count == 2 else {
                return "block \(index) is \(pair): expected a pair [first, last]"
            }
            guard pair[0] == next else {
                return "block \(index) starts at layer \(pair[0]), expected \(next) (blocks must be contiguous, in order, from layer 0)"
            }
            guard pair[1] >= pair[0] else {
                return "block \(index) is [\(pair[0]), \(pair[1])]: last layer before first"
            }
            next = pair[1] + 1
        }
        guard next == layers else {
            return "blocks end at layer \(next - 1) but the model has \(layers) layers (0…\(layers - 1))"
        }
        return nil
    }

    /// Reads and validates a partition file; errors name the file and the problem.
    public static func load(from url: URL) throws -> PartitionDocument {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PartitionFileError(path: url.path, message: "cannot read: \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(PartitionDocument.self, from: data)
        } catch let error as DecodingError {
            throw PartitionFileError(path: url.path, message: describe(error))
        } catch {
            throw PartitionFileError(path: url.path, message: "\(error)")
        }
    }

    /// Pretty, stable JSON (sorted keys) ending with a newline.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }
}

/// A partition file that cannot be used.
public struct PartitionFileError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "partition file \(path): \(message)" }
}

/// A readable sentence for a JSON decoding error: which field, what was expected.
public func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return text.isEmpty ? "(top level)" : String(text.drop { $0 == "." })
    }
    switch error {
    case let .keyNotFound(key, context):
        return "missing field \"\(key.stringValue)\" at \(path(context.codingPath))"
    case let .typeMismatch(type, context):
        return "field \(path(context.codingPath)): expected \(type)"
    case let .valueNotFound(type, context):
        return "field \(path(context.codingPath)): expected \(type), found null"
    case let .dataCorrupted(context):
        return "field \(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}
