import Foundation
import SafeTensors

/// Where a tensor belongs in the block structure of a decoder-only transformer.
public enum LayerGroup: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// Token embedding (`model.embed_tokens.*`).
    case embedding
    /// Decoder layer `n` (`model.layers.n.*`), 0-based.
    case layer(Int)
    /// Final norm and output projection (`model.norm.*`, `lm_head.*`).
    case head

    public var description: String {
        switch self {
        case .embedding: "embedding"
        case let .layer(n): "layer \(n)"
        case .head: "head"
        }
    }
}

/// Regular expressions that assign tensor names to the embedding, a layer, or the head.
///
/// `layer` must have exactly one capture group: the 0-based layer index. Patterns are searched in
/// the tensor name (anchor them with `^` as needed). `layerCountKeys` are the `config.json` keys
/// that hold the number of layers, tried in order; a dotted key (`text_config.num_hidden_layers`)
/// looks inside nested objects.
public struct LayerPatterns: Sendable, Codable, Equatable {
    public var embedding: String
    public var layer: String
    public var head: String
    public var layerCountKeys: [String]

    public init(embedding: String, layer: String, head: String, layerCountKeys: [String] = ["num_hidden_layers"]) {
        self.embedding = embedding
        self.layer = layer
        self.head = head
        self.layerCountKeys = layerCountKeys
    }

    /// Llama, Mistral, Qwen2, Qwen3 naming.
    public static let standard = LayerPatterns(
        embedding: #"^model\.embed_tokens\."#,
        layer: #"^model\.layers\.(\d+)\."#,
        head: #"^(model\.norm\.|lm_head\.)"#,
        layerCountKeys: ["num_hidden_layers", "text_config.num_hidden_layers"])
}

/// An error mapping tensors to layers.
public struct LayerMapError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The tensor matches none of the patterns.
        case unmappedTensor(String)
        /// The tensor matches more than one pattern.
        case ambiguousTensor(String, [LayerGroup])
        /// The tensor's layer index is not below the configured number of layers.
        case layerOutOfRange(tensor: String, layer: Int, layerCount: Int)
        /// No tensor belongs to this layer.
        case missingLayer(Int, layerCount: Int)
        /// `config.json` has no usable layer count under any of these keys.
        case missingLayerCount(keys: [String])
        /// A pattern does not compile, or the layer pattern lacks its capture group.
        case invalidPattern(name: String, pattern: String, reason: String)
    }

    /// The file or directory involved (the checkpoint or its `config.json`), when known.
    public var source: String?
    public var kind: Kind

    public init(source: String?, _ kind: Kind) {
        self.source = source
        self.kind = kind
    }

    public var description: String {
        let prefix = source.map { "\($0): " } ?? ""
        switch kind {
        case let .unmappedTensor(t):
            return prefix + "tensor \"\(t)\" maps to no layer; expected a name matching the embedding, layer or head pattern (e.g. model.embed_tokens.*, model.layers.N.*, model.norm.*, lm_head.*)"
        case let .ambiguousTensor(t, groups):
            return prefix + "tensor \"\(t)\" matches several patterns (\(groups.map(\.description).joined(separator: ", "))); expected exactly one"
        case let .layerOutOfRange(t, layer, count):
            return prefix + "tensor \"\(t)\" belongs to layer \(layer), but config.json says there are \(count) layers (0…\(count - 1))"
        case let .missingLayer(layer, count):
            return prefix + "no tensor belongs to layer \(layer); expected every layer 0…\(count - 1) of config.json's \(count) to have tensors"
        case let .missingLayerCount(keys):
            return prefix + "expected a positive integer layer count under \(keys.map { "\"\($0)\"" }.joined(separator: " or "))"
        case let .invalidPattern(name, pattern, reason):
            return prefix + "\(name) pattern \"\(pattern)\": \(reason)"
        }
    }
}

/// The assignment of every tensor of a checkpoint to the embedding, a layer, or the head.
public struct LayerMap: Sendable, Equatable {
    /// Number of decoder layers.
    public let layerCount: Int
    /// Tensor name → group.
    public let groups: [String: LayerGroup]

