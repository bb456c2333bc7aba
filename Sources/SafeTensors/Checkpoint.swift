import DynamicJSON
import Foundation

/// A tensor of a checkpoint and the file that holds it.
public struct CheckpointTensor: Sendable, Equatable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var elementCount: Int
    public var byteCount: Int
    /// The shard's file name, relative to the checkpoint directory.
    public var file: String
}

/// A Hugging Face style model directory: `model.safetensors.index.json` with its shards, or a
/// single `model.safetensors`, plus `config.json`. Files are memory-mapped and validated on open.
public final class Checkpoint: Sendable {
    public let directory: URL
    /// Tensors sorted by name.
    public let tensors: [CheckpointTensor]
    /// Whether the checkpoint is sharded through an index file.
    public let isSharded: Bool
    /// The opened files, keyed by file name relative to `directory`.
    public let files: [String: SafeTensorsFile]
    private let byName: [String: Int]

    /// Opens the checkpoint in `directory` (index preferred over a single file).
    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent(ShardIndex.fileName)
        let singleURL = directory.appendingPathComponent("model.safetensors")
        var files: [String: SafeTensorsFile] = [:]
        var tensors: [CheckpointTensor] = []
        if fm.fileExists(atPath: indexURL.path) {
            isSharded = true
            let index = try ShardIndex.read(from: indexURL)
            for fileName in Set(index.weightMap.values).sorted() {
                files[fileName] = try SafeTensorsFile(url: directory.appendingPathComponent(fileName))
            }
            for name in CanonicalJSON.sortedKeys(index.weightMap.keys) {
                let fileName = index.weightMap[name]!
                guard let info = try? files[fileName]!.info(name) else {
                    throw SafeTensorsError(file: indexURL.path, tensor: name, .invalidIndex("weight_map names \(fileName), which does not contain this tensor"))
                }
                tensors.append(CheckpointTensor(info, file: fileName))
            }
            // Every tensor stored in a shard must be listed, and in that shard.
            for fileName in files.keys.sorted() {
                for info in files[fileName]!.tensors {
                    guard let listed = index.weightMap[info.name] else {
                        throw SafeTensorsError(file: indexURL.path, tensor: info.name, .invalidIndex("tensor stored in \(fileName) is missing from weight_map"))
                    }
                    if listed != fileName {
                        throw SafeTensorsError(file: directory.appendingPathComponent(listed).path, tensor: info.name, .duplicateTensor(file2: fileName))
                    }
                }
            }
        } else if fm.fileExists(atPath: singleURL.path) {
            isSharded = false
            let file = try SafeTensorsFile(url: singleURL)
            files["model.safetensors"] = file
            tensors = file.tensors.map { CheckpointTensor($0, file: "model.safetensors") }
            tensors.sort { CanonicalJSON.utf8Precedes($0.name, $1.name) }
        } else {
            throw SafeTensorsError(file: directory.path, .noCheckpointFound)
        }
        self.files = files
        self.tensors = tensors
        var byName: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { byName[t.name] = i }
        self.byName = byName
    }

    /// Total bytes of tensor data.
    public var totalBytes: Int64 { tensors.reduce(0) { $0 + Int64($1.byteCount) } }

    /// The tensor called `name`.
    public func tensor(_ name: String) throws -> CheckpointTensor {
        guard let i = byName[name] else { throw SafeTensorsError(file: directory.path, tensor: name, .tensorNotFound) }
        return tensors[i]
    }

    /// The file that holds the tensor called `name`.
    public func file(containing name: String) throws -> SafeTensorsFile {
        files[try tensor(name).file]!
    }

    /// Calls `body` with the tensor's raw bytes, without copying.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try file(containing: name).withRawBytes(of: name, body)
    }

    /// Calls `body` with the raw bytes of the elements `elements`, without copying.
    public func withRawBytes<R>(of name: String, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try file(containing: name).withRawBytes(of: name, elements: elements, body)
    }

    /// Converts the elements `elements` of a BF16/F16/F32 tensor to `Float` into `out`.
    public func readFloats(of name: String, elements: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
        try file(containing: name).readFloats(of: name, elements: elements, into: out)
    }

    /// The tensor's values (or those of `elements`) as `Float`.
    public func floats(of name: String, elements: Range<Int>? = nil) throws -> [Float] {
        try file(containing: name).floats(of: name, elements: elements)
    }

    /// Hints that elements of a tensor will be read soon, or are done with (see
    /// ``SafeTensorsFile/advise(_:elements:willNeed:)``).
    public func advise(_ name: String, elements: Range<Int>? = nil, willNeed: Bool) {
        guard let file = try? file(containing: name) else { return }
        file.advise(name, elements: elements, willNeed: willNeed)
    }

    /// `config.json` of the directory, as a JSON object.
    public func config() throws -> [String: JSONValue] {
        try Self.readConfig(directory: directory)
    }

    /// Reads `config.json` in `directory` as a JSON object.
    public static func readConfig(directory: URL) throws -> [String: JSONValue] {
        let url = directory.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafeTensorsError(file: url.path, .invalidConfig("cannot read: \(error.localizedDescription)"))
        }
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch {
            throw SafeTensorsError(file: url.path, .invalidConfig("not valid JSON: \(SafeTensorsHeader.describe(error))"))
        }
        guard case let .object(object) = value else {
            throw SafeTensorsError(file: url.path, .invalidConfig("expected a JSON object"))
        }
        return object
    }
}

extension CheckpointTensor {
    init(_ info: TensorInfo, file: String) {
        self.init(name: info.name, dtype: info.dtype, shape: info.shape, elementCount: info.elementCount, byteCount: info.byteCount, file: file)
    }
}
