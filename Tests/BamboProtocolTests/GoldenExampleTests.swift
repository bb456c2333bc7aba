import Foundation
import Testing

@testable import BamboProtocol

@Suite("Golden examples in Protocol/examples")
struct GoldenExampleTests {
    @Test("every example decodes and re-encodes to an equivalent JSON object", arguments: try goldenExamples().filter { $0.schema != "event" })
    func roundTrip(_ example: Example) throws {
        let kind = try #require(exampleKinds[example.schema], "no message kind for \(example.file)")
        let message = try WireCodec.decode(frames: frames(kind.type.rawValue, example.data), from: kind.sender)
        #expect(message.type == kind.type)
        #expect(message.sender == kind.sender)

        let encoded = try WireCodec.encode(message)
        #expect(encoded.count == 3)
        #expect(encoded[0] == Data("BAMBO/1".utf8))
        #expect(encoded[1] == Data(kind.type.rawValue.utf8))
        let original = try JSONValue(json: example.data).removingNullMembers
        let reencoded = try JSONValue(json: encoded[2]).removingNullMembers
        #expect(reencoded == original)

        // The re-encoded frames decode to the same message, and encoding is deterministic.
        #expect(try WireCodec.decode(frames: encoded, from: kind.sender) == message)
        #expect(try WireCodec.encode(message) == encoded)
    }

    @Test("every event example decodes and re-encodes to an equivalent JSON object", arguments: try goldenExamples().filter { $0.schema == "event" })
    func eventRoundTrip(_ example: Example) throws {
        let event = try EventRecord(jsonLine: example.data)
        let reencoded = try JSONValue(json: event.jsonLine())
        #expect(reencoded == (try JSONValue(json: example.data)))
        #expect(!(try event.jsonLine()).contains(UInt8(ascii: "\n")))
    }

    @Test("event times are ISO 8601 UTC with exactly three fraction digits")
    func eventTimes() throws {
        #expect(EventRecord.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(EventRecord.format(Date(timeIntervalSince1970: 1_795_000_000.25)) == "2026-11-18T11:06:40.250Z")
        #expect(EventRecord.parseTime("2026-11-18T11:06:40.250Z") == Date(timeIntervalSince1970: 1_795_000_000.25))
        #expect(EventRecord.parseTime("2026-11-18 09:46:40") == nil)
        #expect(throws: DecodingError.self) {
            try EventRecord(jsonLine: Data(#"{"seq":1,"time":"yesterday","kind":"k","data":{}}"#.utf8))
        }
    }

    @Test("every message type in each direction, and every schema, has a golden example")
    func coverage() throws {
        let examples = try goldenExamples()
        let names = Set(examples.map(\.schema))
        for (name, kind) in exampleKinds {
            #expect(names.contains(name), "no example for \(kind.type.rawValue) from the \(kind.sender.rawValue)")
        }
        for type in MessageType.allCases {
            for sender in Peer.allCases where type.isSent(by: sender) {
                #expect(exampleKinds.values.contains { $0.type == type && $0.sender == sender }, "\(type) from \(sender) has no example kind")
            }
        }
        let schemas = try FileManager.default.contentsOfDirectory(atPath: protocolFolder.appendingPathComponent("schemas").path)
            .filter { $0.hasSuffix(".schema.json") }
            .map { String($0.dropLast(".schema.json".count)) }
        #expect(Set(schemas) == Set(exampleKinds.keys).union(["common", "event"]))
        #expect(names.isSubset(of: Set(schemas)), "an example names no schema")
    }

    @Test("the spec lists every error and failure code the codec defines")
    func specNamesEveryCode() throws {
        let spec = try String(contentsOf: protocolFolder.appendingPathComponent("README.md"), encoding: .utf8)
        for code in ErrorCode.known {
            #expect(spec.contains("| `\(code.rawValue)` |"), "error code \(code) missing from the table in Protocol/README.md")
        }
        for code in FailureCode.known {
            #expect(spec.contains("`\(code.rawValue)`"), "failure code \(code) missing from Protocol/README.md")
        }
        for type in MessageType.allCases {
            #expect(spec.contains("#### \(type.rawValue) "), "message \(type) has no section in Protocol/README.md")
        }
        #expect(spec.contains("`\(WireFormat.protocolID)`"))
    }
}
