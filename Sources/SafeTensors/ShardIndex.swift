import DynamicJSON
import Foundation

/// `model.safetensors.index.json`: which shard file holds each tensor.
public struct ShardIndex: Sendable, Equatable {
    public static let fileName = "model.safetensors.index.json"

    /// Tensor name → shard file name (relative to the checkpoint directory).
    public var weightMap: [String: String]
    /// The `metadata` object (conventionally `{"total_size": <bytes of tensor data>}`).
    public var metadata: [String: JSONValue]

    public init(weightMap: [String: String], metadata: [String: JSONValue] = [:]) {
        self.weightMap = weightMap
        self.metadata = metadata
    }

    /// An index with `metadata.total_size` set.
    public init(weightMap: [String: String], totalSize: Int64) {
        self.init(weightMap: weightMap, metadata: ["total_size": .int(totalSize)])
    }

    /// Conventional shard file name, e.g. `model-00001-of-00003.safetensors` (`index` is 1-based).
    public static func shardFileName(index: Int, count: Int) -> String {
        func pad(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return "model-\(pad(index))-of-\(pad(count)).safetensors"
    }

    /// Deterministic JSON text (sorted keys, two-space indentation, trailing newline).
    public func jsonData() -> Data {
        var out = "{\n  \"metadata\": "
        var meta = ""
        CanonicalJSON.write(.object(metadata), into: &meta)
        out += meta + ",\n  \"weight_map\": {"
        for (i, name) in CanonicalJSON.sortedKeys(weightMap.keys).enumerated() {
            out += i == 0 ? "\n    " : ",\n    "
            CanonicalJSON.writeString(name, into: &out)
            out += ": "
            CanonicalJSON.writeString(weightMap[name]!, into: &out)
        }
        out += weightMap.isEmpty ? "}\n}\n" : "\n  }\n}\n"
        return Data(out.utf8)
    }

    /// Writes the index to `url`.
    public func write(to url: URL) throws {
        do {
            try jsonData().write(to: url, options: .atomic)
        } catch {
            throw SafeTensorsError(file: url.path, .io(operation: "write index", errno: (error as NSError).code == 0 ? EIO : Int32(truncatingIfNeeded: (error as NSError).code)))
        }
    }

    /// Reads and validates an index: an object whose `weight_map` maps names to relative file names.
    public static func read(from url: URL) throws -> ShardIndex {
        func bad(_ why: String, tensor: String? = nil) -> SafeTensorsError {
            SafeTensorsError(file: url.path, tensor: tensor, .invalidIndex(why))
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw bad("cannot read: \(error.localizedDescription)") }
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch { throw bad("not valid JSON: \(SafeTensorsHeader.describe(error))") }
        guard case let .object(fields) = root else { throw bad("expected a JSON object") }
        guard case let .object(map)? = fields["weight_map"] else { throw bad("expected \"weight_map\" to be an object of tensor name → file name") }
        var weightMap: [String: String] = [:]
        for (name, value) in map {
            guard case let .string(file) = value else { throw bad("expected a file name string", tensor: name) }
            guard isPlainRelativePath(file) else { throw bad("file name \"\(file)\" must be a relative path inside the checkpoint directory", tensor: name) }
            weightMap[name] = file
        }
        var metadata: [String: JSONValue] = [:]
        if let meta = fields["metadata"] {
            switch meta {
            case let .object(m): metadata = m
            case .null: break
            default: throw bad("expected \"metadata\" to be an object")
            }
        }
        return ShardIndex(weightMap: weightMap, metadata: metadata)
    }

    static func isPlainRelativePath(_ path: String) -> Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." || $0.isEmpty }
    }
}
