import Foundation

/// Streams a whole checkpoint directory: tensors are assigned to shards of at most
/// `maxShardBytes` of data (a larger tensor gets a shard of its own), written in declaration order
/// through ``SafeTensorsWriter``, and — when there is more than one shard — the index is written by
/// ``finish()``. One shard is written as `model.safetensors` with no index.
public final class CheckpointWriter {
    public let directory: URL
    /// The tensors of each shard, in order.
    public let shards: [[TensorDeclaration]]
    private let metadata: [String: String]?
    private var shardIndex = 0
    private var writer: SafeTensorsWriter?
    private var shardOf: [String: Int] = [:]

    public init(directory: URL, tensors: [TensorDeclaration], maxShardBytes: Int, metadata: [String: String]? = ["format": "pt"]) throws {
        self.directory = directory
        self.metadata = metadata
        shards = Self.planShards(tensors, maxShardBytes: maxShardBytes)
        for (i, shard) in shards.enumerated() { for t in shard { shardOf[t.name] = i } }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Stale files of an earlier checkpoint in the same directory would confuse readers.
        for stale in [ShardIndex.fileName, "model.safetensors"] {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(stale))
        }
        writer = try openShard(0)
    }

    /// Greedy, order-preserving split into shards of at most `maxShardBytes` data bytes.
    public static func planShards(_ tensors: [TensorDeclaration], maxShardBytes: Int) -> [[TensorDeclaration]] {
        var shards: [[TensorDeclaration]] = [[]]
        var size = 0
        for t in tensors {
            let bytes = t.byteCount ?? 0
            if !shards[shards.count - 1].isEmpty, size + bytes > maxShardBytes {
                shards.append([])
                size = 0
            }
            shards[shards.count - 1].append(t)
            size += bytes
        }
        return shards
    }

    /// File name of shard `i` (0-based).
    public func shardFileName(_ i: Int) -> String {
        shards.count == 1 ? "model.safetensors" : ShardIndex.shardFileName(index: i + 1, count: shards.count)
    }

    /// Appends raw bytes of `tensor` (tensors in declaration order).
    public func write(_ bytes: UnsafeRawBufferPointer, tensor: String) throws {
        try currentWriter(for: tensor).write(bytes, tensor: tensor)
    }

    /// Appends `values` to `tensor`, converting to its dtype (round to nearest even).
    public func write(floats values: UnsafeBufferPointer<Float>, tensor: String) throws {
        try currentWriter(for: tensor).write(floats: values, tensor: tensor)
    }

    /// Appends `values` to `tensor`, converting to its dtype (round to nearest even).
    public func write(floats values: [Float], tensor: String) throws {
        try values.withUnsafeBufferPointer { try write(floats: $0, tensor: tensor) }
    }

    /// Finishes the last shard (checking all data was written) and writes the index if sharded.
    public func finish() throws {
        while shardIndex < shards.count {
            try writer!.finish()
            shardIndex += 1
            writer = shardIndex < shards.count ? try openShard(shardIndex) : nil
        }
        if shards.count > 1 {
            var weightMap: [String: String] = [:]
            var total: Int64 = 0
            for (i, shard) in shards.enumerated() {
                for t in shard {
                    weightMap[t.name] = shardFileName(i)
                    total += Int64(t.byteCount ?? 0)
                }
            }
            try ShardIndex(weightMap: weightMap, totalSize: total).write(to: directory.appendingPathComponent(ShardIndex.fileName))
        }
    }

    private func openShard(_ i: Int) throws -> SafeTensorsWriter {
        try SafeTensorsWriter(url: directory.appendingPathComponent(shardFileName(i)), tensors: shards[i], metadata: metadata)
    }

    private func currentWriter(for tensor: String) throws -> SafeTensorsWriter {
        if let target = shardOf[tensor], target > shardIndex {
            while shardIndex < target {
                try writer!.finish()  // throws if the shard is incomplete
                shardIndex += 1
                writer = try openShard(shardIndex)
            }
        }
        guard let writer else {
            throw SafeTensorsError(file: directory.path, tensor: tensor, .writeMismatch("the checkpoint is already finished"))
        }
        return writer
    }
}
