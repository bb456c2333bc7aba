import Foundation
import Testing
@testable import SafeTensors

/// Files written by the Python `safetensors` library (see Fixtures/README.md), checked against the
/// values torch recorded in `expected.json`.
@Suite struct FixtureTests {
    struct Expected: Decodable {
        struct Tensor: Decodable {
            var dtype: String
            var shape: [Int]
            var bytes: String
            var f32bits: [UInt32]?
            var source_f32bits: [UInt32]?
            var rounded_bits: [UInt16]?
        }
        struct File: Decodable {
            var metadata: [String: String]
            var tensors: [String: Tensor]
        }
        struct Model: Decodable {
            var shards: [String: String]
            var tensors: [String: Tensor]
        }
        var dtypesFile: File
        var model: Model
        enum CodingKeys: String, CodingKey {
            case dtypesFile = "dtypes.safetensors"
            case model
        }
    }

    static let torchDTypeNames: [String: DType] = [
        "float32": .f32, "bfloat16": .bf16, "float16": .f16, "float64": .f64, "int64": .i64, "int32": .i32,
        "int16": .i16, "int8": .i8, "uint8": .u8, "uint16": .u16, "uint32": .u32, "uint64": .u64, "bool": .bool,
        "float8_e4m3fn": .f8e4m3, "float8_e5m2": .f8e5m2, "float8_e4m3fnuz": .f8e4m3fnuz, "float8_e5m2fnuz": .f8e5m2fnuz,
        "complex64": .c64,
    ]

    let expected: Expected

    init() throws {
        expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixturesURL.appendingPathComponent("expected.json")))
    }

    private func check(_ name: String, _ want: Expected.Tensor, dtype: DType, shape: [Int], rawBytes: [UInt8], floats: [Float]?) {
        #expect(dtype == Self.torchDTypeNames[want.dtype], "\(name)")
        #expect(shape == want.shape, "\(name)")
        #expect(rawBytes == hexBytes(want.bytes), "\(name): raw bytes")
        if let bits = want.f32bits {
            #expect(floats?.map(\.bitPattern) == bits, "\(name): float values")
        }
    }

    @Test func everyDTypeReadsAsTorchWroteIt() throws {
        let file = try SafeTensorsFile(url: fixturesURL.appendingPathComponent("dtypes.safetensors"))
        #expect(file.metadata == expected.dtypesFile.metadata)
        #expect(Set(file.tensors.map(\.name)) == Set(expected.dtypesFile.tensors.keys))
        #expect(Set(file.tensors.map(\.dtype)) == Set(DType.allCases), "fixture covers every dtype")
        for (name, want) in expected.dtypesFile.tensors {
            let info = try file.info(name)
            let raw = try file.withRawBytes(of: name) { Array($0) }
            let floats = info.dtype.isFloatConvertible ? try file.floats(of: name) : nil
            check(name, want, dtype: info.dtype, shape: info.shape, rawBytes: raw, floats: floats)
        }
    }

    @Test func roundingMatchesTorch() throws {
        for name in ["bf16", "f16"] {
            let want = expected.dtypesFile.tensors[name]!
            let source = want.source_f32bits!.map { Float(bitPattern: $0) }
            let rounded = want.rounded_bits!
            for (x, torchBits) in zip(source, rounded) {
                let ours = name == "bf16" ? FloatCodec.floatToBF16(x) : FloatCodec.floatToF16(x)
                if x.isNaN {
                    let decoded = name == "bf16" ? FloatCodec.bf16ToFloat(ours) : FloatCodec.f16ToFloat(ours)
                    #expect(decoded.isNaN)
                } else {
                    #expect(ours == torchBits, "\(name): \(x) → ours \(String(ours, radix: 16)), torch \(String(torchBits, radix: 16))")
                }
            }
        }
    }

    @Test func chunksOfATensorMatchTheWhole() throws {
        let file = try SafeTensorsFile(url: fixturesURL.appendingPathComponent("dtypes.safetensors"))
        for name in ["f32", "bf16", "f16"] {
            let whole = try file.floats(of: name)
            let chunk = try file.floats(of: name, elements: 5..<29)
            #expect(chunk.map(\.bitPattern) == whole[5..<29].map(\.bitPattern))
        }
        let error = captureError { _ = try file.floats(of: "f32", elements: 40..<49) }
        #expect(error?.kind == .elementRangeOutOfBounds(lower: 40, upper: 49, count: 48))
        #expect(error?.tensor == "f32")
        #expect(captureError { _ = try file.floats(of: "i32") }?.kind == .notFloatConvertible(.i32))
        #expect(captureError { _ = try file.floats(of: "nope") }?.kind == .tensorNotFound)
    }

    @Test(arguments: ["sharded", "single"])
    func checkpointDirectory(kind: String) throws {
        let directory = fixturesURL.appendingPathComponent(kind)
        let checkpoint = try Checkpoint(directory: directory)
        #expect(checkpoint.isSharded == (kind == "sharded"))
        #expect(checkpoint.tensors.map(\.name) == expected.model.tensors.keys.sorted())
        for t in checkpoint.tensors {
            let want = expected.model.tensors[t.name]!
            #expect(t.file == (kind == "sharded" ? expected.model.shards[t.name]! : "model.safetensors"))
            let raw = try checkpoint.withRawBytes(of: t.name) { Array($0) }
            check(t.name, want, dtype: t.dtype, shape: t.shape, rawBytes: raw, floats: try checkpoint.floats(of: t.name))
            #expect(t.byteCount == raw.count)
        }
        let config = try checkpoint.config()
        #expect(config["num_hidden_layers"]?.intValue == 2)
        #expect(config["architectures"] == .array(["LlamaForCausalLM"]))
        #expect(checkpoint.totalBytes == Int64(expected.model.tensors.values.reduce(0) { $0 + hexBytes($1.bytes).count }))
    }
}
