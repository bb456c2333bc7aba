/// Why frames could not be decoded (or a message could not be encoded). Each case maps to one ERROR
/// code of the spec; `errorBody` is the ERROR the coordinator answers with.
public enum ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Frame 0 is not `BAMBO/1`; `received` is frame 0 as text (lossy, at most 16 bytes).
    case badVersion(received: String)
    /// Frame 1 is not a type that `sender` may send; `received` is frame 1 as text (lossy).
    case unknownType(received: String, sender: Peer)
    /// Not three frames, or the body is not a valid message of `type`. `field` is the path of the
    /// offending field (`capabilities.slots`, `models[1].path`); nil when the body as a whole is wrong.
    case malformed(type: MessageType?, field: String?, reason: String)
    /// Frame `frame` (0, 1 or 2) has `bytes` bytes, more than `limit`.
    case tooLarge(type: MessageType?, frame: Int, bytes: Int, limit: Int)

    /// The spec's error code for this error.
    public var code: ErrorCode {
        switch self {
        case .badVersion: .badVersion
        case .unknownType: .unknownType
        case .malformed: .malformed
        case .tooLarge: .tooLarge
        }
    }

    /// The message type concerned, when known.
    public var messageType: MessageType? {
        switch self {
        case .badVersion, .unknownType: nil
        case .malformed(let type, _, _), .tooLarge(let type, _, _, _): type
        }
    }

    public var description: String {
        switch self {
        case .badVersion(let received):
            return "frame 0: expected \"\(WireFormat.protocolID)\", got \"\(received)\""
        case .unknownType(let received, let sender):
            if let known = MessageType(rawValue: received) {
                return "frame 1: \(known.rawValue) is not a message a \(sender.rawValue) sends"
            }
            return "frame 1: unknown message type \"\(received)\""
        case .malformed(let type, let field, let reason):
            let prefix = type.map { "\($0.rawValue) " } ?? ""
            return "\(prefix)\(field ?? "body"): \(reason)"
        case .tooLarge(let type, let frame, let bytes, let limit):
            let what = type.map { " (\($0.rawValue))" } ?? ""
            return "frame \(frame)\(what): \(bytes) bytes, more than the limit of \(limit)"
        }
    }

    /// The ERROR body answering this error; `inReplyTo` names the offending type when known (for
    /// UNKNOWN_TYPE, the type received).
    public var errorBody: ErrorBody {
        var inReplyTo = messageType?.rawValue
        if case .unknownType(let received, _) = self, !received.isEmpty, received.utf8.count <= 32 {
            inReplyTo = received
        }
        return ErrorBody(code: code, message: description, inReplyTo: inReplyTo)
    }
}
