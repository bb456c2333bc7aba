import Foundation
import Testing
@testable import SafeTensors

/// A file built by hand: 8-byte length (or an override), header text, data bytes.
private func handMade(_ header: String, dataBytes: Int, length: UInt64? = nil, truncateTo: Int? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    out += h
    out += [UInt8](repeating: 0xAB, count: dataBytes)
    if let truncateTo { out = Array(out.prefix(truncateTo)) }
    return out
}

struct MalformedCase: CustomTestStringConvertible, Sendable {
    var label: String
    var bytes: [UInt8]
    var tensor: String?
    var kind: SafeTensorsError.Kind
    var testDescription: String { label }
}

private let f32x2 = #""dtype":"F32","shape":[2]"#

let malformedCases: [MalformedCase] = [
    MalformedCase(label: "empty file", bytes: [], tensor: nil, kind: .fileTooSmall(size: 0)),
    MalformedCase(label: "shorter than the length prefix", bytes: [1, 0, 0], tensor: nil, kind: .fileTooSmall(size: 3)),
    MalformedCase(label: "huge header length", bytes: handMade("{}", dataBytes: 0, length: 1 << 40), tensor: nil,
                  kind: .headerTooLarge(length: 1 << 40, limit: SafeTensorsHeader.maxHeaderLength)),
    MalformedCase(label: "maximal header length", bytes: handMade("{}", dataBytes: 0, length: .max), tensor: nil,
                  kind: .headerTooLarge(length: .max, limit: SafeTensorsHeader.maxHeaderLength)),
    MalformedCase(label: "header length > file", bytes: handMade("{}", dataBytes: 0, length: 50), tensor: nil,
                  kind: .headerBeyondFile(length: 50, fileSize: 10)),
    MalformedCase(label: "truncated inside the header", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[0,8]}}"#, dataBytes: 8, truncateTo: 20),
                  tensor: nil, kind: .headerBeyondFile(length: 54, fileSize: 20)),
    MalformedCase(label: "truncated inside the data", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[0,8]}}"#, dataBytes: 8, truncateTo: 8 + 54 + 5),
                  tensor: "a", kind: .offsetsOutOfBounds(end: 8, dataSize: 5)),
    MalformedCase(label: "bad JSON", bytes: handMade(#"{"a":{"dtype":"F32","#, dataBytes: 0), tensor: nil, kind: .invalidJSON("")),
    MalformedCase(label: "header not UTF-8", bytes: handMade("{\"\u{FF}\"}", dataBytes: 0).enumerated().map { $0.offset == 10 ? 0xFF : $0.element },
                  tensor: nil, kind: .invalidJSON("")),
    MalformedCase(label: "deeply nested JSON", bytes: handMade(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), dataBytes: 0),
                  tensor: nil, kind: .invalidJSON("")),
    MalformedCase(label: "header is an array", bytes: handMade("[1,2]", dataBytes: 0), tensor: nil, kind: .headerNotAnObject),
    MalformedCase(label: "unknown dtype", bytes: handMade(#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, dataBytes: 16),
                  tensor: "w", kind: .unknownDType("F128")),
    MalformedCase(label: "shape mismatch", bytes: handMade(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8),
                  tensor: "w", kind: .shapeMismatch(shape: [3], dtype: .f32, expectedBytes: 12, actualBytes: 8)),
    MalformedCase(label: "shape product overflows", bytes: handMade(#"{"w":{"dtype":"BF16","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, dataBytes: 8),
                  tensor: "w", kind: .shapeMismatch(shape: [4_611_686_018_427_387_904, 4], dtype: .bf16, expectedBytes: nil, actualBytes: 8)),
    MalformedCase(label: "bytes overflow", bytes: handMade(#"{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}"#, dataBytes: 8),
                  tensor: "w", kind: .shapeMismatch(shape: [4_611_686_018_427_387_904], dtype: .f64, expectedBytes: nil, actualBytes: 8)),
    MalformedCase(label: "negative dimension", bytes: handMade(#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, dataBytes: 8),
                  tensor: "w", kind: .invalidEntry("expected \"shape\" to be an array of non-negative integers")),
    MalformedCase(label: "fractional dimension", bytes: handMade(#"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, dataBytes: 8),
                  tensor: "w", kind: .invalidEntry("expected \"shape\" to be an array of non-negative integers")),
    MalformedCase(label: "missing data_offsets", bytes: handMade(#"{"w":{\#(f32x2)}}"#, dataBytes: 8),
                  tensor: "w", kind: .invalidEntry("expected \"data_offsets\" to be [begin, end] of non-negative integers")),
    MalformedCase(label: "negative offset", bytes: handMade(#"{"w":{\#(f32x2),"data_offsets":[-8,0]}}"#, dataBytes: 8),
                  tensor: "w", kind: .invalidEntry("expected \"data_offsets\" to be [begin, end] of non-negative integers")),
    MalformedCase(label: "entry not an object", bytes: handMade(#"{"w":[1,2]}"#, dataBytes: 0),
                  tensor: "w", kind: .invalidEntry("expected an object with dtype, shape and data_offsets")),
    MalformedCase(label: "begin after end", bytes: handMade(#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, dataBytes: 8),
                  tensor: "w", kind: .invalidOffsets(begin: 8, end: 0)),
    MalformedCase(label: "out-of-bounds offsets", bytes: handMade(#"{"w":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}}"#, dataBytes: 8),
                  tensor: "w", kind: .offsetsOutOfBounds(end: 100, dataSize: 8)),
    MalformedCase(label: "offset beyond UInt64 range of Int", bytes: handMade(#"{"w":{\#(f32x2),"data_offsets":[18446744073709551608,18446744073709551615]}}"#, dataBytes: 8),
                  tensor: "w", kind: .offsetsOutOfBounds(end: 18_446_744_073_709_551_615, dataSize: 8)),
    MalformedCase(label: "overlapping ranges", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[0,8]},"b":{\#(f32x2),"data_offsets":[4,12]}}"#, dataBytes: 12),
                  tensor: "b", kind: .overlappingTensors(other: "a")),
    MalformedCase(label: "same range twice", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[0,8]},"b":{\#(f32x2),"data_offsets":[0,8]}}"#, dataBytes: 8),
                  tensor: "b", kind: .overlappingTensors(other: "a")),
    MalformedCase(label: "gap in the data", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[0,8]},"b":{\#(f32x2),"data_offsets":[12,20]}}"#, dataBytes: 20),
                  tensor: "b", kind: .gapInData(begin: 8, end: 12)),
    MalformedCase(label: "gap at the start", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[4,12]}}"#, dataBytes: 12),
                  tensor: "a", kind: .gapInData(begin: 0, end: 4)),
    MalformedCase(label: "trailing bytes after the last tensor", bytes: handMade(#"{"a":{\#(f32x2),"data_offsets":[0,8]}}"#, dataBytes: 10),
                  tensor: "a", kind: .dataNotCovered(coveredBytes: 8, dataSize: 10)),
    MalformedCase(label: "metadata not strings", bytes: handMade(#"{"__metadata__":{"n":3}}"#, dataBytes: 0),
                  tensor: nil, kind: .invalidMetadata("value of \"n\" is not a string")),
    MalformedCase(label: "metadata not an object", bytes: handMade(#"{"__metadata__":"x"}"#, dataBytes: 0),
                  tensor: nil, kind: .invalidMetadata("expected an object")),
]

@Suite struct MalformedFileTests {
    @Test(arguments: malformedCases)
    func malformedFileGivesItsSpecificError(_ c: MalformedCase) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let url = dir.file("bad-\(c.label.replacingOccurrences(of: " ", with: "_")).safetensors")
        try Data(c.bytes).write(to: url)
        guard let error = captureError({ _ = try SafeTensorsFile(url: url) }) else { return }
        if case .invalidJSON = c.kind {
            guard case .invalidJSON = error.kind else { Issue.record("expected invalidJSON, got \(error)"); return }
        } else {
            #expect(error.kind == c.kind, "\(error)")
        }
        #expect(error.file == url.path)
        #expect(error.tensor == c.tensor)
        #expect(error.description.contains(url.path), "message names the file: \(error)")
        if let tensor = c.tensor { #expect(error.description.contains("\"\(tensor)\""), "message names the tensor: \(error)") }
    }

    @Test func validMinimalFilesParse() throws {
        let empty = try handMade("{}      ", dataBytes: 0).withUnsafeBytes { try SafeTensorsHeader.parse(fileBytes: $0, file: "x") }
        #expect(empty.tensors.isEmpty && empty.dataStart == 16 && empty.dataSize == 0 && empty.metadata == nil)
        let zeroSized = try handMade(#"{"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"a":{\#(f32x2),"data_offsets":[0,8]}}"#, dataBytes: 8)
            .withUnsafeBytes { try SafeTensorsHeader.parse(fileBytes: $0, file: "x") }
        #expect(zeroSized.tensors.map(\.name) == ["z", "a"])
    }

    @Test func missingFileAndDirectoryGiveIOErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let missing = captureError { _ = try SafeTensorsFile(url: dir.file("nope.safetensors")) }
        #expect(missing?.kind == .io(operation: "open", errno: ENOENT))
        #expect(captureError { _ = try SafeTensorsFile(url: dir.url) }?.kind == .io(operation: "open (not a regular file)", errno: EINVAL))
        #expect(captureError { _ = try Checkpoint(directory: dir.url) }?.kind == .noCheckpointFound)
    }

    /// Random corruptions of a valid file must never crash: each either parses (and then reads
    /// back within bounds) or throws a `SafeTensorsError`.
    @Test func randomCorruptionsNeverCrash() throws {
        let original = try Data(contentsOf: fixturesURL.appendingPathComponent("dtypes.safetensors"))
        var rng = TestRNG(seed: 99)
        var parsed = 0, rejected = 0
        for round in 0..<4000 {
            var bytes = [UInt8](original)
            switch round % 4 {
            case 0: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            case 1:
                for _ in 0..<(1 + Int(rng.next() % 4)) { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            case 2:  // corrupt a header byte (digits and structure)
                let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
                let i = 8 + Int(rng.next() % UInt64(headerLength))
                bytes[i] = Array("0123456789[]{},:\"-.eE ".utf8)[Int(rng.next() % 22)]
            default:  // corrupt the length prefix
                bytes[Int(rng.next() % 8)] = UInt8(truncatingIfNeeded: rng.next())
            }
            do {
                let header = try bytes.withUnsafeBytes { try SafeTensorsHeader.parse(fileBytes: $0, file: "fuzz") }
                for t in header.tensors {
                    #expect(t.dataOffsets.upperBound <= header.dataSize)
                    #expect(t.byteCount == t.elementCount * t.dtype.byteSize)
                }
                parsed += 1
            } catch is SafeTensorsError {
                rejected += 1
            }
        }
        #expect(rejected > 1000)
        #expect(parsed + rejected == 4000)
    }
}
