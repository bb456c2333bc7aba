import Foundation

/// Turns messages into the three frames of BAMBO/1 and back (Protocol/README.md §2–§5).
///
/// The frames are those a DEALER sends and receives; a ROUTER's identity frame is the socket
/// layer's business and never reaches the codec. JSON is written with sorted keys and no extra
/// whitespace, so equal messages encode to equal bytes.
public enum WireCodec {
    /// Encodes `message` as `[protocol id, type, body]`. Throws `.malformed` when the message breaks
    /// a rule of the spec (a peer would reject it) and `.tooLarge` when the body is over its limit.
    public static func encode(_ message: Message) throws(ProtocolError) -> [Data] {
        // The most frequent message (one per worker per interval) never changes: encoded once.
        if case .coordinatorHeartbeat = message { return coordinatorHeartbeatFrames }
        let type = message.type
        do {
            try message.validate()
        } catch {
            throw .malformed(type: type, field: error.field, reason: error.reason)
        }
        let body: Data
        do {
            body = try encodeBody(of: message)
        } catch {
            throw .malformed(type: type, field: nil, reason: "cannot be encoded as JSON: \(error)")
        }
        guard body.count <= type.maxBodyBytes else {
            throw .tooLarge(type: type, frame: 2, bytes: body.count, limit: type.maxBodyBytes)
        }
        return [Data(WireFormat.protocolID.utf8), Data(type.rawValue.utf8), body]
    }

    /// Decodes the frames of one message sent by `sender`. Checks, in order: the number of frames,
    /// the sizes of frames 0 and 1, the protocol id, the type (and that `sender` may send it), the
    /// body's size, JSON syntax, fields and types, and the spec's rules.
    public static func decode(frames: [Data], from sender: Peer) throws(ProtocolError) -> Message {
        guard frames.count == 3 else {
            throw .malformed(type: nil, field: nil, reason: "expected 3 frames (protocol id, type, body), got \(frames.count)")
        }
        let (versionFrame, typeFrame, body) = (frames[0], frames[1], frames[2])
        guard versionFrame.count <= WireFormat.maxVersionFrameBytes else {
            throw .tooLarge(type: nil, frame: 0, bytes: versionFrame.count, limit: WireFormat.maxVersionFrameBytes)
        }
        guard typeFrame.count <= WireFormat.maxTypeFrameBytes else {
            throw .tooLarge(type: nil, frame: 1, bytes: typeFrame.count, limit: WireFormat.maxTypeFrameBytes)
        }
        guard versionFrame == Data(WireFormat.protocolID.utf8) else {
            throw .badVersion(received: String(decoding: versionFrame, as: UTF8.self))
        }
        let typeName = String(decoding: typeFrame, as: UTF8.self)
        guard let type = MessageType(rawValue: typeName), type.isSent(by: sender) else {
            throw .unknownType(received: typeName, sender: sender)
        }
        return try decodeBody(body, type: type, from: sender)
    }

    /// Decodes frame 2 alone, for a `type` already read from frame 1 and sent by `sender`.
    public static func decodeBody(_ body: Data, type: MessageType, from sender: Peer) throws(ProtocolError) -> Message {
        guard type.isSent(by: sender) else {
            throw .unknownType(received: type.rawValue, sender: sender)
        }
        guard body.count <= type.maxBodyBytes else {
            throw .tooLarge(type: type, frame: 2, bytes: body.count, limit: type.maxBodyBytes)
        }
        guard body.first(where: { !isJSONWhitespace($0) }) == UInt8(ascii: "{") else {
            throw .malformed(type: type, field: nil, reason: "expected a JSON object")
        }
        let message: Message
        do {
            message = try parse(body, type: type, sender: sender)
        } catch let error as DecodingError {
            let (field, reason) = describe(error)
            throw .malformed(type: type, field: field, reason: reason)
        } catch {
            throw .malformed(type: type, field: nil, reason: "not valid JSON: \(error)")
        }
        do {
            try message.validate()
        } catch {
            throw .malformed(type: type, field: error.field, reason: error.reason)
        }
        return message
    }

    private static let coordinatorHeartbeatFrames: [Data] = [
        Data(WireFormat.protocolID.utf8), Data(MessageType.heartbeat.rawValue.utf8),
        (try? encoder.encode(CoordinatorHeartbeatBody())) ?? Data("{}".utf8),
    ]

    /// One encoder for every message (it holds only its settings).
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The JSON of a message's body (frame 2), keys sorted.
    public static func encodeBody(of message: Message) throws -> Data {
        switch message {
        case .ready(let body): return try encoder.encode(body)
        case .workerHeartbeat(let body): return try encoder.encode(body)
        case .progress(let body): return try encoder.encode(body)
        case .result(let body): return try encoder.encode(body)
        case .failure(let body): return try encoder.encode(body)
        case .bye(let body): return try encoder.encode(body)
        case .welcome(let body): return try encoder.encode(body)
        case .task(let body): return try encoder.encode(body)
        case .coordinatorHeartbeat: return try encoder.encode(CoordinatorHeartbeatBody())
        case .cancel(let body): return try encoder.encode(body)
        case .ack(let body): return try encoder.encode(body)
        case .shutdown(let body): return try encoder.encode(body)
        case .error(let body): return try encoder.encode(body)
        }
    }

