import Foundation
import Testing
@testable import SafeTensors

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    @Test func parsesValidDocuments() throws {
        #expect(try parse(#" {"a": [1, -2, 3.5, 1e3, -0.25E-2, true, false, null, "x"], "b": {}, "c": []} "#) == .object([
            "a": [1, -2, 3.5, 1000.0, -0.0025, true, false, nil, "x"], "b": .object([:]), "c": .array([]),
        ]))
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(try parse("18446744073709551615") == .uint(.max))
        #expect(try parse("18446744073709551616") == .double(18_446_744_073_709_551_616))
        #expect(try parse("0") == .int(0))
        #expect(try parse(#""\"\\\/\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00 λ""#) == .string("\"\\/\u{8}\u{c}\n\r\té中😀 λ"))
    }

    @Test func agreesWithFoundationOnAGeneratedDocument() throws {
        // A header-like document written by JSONSerialization; both parsers must read the same values.
        var rng = TestRNG(seed: 5)
        var object: [String: Any] = [:]
        for i in 0..<300 {
            object["model.layers.\(i).w\u{e9}"] = ["dtype": "BF16", "shape": [Int(rng.next() % 4096), Int(rng.next() % 64)],
                                                    "data_offsets": [Int(rng.next() % 1_000_000_000), i], "x": Double(i) / 7]
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        guard case let .object(parsed) = try JSONValue.parse(data) else { Issue.record("not an object"); return }
        #expect(parsed.count == 300)
        for (key, value) in object {
            let v = value as! [String: Any]
            #expect(parsed[key]?["dtype"] == "BF16")
            #expect(parsed[key]?["shape"]?.arrayValue?.compactMap(\.intValue) == (v["shape"] as! [Int]))
            #expect(parsed[key]?["data_offsets"]?.arrayValue?.compactMap(\.intValue) == (v["data_offsets"] as! [Int]))
            #expect(parsed[key]?["x"]?.doubleValue == (v["x"] as! Double))
        }
    }

    @Test(arguments: [
        "", "{", "}", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity", "tru", "nul",
        "\"abc", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "{\"a\" 1}", "{1:2}", "[1 2]", "{} {}", "{\"a\":1,\"a\":2}", "1e999",
    ])
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: (any Error).self, "\(text.debugDescription)") { try parse(text) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: (any Error).self) { try JSONValue.parse(Data([0x22, 0xC3, 0x28, 0x22])) }
        #expect(throws: (any Error).self) { try JSONValue.parse(Data([0x22, 0xFF, 0x22])) }
        #expect(throws: (any Error).self) { try parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect((try? parse(String(repeating: "[", count: 500) + String(repeating: "]", count: 500))) != nil)
    }

    @Test func errorsSayWhere() {
        do {
            _ = try parse(#"{"a": [1, 2,]}"#)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "unexpected character ']', expected a value at byte 12")
        }
    }

    @Test func codableConformanceRoundTrips() throws {
        let value: JSONValue = ["a": [1, -2, 2.5, "s", true, nil], "big": .uint(.max), "o": ["k": "v"]]
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
        #expect(try JSONValue.parse(data) == value)
    }

    @Test func canonicalTextRoundTrips() throws {
        let value: JSONValue = ["b": [1, 2.5, "x\u{1}\"", nil, true], "a": ["z": .uint(.max)]]
        let compact = value.jsonText()
        #expect(compact == #"{"a":{"z":18446744073709551615},"b":[1,2.5,"x\u0001\"",null,true]}"#)
        #expect(try parse(compact) == value)
        #expect(try parse(value.jsonText(pretty: true)) == value)
    }
}
