import Foundation
import Testing
@testable import SafeTensors

@Suite struct WriterTests {
    /// Random bytes for a pass-through tensor, random floats for a float tensor.
    private func sample(_ t: TensorDeclaration, rng: inout TestRNG) -> (bytes: [UInt8], floats: [Float]?) {
        if t.dtype.isFloatConvertible {
            let floats = (0..<t.elementCount!).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
            var bytes = [UInt8](repeating: 0, count: t.byteCount!)
            bytes.withUnsafeMutableBytes { out in floats.withUnsafeBufferPointer { FloatCodec.encode($0, as: t.dtype, into: out) } }
            return (bytes, floats)
        }
        return ((0..<t.byteCount!).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, nil)
    }

    @Test func roundTripOfEveryDType() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var rng = TestRNG(seed: 1)
        var declarations = DType.allCases.enumerated().map { i, dtype in
            TensorDeclaration(name: "t.\(dtype.rawValue.lowercased())", dtype: dtype, shape: [3 + i, 5])
        }
        declarations.append(TensorDeclaration(name: "scalar", dtype: .bf16, shape: []))
        declarations.append(TensorDeclaration(name: "empty", dtype: .f16, shape: [4, 0]))
        let samples = declarations.map { sample($0, rng: &rng) }
        let url = dir.file("all.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: declarations, metadata: ["format": "pt", "k": "v\"\n"])
        for (t, s) in zip(declarations, samples) {
            if let floats = s.floats, t.dtype != .f32 {
                // Floats in uneven chunks, converted by the writer.
                var start = 0
                while start < floats.count {
                    let n = min(7, floats.count - start)
                    try writer.write(floats: Array(floats[start..<(start + n)]), tensor: t.name)
                    start += n
                }
            } else {
                try s.bytes.withUnsafeBytes { raw in
                    let half = raw.count / 2
                    try writer.write(UnsafeRawBufferPointer(rebasing: raw[..<half]), tensor: t.name)
                    try writer.write(UnsafeRawBufferPointer(rebasing: raw[half...]), tensor: t.name)
                }
            }
        }
        try writer.finish()
        #expect(!FileManager.default.fileExists(atPath: url.path + ".partial"))

        let file = try SafeTensorsFile(url: url)
        #expect(file.metadata == ["format": "pt", "k": "v\"\n"])
        #expect(file.header.dataStart % 8 == 0)
        for (t, s) in zip(declarations, samples) {
            let info = try file.info(t.name)
            #expect(info.dtype == t.dtype && info.shape == t.shape)
            #expect(try file.withRawBytes(of: t.name) { Array($0) } == s.bytes, "\(t.name)")
            if let floats = s.floats {
                let read = try file.floats(of: t.name)
                for (x, y) in zip(floats, read) {
                    let expected: Float = t.dtype == .bf16 ? FloatCodec.bf16ToFloat(FloatCodec.floatToBF16(x))
                        : t.dtype == .f16 ? FloatCodec.f16ToFloat(FloatCodec.floatToF16(x)) : x
                    #expect(y.bitPattern == expected.bitPattern || (y.isNaN && expected.isNaN))
                }
            }
        }
    }

    @Test func outputIsDeterministicWithSortedKeysAndSpacePadding() throws {
        let tensors = [
            TensorDeclaration(name: "zeta", dtype: .f32, shape: [1]),
            TensorDeclaration(name: "Alpha", dtype: .u8, shape: [3]),
            TensorDeclaration(name: "alpha", dtype: .bf16, shape: [2]),
        ]
        let bytes = try SafeTensorsWriter.headerBytes(tensors: tensors, metadata: ["b": "2", "a": "1"], file: "x")
        let length = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        #expect(length == bytes.count - 8 && length % 8 == 0)
        let text = String(decoding: bytes[8...], as: UTF8.self)
        let json = #"{"Alpha":{"data_offsets":[4,7],"dtype":"U8","shape":[3]},"__metadata__":{"a":"1","b":"2"},"alpha":{"data_offsets":[7,11],"dtype":"BF16","shape":[2]},"zeta":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}"#
        #expect(text.hasPrefix(json))
        #expect(text.dropFirst(json.utf8.count).allSatisfy { $0 == " " })
        #expect(try SafeTensorsWriter.headerBytes(tensors: tensors, metadata: ["a": "1", "b": "2"], file: "x") == bytes)
    }

    @Test func writesAreCheckedAgainstTheDeclarations() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let url = dir.file("w.safetensors")
        let tensors = [TensorDeclaration(name: "a", dtype: .f32, shape: [2]), TensorDeclaration(name: "b", dtype: .i32, shape: [1])]
        let writer = try SafeTensorsWriter(url: url, tensors: tensors)
        #expect(writer.nextTensor == "a")
        #expect(captureError { try writer.write(floats: [1], tensor: "b") }?.kind == .writeMismatch("expected data for tensor \"a\" next (declaration order)"))
        #expect(captureError { try writer.write(floats: [1, 2, 3], tensor: "a") }?.tensor == "a")
        try writer.write(floats: [1, 2], tensor: "a")
        #expect(captureError { try writer.write(floats: [1], tensor: "b") }?.kind == .notFloatConvertible(.i32))
        #expect(writer.nextTensor == "b")
        let early = captureError { try writer.finish() }
        #expect(early?.kind == .writeMismatch("0 of 4 bytes written") && early?.tensor == "b")
        try [Int32(7)].withUnsafeBytes { try writer.write($0, tensor: "b") }
        #expect(captureError { try [UInt8(1)].withUnsafeBytes { try writer.write($0, tensor: "b") } } != nil)
        try writer.finish()
        #expect(try SafeTensorsFile(url: url).floats(of: "a") == [1, 2])

        let duplicate = captureError { _ = try SafeTensorsWriter(url: dir.file("d.safetensors"), tensors: [tensors[0], tensors[0]]) }
        #expect(duplicate?.kind == .invalidDeclaration("declared twice"))
        let negative = captureError { _ = try SafeTensorsWriter(url: dir.file("n.safetensors"), tensors: [TensorDeclaration(name: "n", dtype: .u8, shape: [-1])]) }
        #expect(negative?.tensor == "n")
    }

    @Test func abandonedWriterLeavesNoFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let url = dir.file("abandoned.safetensors")
        do {
            let writer = try SafeTensorsWriter(url: url, tensors: [TensorDeclaration(name: "a", dtype: .f32, shape: [2])])
            try writer.write(floats: [1], tensor: "a")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }

    @Test func largeTensorStreamedInChunksMatchesThePythonLayout() throws {
        // A tensor bigger than the writer's buffer, written in chunks: the bytes must be exactly the
        // encodings of the values, in order.
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let n = 700_001
        let url = dir.file("big.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: [TensorDeclaration(name: "big", dtype: .bf16, shape: [n])])
        let values = (0..<n).map { Float($0 % 255 - 127) * 0.25 }
        for start in stride(from: 0, to: n, by: 65_537) {
            try writer.write(floats: Array(values[start..<min(n, start + 65_537)]), tensor: "big")
        }
        try writer.finish()
        let file = try SafeTensorsFile(url: url)
        #expect(try file.floats(of: "big") == values)  // all exactly representable in bf16
        #expect(try file.floats(of: "big", elements: 654_321..<654_330) == Array(values[654_321..<654_330]))
    }

    @Test func shardedCheckpointRoundTrip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let tensors = (0..<7).map { TensorDeclaration(name: "model.layers.\($0).w", dtype: .f32, shape: [10, 10]) }  // 400 B each
        #expect(CheckpointWriter.planShards(tensors, maxShardBytes: 1000).map(\.count) == [2, 2, 2, 1])
        #expect(CheckpointWriter.planShards(tensors, maxShardBytes: 10).map(\.count) == [1, 1, 1, 1, 1, 1, 1])
        let writer = try CheckpointWriter(directory: dir.url, tensors: tensors, maxShardBytes: 1000)
        for (i, t) in tensors.enumerated() {
            try writer.write(floats: (0..<100).map { Float(i * 100 + $0) }, tensor: t.name)
        }
        try writer.finish()
        let index = try ShardIndex.read(from: dir.file(ShardIndex.fileName))
        #expect(index.metadata["total_size"]?.intValue == 2800)
        #expect(index.weightMap["model.layers.6.w"] == "model-00004-of-00004.safetensors")
        let checkpoint = try Checkpoint(directory: dir.url)
        #expect(checkpoint.isSharded && checkpoint.files.count == 4)
        for (i, t) in tensors.enumerated() {
            #expect(try checkpoint.floats(of: t.name) == (0..<100).map { Float(i * 100 + $0) })
        }
        // The index text is deterministic.
        let again = ShardIndex(weightMap: index.weightMap, totalSize: 2800).jsonData()
        #expect(try Data(contentsOf: dir.file(ShardIndex.fileName)) == again)
        #expect(String(decoding: again, as: UTF8.self).hasPrefix("{\n  \"metadata\": {\"total_size\":2800},\n  \"weight_map\": {\n    \"model.layers.0.w\": \"model-00001-of-00004.safetensors\","))

        // One shard: plain model.safetensors, no index.
        let single = dir.url.appendingPathComponent("single")
        let one = try CheckpointWriter(directory: single, tensors: Array(tensors.prefix(2)), maxShardBytes: 1 << 30)
        try one.write(floats: [Float](repeating: 1, count: 100), tensor: tensors[0].name)
        #expect(captureError { try one.finish() }?.tensor == tensors[1].name)
        try one.write(floats: [Float](repeating: 2, count: 100), tensor: tensors[1].name)
        try one.finish()
        #expect(try FileManager.default.contentsOfDirectory(atPath: single.path) == ["model.safetensors"])
    }

    @Test func indexProblemsAreReported() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let tensors = ["a", "b", "c"].map { TensorDeclaration(name: $0, dtype: .f32, shape: [1]) }
        let writer = try CheckpointWriter(directory: dir.url, tensors: tensors, maxShardBytes: 8)
        for t in tensors { try writer.write(floats: [1], tensor: t.name) }
        try writer.finish()
        let indexURL = dir.file(ShardIndex.fileName)
        let good = try ShardIndex.read(from: indexURL)

        #expect(good.weightMap["a"] == good.weightMap["b"] && good.weightMap["a"] != good.weightMap["c"])
        try ShardIndex(weightMap: ["a": good.weightMap["a"]!, "c": good.weightMap["c"]!]).write(to: indexURL)
        let unlisted = captureError { _ = try Checkpoint(directory: dir.url) }
        #expect(unlisted?.tensor == "b" && unlisted?.file == indexURL.path)

        try ShardIndex(weightMap: ["a": good.weightMap["c"]!, "b": good.weightMap["b"]!, "c": good.weightMap["c"]!]).write(to: indexURL)
        let wrongShard = captureError { _ = try Checkpoint(directory: dir.url) }
        #expect(wrongShard?.tensor == "a")

        try ShardIndex(weightMap: ["a": "../escape.safetensors"]).write(to: indexURL)
        #expect(captureError { _ = try ShardIndex.read(from: indexURL) }?.tensor == "a")

        try Data("{\"weight_map\": 3}".utf8).write(to: indexURL)
        #expect(captureError { _ = try Checkpoint(directory: dir.url) }?.kind == .invalidIndex("expected \"weight_map\" to be an object of tensor name → file name"))
    }
}