    private static func parse(_ data: Data, type: MessageType, sender: Peer) throws -> Message {
        // Syntax first (errors without a path), then structure (errors naming the field).
        let body = try JSONValue(json: data)
        let decoder = JSONValueDecoder()
        switch type {
        case .ready: return .ready(try decoder.decode(ReadyBody.self, from: body))
        case .heartbeat:
            if sender == .worker {
                // The most frequent message (one per worker per interval): read directly when it is plainly
                // well formed, else through the decoder, which names what is wrong.
                if let plain = WorkerHeartbeatBody(plainlyWellFormed: body) { return .workerHeartbeat(plain) }
                return .workerHeartbeat(try decoder.decode(WorkerHeartbeatBody.self, from: body))
            }
            _ = try decoder.decode(CoordinatorHeartbeatBody.self, from: body)
            return .coordinatorHeartbeat
        case .progress: return .progress(try decoder.decode(ProgressBody.self, from: body))
        case .result: return .result(try decoder.decode(ResultBody.self, from: body))
        case .failure: return .failure(try decoder.decode(FailureBody.self, from: body))
        case .bye: return .bye(try decoder.decode(ByeBody.self, from: body))
        case .welcome: return .welcome(try decoder.decode(WelcomeBody.self, from: body))
        case .task: return .task(try decoder.decode(TaskBody.self, from: body))
        case .cancel: return .cancel(try decoder.decode(CancelBody.self, from: body))
        case .ack: return .ack(try decoder.decode(AckBody.self, from: body))
        case .shutdown: return .shutdown(try decoder.decode(ShutdownBody.self, from: body))
        case .error: return .error(try decoder.decode(ErrorBody.self, from: body))
        }
    }

    private static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}

/// The field path and a reason for a decoding error: `capabilities.slots`, `models[1].path`.
func describe(_ error: DecodingError) -> (field: String?, reason: String) {
    switch error {
    case .keyNotFound(let key, let context):
        return (path(context.codingPath + [key]), "missing required field")
    case .typeMismatch(let type, let context):
        return (path(context.codingPath), "expected \(jsonTypeName(type))\(found(in: context.debugDescription))")
    case .valueNotFound(let type, let context):
        return (path(context.codingPath), "expected \(jsonTypeName(type)), got null")
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty {
            let cause = context.underlyingError.map { ": \($0)" } ?? ""
            return (nil, "not valid UTF-8 JSON\(cause)")
        }
        return (path(context.codingPath), "invalid value (\(context.debugDescription))")
    @unknown default:
        return (nil, "\(error)")
    }
}

private func path(_ keys: [any CodingKey]) -> String? {
    var result = ""
    for key in keys {
        if let index = key.intValue {
            result += "[\(index)]"
        } else {
            result += result.isEmpty ? key.stringValue : "." + key.stringValue
        }
    }
    return result.isEmpty ? nil : result
}

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    case is String.Type: return "a string"
    case is Bool.Type: return "a boolean"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array") || name.hasPrefix("[") && !name.contains(":") { return "an array" }
        return "an object"
    }
}

/// ", found a string" from Foundation's "Expected to decode Int but found a string instead."
private func found(in description: String) -> String {
    guard let range = description.range(of: "but found ") else { return "" }
    var rest = description[range.upperBound...]
    if rest.hasSuffix(" instead.") { rest = rest.dropLast(" instead.".count) }
    return ", found " + rest
}

extension WorkerHeartbeatBody {
    /// The body when `json` is exactly `{"activeTrials": [{"trial": integer, "attempt": integer}, …]}` with
    /// no other key; nil for anything else (the caller then decodes it the general way, which reports the
    /// problem). Same result as the general decoder on every input it accepts.
    init?(plainlyWellFormed json: JSONValue) {
        guard case .object(let root) = json, root.count == 1, case .array(let entries)? = root["activeTrials"] else { return nil }
        var refs: [AttemptRef] = []
        refs.reserveCapacity(entries.count)
        for entry in entries {
            guard case .object(let fields) = entry, fields.count == 2,
                  case .number(let trial)? = fields["trial"], case .number(let attempt)? = fields["attempt"],
                  let trialValue = Self.exactInteger(trial), let attemptValue = Self.exactInteger(attempt)
            else { return nil }
            refs.append(AttemptRef(trial: trialValue, attempt: Int(attemptValue)))
        }
        self.init(activeTrials: refs)
    }

    /// `value` as an integer when it is one exactly and within ±2^53 (the protocol's integers).
    private static func exactInteger(_ value: Double) -> Int64? {
        guard value == value.rounded(.towardZero), abs(value) <= 9_007_199_254_740_992 else { return nil }
        return Int64(value)
    }
}
