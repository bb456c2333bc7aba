/// An ERROR code (Protocol/README.md §5). Open: codes this revision does not know decode as
/// themselves and mean `INTERNAL` to a receiver.
public struct ErrorCode: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Frame 0 is not `BAMBO/1`.
    public static let badVersion = ErrorCode("BAD_VERSION")
    /// Wrong frame count, body not a UTF-8 JSON object, a missing or wrong-typed field, a broken rule.
    public static let malformed = ErrorCode("MALFORMED")
    /// A frame exceeds its size limit.
    public static let tooLarge = ErrorCode("TOO_LARGE")
    /// Frame 1 is not a message type this sender may send.
    public static let unknownType = ErrorCode("UNKNOWN_TYPE")
    /// A known message the sender's state does not allow.
    public static let outOfOrder = ErrorCode("OUT_OF_ORDER")
    /// Anything but READY from a routing id that is not registered.
    public static let unknownWorker = ErrorCode("UNKNOWN_WORKER")
    /// PROGRESS for an attempt that is not current for this worker.
    public static let staleAttempt = ErrorCode("STALE_ATTEMPT")
    /// The worker may not take tasks for this study.
    public static let unauthorized = ErrorCode("UNAUTHORIZED")
    /// The worker lacks what the study needs.
    public static let unsupported = ErrorCode("UNSUPPORTED")
    /// The coordinator is stopping.
    public static let shuttingDown = ErrorCode("SHUTTING_DOWN")
    /// The receiver failed for its own reasons.
    public static let `internal` = ErrorCode("INTERNAL")

    /// Every code defined by this revision.
    public static let known: [ErrorCode] = [
        .badVersion, .malformed, .tooLarge, .unknownType, .outOfOrder, .unknownWorker, .staleAttempt,
        .unauthorized, .unsupported, .shuttingDown, .internal,
    ]

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A FAILURE code (Protocol/README.md §4.1). Open like `ErrorCode`; an unknown code is treated as
/// `INTERNAL`, which counts against the trial. `CANCELLED`, `ABANDONED` and `BUSY` do not.
public struct FailureCode: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static let mergeFailed = FailureCode("MERGE_FAILED")
    /// The evaluator exited with a non-zero status.
    public static let evalFailed = FailureCode("EVAL_FAILED")
    public static let evalTimeout = FailureCode("EVAL_TIMEOUT")
    /// Evaluator output not the expected JSON, NaN, a missing benchmark.
    public static let badOutput = FailureCode("BAD_OUTPUT")
    /// The task's deadline passed.
    public static let deadline = FailureCode("DEADLINE")
    /// Out of disk, memory or GPU memory.
    public static let resource = FailureCode("RESOURCE")
    /// The task cannot be run on this worker.
    public static let badTask = FailureCode("BAD_TASK")
    public static let `internal` = FailureCode("INTERNAL")
    /// Reply to CANCEL; not the trial's fault.
    public static let cancelled = FailureCode("CANCELLED")
    /// The worker is shutting down; not the trial's fault.
    public static let abandoned = FailureCode("ABANDONED")
    /// The TASK arrived while every slot was taken (a coordinator bug); not the trial's fault.
    public static let busy = FailureCode("BUSY")

    /// Every code defined by this revision.
    public static let known: [FailureCode] = [
        .mergeFailed, .evalFailed, .evalTimeout, .badOutput, .deadline, .resource, .badTask, .internal,
        .cancelled, .abandoned, .busy,
    ]

    /// Whether a failure with this code counts toward the trial's failure limit (§7).
    public var countsAgainstTrial: Bool { self != .cancelled && self != .abandoned && self != .busy }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
