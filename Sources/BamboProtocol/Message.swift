import Foundation

/// Constants of the wire format (Protocol/README.md §2, §5, §8).
public enum WireFormat {
    /// Frame 0: protocol id and major version.
    public static let protocolID = "BAMBO/1"
    /// The protocol revision this codec implements (WELCOME `protocolVersion`).
    public static let revision = "1.0"
    /// Frame 0 may be at most this many bytes.
    public static let maxVersionFrameBytes = 16
    /// Frame 1 may be at most this many bytes.
    public static let maxTypeFrameBytes = 32
    /// Body limit for every message type but RESULT: 1 MiB.
    public static let maxBodyBytes = 1 << 20
    /// Body limit for RESULT (per-item records): 64 MiB.
    public static let maxResultBodyBytes = 64 << 20
    /// The largest frame either side accepts; use it for `ZMQ_MAXMSGSIZE`.
    public static let maxFrameBytes = maxResultBodyBytes
}

/// Who sends a message.
public enum Peer: String, Sendable, Hashable, CaseIterable {
    case worker
    case coordinator
}

/// Frame 1: the message type.
public enum MessageType: String, Sendable, Hashable, CaseIterable {
    case ready = "READY"
    case heartbeat = "HEARTBEAT"
    case progress = "PROGRESS"
    case result = "RESULT"
    case failure = "FAILURE"
    case bye = "BYE"
    case welcome = "WELCOME"
    case task = "TASK"
    case cancel = "CANCEL"
    case ack = "ACK"
    case shutdown = "SHUTDOWN"
    case error = "ERROR"

    /// Whether `sender` may send this type (HEARTBEAT goes both ways).
    public func isSent(by sender: Peer) -> Bool {
        switch self {
        case .heartbeat: return true
        case .ready, .progress, .result, .failure, .bye: return sender == .worker
        case .welcome, .task, .cancel, .ack, .shutdown, .error: return sender == .coordinator
        }
    }

    /// The body size limit in bytes.
    public var maxBodyBytes: Int {
        self == .result ? WireFormat.maxResultBodyBytes : WireFormat.maxBodyBytes
    }
}

/// One BAMBO/1 message with its typed body.
public enum Message: Sendable, Hashable {
    // worker → coordinator
    case ready(ReadyBody)
    case workerHeartbeat(WorkerHeartbeatBody)
    case progress(ProgressBody)
    case result(ResultBody)
    case failure(FailureBody)
    case bye(ByeBody)
    // coordinator → worker
    case welcome(WelcomeBody)
    case task(TaskBody)
    case coordinatorHeartbeat
    case cancel(CancelBody)
    case ack(AckBody)
    case shutdown(ShutdownBody)
    case error(ErrorBody)

    /// Frame 1 of this message.
    public var type: MessageType {
        switch self {
        case .ready: .ready
        case .workerHeartbeat, .coordinatorHeartbeat: .heartbeat
        case .progress: .progress
        case .result: .result
        case .failure: .failure
        case .bye: .bye
        case .welcome: .welcome
        case .task: .task
        case .cancel: .cancel
        case .ack: .ack
        case .shutdown: .shutdown
        case .error: .error
        }
    }

    /// Who sends this message.
    public var sender: Peer {
        switch self {
        case .ready, .workerHeartbeat, .progress, .result, .failure, .bye: .worker
        case .welcome, .task, .coordinatorHeartbeat, .cancel, .ack, .shutdown, .error: .coordinator
        }
    }

    /// The attempt this message is about, for PROGRESS, RESULT, FAILURE, TASK, CANCEL and ACK.
    public var attempt: AttemptRef? {
        switch self {
        case .progress(let body): AttemptRef(trial: body.trial, attempt: body.attempt)
        case .result(let body): AttemptRef(trial: body.trial, attempt: body.attempt)
        case .failure(let body): AttemptRef(trial: body.trial, attempt: body.attempt)
        case .task(let body): AttemptRef(trial: body.trial, attempt: body.attempt)
        case .cancel(let body): AttemptRef(trial: body.trial, attempt: body.attempt)
        case .ack(let body): AttemptRef(trial: body.trial, attempt: body.attempt)
        default: nil
        }
    }
}
