import Foundation
import Testing

@testable import BamboProtocol

/// The top-level `Protocol/` folder of the repository, found from this file's path.
let protocolFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // BamboProtocolTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // repository root
    .appendingPathComponent("Protocol")

/// Which message type and sender each example/schema name stands for.
let exampleKinds: [String: (type: MessageType, sender: Peer)] = [
    "ready": (.ready, .worker),
    "worker-heartbeat": (.heartbeat, .worker),
    "progress": (.progress, .worker),
    "result": (.result, .worker),
    "failure": (.failure, .worker),
    "bye": (.bye, .worker),
    "welcome": (.welcome, .coordinator),
    "task": (.task, .coordinator),
    "coordinator-heartbeat": (.heartbeat, .coordinator),
    "cancel": (.cancel, .coordinator),
    "ack": (.ack, .coordinator),
    "shutdown": (.shutdown, .coordinator),
    "error": (.error, .coordinator),
]

struct Example: CustomTestStringConvertible, Sendable {
    var file: String
    var schema: String
    var data: Data
    var testDescription: String { file }
}

/// Every golden example in Protocol/examples.
func goldenExamples() throws -> [Example] {
    let folder = protocolFolder.appendingPathComponent("examples")
    let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
    return try files.map { file in
        Example(
            file: file, schema: String(file.prefix { $0 != "." }),
            data: try Data(contentsOf: folder.appendingPathComponent(file)))
    }
}

/// The golden example `file` (e.g. "task.linear.json") as a JSON value.
func example(_ file: String) throws -> JSONValue {
    try JSONValue(json: Data(contentsOf: protocolFolder.appendingPathComponent("examples").appendingPathComponent(file)))
}

/// The three frames of a message of `type` with `body`.
func frames(_ type: String, _ body: Data, version: String = WireFormat.protocolID) -> [Data] {
    [Data(version.utf8), Data(type.utf8), body]
}

func jsonData(_ value: JSONValue) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return try encoder.encode(value)
}

extension JSONValue {
    /// A copy with the value at `path` (object keys and array indices) replaced, or removed when nil.
    func setting(_ path: [PathStep], to newValue: JSONValue?) -> JSONValue {
        guard let step = path.first else { return newValue ?? .null }
        let rest = Array(path.dropFirst())
        switch (self, step) {
        case (.object(var members), .key(let key)):
            if rest.isEmpty && newValue == nil {
                members.removeValue(forKey: key)
            } else {
                members[key] = (members[key] ?? .null).setting(rest, to: newValue)
            }
            return .object(members)
        case (.array(var values), .index(let index)):
            if rest.isEmpty && newValue == nil {
                values.remove(at: index)
            } else {
                values[index] = values[index].setting(rest, to: newValue)
            }
            return .array(values)
        default:
            fatalError("path step \(step) does not fit \(self)")
        }
    }
}

enum PathStep: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, Sendable {
    case key(String)
    case index(Int)
    init(stringLiteral value: String) { self = .key(value) }
    init(integerLiteral value: Int) { self = .index(value) }
}

/// Decodes `body` as a message of the example kind `schema`, expecting failure; returns the error.
func decodeError(_ schema: String, _ body: Data) -> ProtocolError? {
    let kind = exampleKinds[schema]!
    do {
        _ = try WireCodec.decode(frames: frames(kind.type.rawValue, body), from: kind.sender)
        return nil
    } catch {
        return error
    }
}
