import Foundation
import Testing

@testable import BamboProtocol

/// SplitMix64: a small seeded generator, so every run tries the same mutations.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Mutated golden examples never crash the codec")
struct MutationTests {
    /// Values that stress types and ranges when put anywhere in a body.
    static let replacements: [JSONValue] = [
        .null, true, false, 0, -1, 1, 0.5, 1e300, -1e300, 9_007_199_254_740_993, 18_446_744_073_709_551_616.0, "", "x",
        .string(String(repeating: "é", count: 5000)), [], [1, 2], [:], ["kind": "exec"], [[0, 1]],
    ]

    /// Every path (object keys and array indices) in a JSON value.
    static func paths(_ value: JSONValue, prefix: [PathStep] = []) -> [[PathStep]] {
        switch value {
        case .object(let members):
            return members.keys.sorted().flatMap { key in [prefix + [.key(key)]] + paths(members[key]!, prefix: prefix + [.key(key)]) }
        case .array(let values):
            return values.indices.flatMap { index in [prefix + [.index(index)]] + paths(values[index], prefix: prefix + [.index(index)]) }
        default:
            return []
        }
    }

    /// Decodes; when that succeeds, the message must survive encode → decode unchanged.
    static func check(_ body: Data, kind: (type: MessageType, sender: Peer)) throws {
        let message: Message
        do {
            message = try WireCodec.decode(frames: frames(kind.type.rawValue, body), from: kind.sender)
        } catch {
            #expect(!error.description.isEmpty)
            return
        }
        let encoded = try WireCodec.encode(message)
        #expect(try WireCodec.decode(frames: encoded, from: kind.sender) == message)
    }

    @Test("values replaced or removed anywhere in a body", arguments: try goldenExamples().filter { $0.schema != "event" })
    func structuralMutations(_ example: Example) throws {
        let kind = try #require(exampleKinds[example.schema])
        let original = try JSONValue(json: example.data)
        var random = SplitMix64(state: example.file.utf8.reduce(42) { $0 &* 31 &+ UInt64($1) })
        for path in MutationTests.paths(original) {
            try MutationTests.check(try jsonData(original.setting(path, to: nil)), kind: kind)
            for _ in 0..<3 {
                let value = MutationTests.replacements.randomElement(using: &random)!
                try MutationTests.check(try jsonData(original.setting(path, to: value)), kind: kind)
            }
        }
    }

    @Test("random bytes flipped, inserted and cut", arguments: try goldenExamples().filter { $0.schema != "event" })
    func byteMutations(_ example: Example) throws {
        let kind = try #require(exampleKinds[example.schema])
        var random = SplitMix64(state: 7)
        let bytes = Array(example.data)
        for _ in 0..<200 {
            var mutated = bytes
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                mutated[Int.random(in: 0..<mutated.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            case 1:
                mutated.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...mutated.count, using: &random))
            default:
                let start = Int.random(in: 0..<mutated.count, using: &random)
                mutated.removeSubrange(start..<min(mutated.count, start + Int.random(in: 1...8, using: &random)))
            }
            try MutationTests.check(Data(mutated), kind: kind)
        }
    }
}
