import Foundation

/// A JSON value with exact integers (`Int64`/`UInt64`, not through `Double`): what `JSONParser` produces.
/// Safetensors headers, shard indexes and `config.json` use it as is (SafeTensors calls it `JSONValue`);
/// `JSONValue` (numbers as `Double`) is converted from it.
public enum ExactJSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([ExactJSONValue])
    case object([String: ExactJSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Most frequent first (headers are mostly objects, strings and integers).
        if let o = try? container.decode([String: ExactJSONValue].self) { self = .object(o); return }
        if let s = try? container.decode(String.self) { self = .string(s); return }
        if let i = try? container.decode(Int64.self) { self = .int(i); return }
        if let a = try? container.decode([ExactJSONValue].self) { self = .array(a); return }
        if container.decodeNil() { self = .null; return }
        if let b = try? container.decode(Bool.self) { self = .bool(b); return }
        if let u = try? container.decode(UInt64.self) { self = .uint(u); return }
        if let d = try? container.decode(Double.self) { self = .double(d); return }
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(b): try container.encode(b)
        case let .int(i): try container.encode(i)
        case let .uint(u): try container.encode(u)
        case let .double(d): try container.encode(d)
        case let .string(s): try container.encode(s)
        case let .array(a): try container.encode(a)
        case let .object(o): try container.encode(o)
        }
    }

    /// Parses JSON text (strict RFC 8259; duplicate object keys rejected). The error's description
    /// says what was wrong and at which byte.
    public static func parse(_ data: Data) throws -> ExactJSONValue {
        try data.withUnsafeBytes { try JSONParser.parse($0) }
    }

    /// Parses JSON text from raw bytes without copying them.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> ExactJSONValue {
        try JSONParser.parse(bytes)
    }

    /// The value as a non-negative integer, if it is one exactly.
    public var nonNegativeInteger: UInt64? {
        switch self {
        case let .int(i): i >= 0 ? UInt64(i) : nil
        case let .uint(u): u
        default: nil
        }
    }

    /// The value as an `Int`, if it is an integer that fits.
    public var intValue: Int? {
        switch self {
        case let .int(i): Int(exactly: i)
        case let .uint(u): Int(exactly: u)
        case let .double(d): Int(exactly: d)
        default: nil
        }
    }

    /// The value as a `Double` (integers converted).
    public var doubleValue: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .uint(u): Double(u)
        case let .double(d): d
        default: nil
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [ExactJSONValue]? { if case let .array(a) = self { a } else { nil } }
    public var objectValue: [String: ExactJSONValue]? { if case let .object(o) = self { o } else { nil } }

    /// JSON text with object keys sorted by their UTF-8 bytes: compact, or pretty (two-space
    /// indentation, trailing newline) as `config.json` files are usually written. Deterministic.
    public func jsonText(pretty: Bool = false) -> String {
        var out = ""
        if pretty {
            CanonicalJSON.writePretty(self, into: &out, indent: 0)
            out += "\n"
        } else {
            CanonicalJSON.write(self, into: &out)
        }
        return out
    }

    /// Member of an object, or `nil`.
    public subscript(key: String) -> ExactJSONValue? { objectValue?[key] }
}

extension ExactJSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: ExactJSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, ExactJSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Deterministic compact JSON text: object keys sorted by their UTF-8 bytes, no whitespace.
public enum CanonicalJSON {
    public static func write(_ value: ExactJSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .uint(u): out += String(u)
        case let .double(d):
            // JSON has no NaN/Inf; integral values print without a fraction.
            if d.isFinite { out += d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)" } else { out += "null" }
        case let .string(s): writeString(s, into: &out)
        case let .array(a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                write(v, into: &out)
            }
            out += "]"
        case let .object(o):
            out += "{"
            for (i, key) in sortedKeys(o.keys).enumerated() {
                if i > 0 { out += "," }
                writeString(key, into: &out)
                out += ":"
                write(o[key]!, into: &out)
            }
            out += "}"
        }
    }

    public static func writePretty(_ value: ExactJSONValue, into out: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent)
        switch value {
        case let .object(o) where !o.isEmpty:
            out += "{\n"
            let keys = sortedKeys(o.keys)
            for (i, key) in keys.enumerated() {
                out += pad + "  "
                writeString(key, into: &out)
                out += ": "
                writePretty(o[key]!, into: &out, indent: indent + 1)
                out += i + 1 < keys.count ? ",\n" : "\n"
            }
            out += pad + "}"
        case let .array(a) where !a.isEmpty:
            out += "[\n"
            for (i, v) in a.enumerated() {
                out += pad + "  "
                writePretty(v, into: &out, indent: indent + 1)
                out += i + 1 < a.count ? ",\n" : "\n"
            }
            out += pad + "]"
        default:
            write(value, into: &out)
        }
    }

    public static func sortedKeys<C: Collection<String>>(_ keys: C) -> [String] {
        keys.sorted(by: utf8Precedes)
    }

    /// Byte-wise order of the UTF-8 encodings (memcmp on contiguous storage).
    public static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { pa in
            b.withUTF8 { pb in
                let n = min(pa.count, pb.count)
                let c = n == 0 ? 0 : memcmp(pa.baseAddress!, pb.baseAddress!, n)
                return c != 0 ? c < 0 : pa.count < pb.count
            }
        }
    }

    public static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