    /// Maps `tensorNames`, checking that the layers are exactly `0..<layerCount`, each with tensors.
    /// A tensor matching no pattern is an error, unless `unmappedGroup` names where it goes.
    public init(tensorNames: [String], layerCount: Int, patterns: LayerPatterns = .standard, source: String? = nil,
                unmappedGroup: LayerGroup? = nil) throws {
        let compiled = try CompiledPatterns(patterns, source: source)
        var groups: [String: LayerGroup] = [:]
        var seen = Set<Int>()
        for name in tensorNames.sorted() {
            let group: LayerGroup
            do {
                group = try compiled.group(of: name, source: source)
            } catch let error as LayerMapError {
                guard case .unmappedTensor = error.kind, let unmappedGroup else { throw error }
                group = unmappedGroup
            }
            if case let .layer(n) = group {
                guard n < layerCount else {
                    throw LayerMapError(source: source, .layerOutOfRange(tensor: name, layer: n, layerCount: layerCount))
                }
                seen.insert(n)
            }
            groups[name] = group
        }
        if let missing = (0..<layerCount).first(where: { !seen.contains($0) }) {
            throw LayerMapError(source: source, .missingLayer(missing, layerCount: layerCount))
        }
        self.layerCount = layerCount
        self.groups = groups
    }

    /// Maps the tensors of `checkpoint`, with the layer count from its `config.json`.
    public init(checkpoint: Checkpoint, patterns: LayerPatterns = .standard, unmappedGroup: LayerGroup? = nil) throws {
        let config = try checkpoint.config()
        let count = try Self.layerCount(config: config, keys: patterns.layerCountKeys,
                                        source: checkpoint.directory.appendingPathComponent("config.json").path)
        try self.init(tensorNames: checkpoint.tensors.map(\.name), layerCount: count, patterns: patterns,
                      source: checkpoint.directory.path, unmappedGroup: unmappedGroup)
    }

    /// The layer count in a `config.json` object, under the first of `keys` that holds one.
    public static func layerCount(config: [String: JSONValue], keys: [String] = LayerPatterns.standard.layerCountKeys, source: String? = nil) throws -> Int {
        for key in keys {
            var value: JSONValue? = .object(config)
            for part in key.split(separator: ".") { value = value?[String(part)] }
            if let n = value?.intValue, n > 0 { return n }
        }
        throw LayerMapError(source: source, .missingLayerCount(keys: keys))
    }

    /// Names of the tensors in `group`, sorted.
    public func tensors(in group: LayerGroup) -> [String] {
        groups.filter { $0.value == group }.map(\.key).sorted()
    }

    /// Tensor names grouped: embedding, layers 0…L−1, head — each list sorted.
    public var tensorsByGroup: [(group: LayerGroup, tensors: [String])] {
        var byGroup: [LayerGroup: [String]] = [:]
        for (name, group) in groups { byGroup[group, default: []].append(name) }
        return byGroup.keys.sorted().map { ($0, byGroup[$0]!.sorted()) }
    }
}

/// `LayerPatterns` compiled once.
private struct CompiledPatterns {
    let embedding: Regex<AnyRegexOutput>
    let layer: Regex<AnyRegexOutput>
    let head: Regex<AnyRegexOutput>

    init(_ p: LayerPatterns, source: String?) throws {
        func compile(_ name: String, _ pattern: String) throws -> Regex<AnyRegexOutput> {
            do { return try Regex(pattern) } catch {
                throw LayerMapError(source: source, .invalidPattern(name: name, pattern: pattern, reason: "\(error)"))
            }
        }
        embedding = try compile("embedding", p.embedding)
        layer = try compile("layer", p.layer)
        head = try compile("head", p.head)
        let captures = captureGroupCount(p.layer)
        guard captures == 1 else {
            throw LayerMapError(source: source, .invalidPattern(name: "layer", pattern: p.layer, reason: "expected exactly one capture group (the layer index), found \(captures)"))
        }
    }

    func group(of name: String, source: String?) throws -> LayerGroup {
        var matches: [LayerGroup] = []
        if (try? embedding.firstMatch(in: name)) != nil { matches.append(.embedding) }
        if let m = try? layer.firstMatch(in: name) {
            guard let captured = m.output[1].substring, let n = Int(captured), n >= 0 else {
                throw LayerMapError(source: source, .unmappedTensor(name))
            }
            matches.append(.layer(n))
        }
        if (try? head.firstMatch(in: name)) != nil { matches.append(.head) }
        guard let first = matches.first else { throw LayerMapError(source: source, .unmappedTensor(name)) }
        guard matches.count == 1 else { throw LayerMapError(source: source, .ambiguousTensor(name, matches)) }
        return first
    }
}

/// Number of capture groups in `pattern`: match `(?:pattern)|` (which always matches the empty
/// string) and count the output's groups.
private func captureGroupCount(_ pattern: String) -> Int {
    guard let probe = try? Regex("(?:\(pattern))|"), let match = try? probe.firstMatch(in: "") else { return 0 }
    return match.output.count - 1
}
