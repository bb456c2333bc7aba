import Foundation

/// One event of the coordinator's event stream (Protocol/README.md §9): a line of the JSONL file
/// beside the archive and a message on the PUB socket.
public struct EventRecord: Sendable, Hashable {
    /// The event's number in the archive: strictly increasing, never reused.
    public var seq: Int64
    /// When it happened (coordinator clock). Written with millisecond precision.
    public var time: Date
    /// What happened, e.g. `trial.dispatched`.
    public var kind: String
    /// Kind-specific fields.
    public var data: [String: JSONValue]

    public init(seq: Int64, time: Date, kind: String, data: [String: JSONValue] = [:]) {
        self.seq = seq
        self.time = time
        self.kind = kind
        self.data = data
    }

    /// The event as one line of JSON (keys sorted, no newline).
    public func jsonLine() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Parses one line written by `jsonLine()`.
    public init(jsonLine: Data) throws {
        self = try JSONDecoder().decode(EventRecord.self, from: jsonLine)
    }

    /// `time` as written: ISO 8601, UTC, milliseconds, e.g. `2026-11-23T09:12:03.250Z`.
    public static func format(_ time: Date) -> String {
        time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    /// Parses a time written by `format(_:)`.
    public static func parseTime(_ text: String) -> Date? {
        try? Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt).parse(text)
    }
}

extension EventRecord: Codable {
    private enum CodingKeys: String, CodingKey { case seq, time, kind, data }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seq = try container.decode(Int64.self, forKey: .seq)
        let text = try container.decode(String.self, forKey: .time)
        guard let time = EventRecord.parseTime(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: .time, in: container,
                debugDescription: "expected an ISO 8601 UTC time like 2026-11-23T09:12:03.250Z, got \"\(text)\"")
        }
        self.time = time
        kind = try container.decode(String.self, forKey: .kind)
        data = try container.decode([String: JSONValue].self, forKey: .data)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seq, forKey: .seq)
        try container.encode(EventRecord.format(time), forKey: .time)
        try container.encode(kind, forKey: .kind)
        try container.encode(data, forKey: .data)
    }
}
