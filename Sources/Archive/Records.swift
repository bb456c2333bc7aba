import BamboProtocol
import Foundation

// The values the archive stores and returns. Times are `Date`s passed in by the caller (the archive
// has no clock of its own); they are stored as Unix seconds.

/// The life of a study.
public enum StudyState: String, Codable, Sendable, Hashable, CaseIterable {
    /// Trials are being proposed and evaluated.
    case running
    /// The budget is spent; the front is final.
    case finished
}

/// The study stored in an archive (one study per archive).
public struct StudyRecord: Sendable, Hashable {
    public var name: String
    /// The study's configuration as JSON (keys sorted), as given to `createStudy`.
    public var config: Data
    public var created: Date
    public var state: StudyState

    /// The configuration decoded as `type`.
    public func decodeConfig<T: Decodable>(as type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: config)
    }
}

/// Where a trial's decision vector came from. Open: any label may be stored.
public struct TrialOrigin: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// A hand-picked warm-start point (expert corners, the balanced point).
    public static let warmStart = TrialOrigin("warm-start")
    public static let sobol = TrialOrigin("sobol")
    public static let qehvi = TrialOrigin("qehvi")
    public static let qnehvi = TrialOrigin("qnehvi")
    public static let grid = TrialOrigin("grid")
    public static let random = TrialOrigin("random")
    /// Added by a person.
    public static let manual = TrialOrigin("manual")

    public var description: String { rawValue }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The state of a trial (Protocol/README.md §7).
public enum TrialState: String, Codable, Sendable, Hashable, CaseIterable {
    /// Waiting for a worker (new, or requeued).
    case pending
    /// Its current attempt is out on a worker.
    case dispatched
    /// A result was accepted; final.
    case completed
    /// Failed on the failure limit of different workers; final, never proposed again.
    case failed
}

/// The state of one attempt (one dispatch of a trial).
public enum AttemptState: String, Codable, Sendable, Hashable, CaseIterable {
    /// Out on its worker, under a lease.
    case dispatched
    /// Its RESULT was accepted.
    case completed
    /// The worker sent FAILURE with a code that counts against the trial.
    case failed
    /// The lease passed or the worker was lost; counts against the trial.
    case expired
    /// Cancelled, or the worker left (FAILURE `CANCELLED`/`ABANDONED`, BYE); not the trial's fault.
    case abandoned

    /// Whether an attempt ending in this state counts toward the trial's failure limit.
    public var countsAgainstTrial: Bool { self == .failed || self == .expired }
}

/// Why one attempt of a failed trial failed.
public struct FailureReason: Codable, Sendable, Hashable {
    public var attempt: Int
    public var worker: String
    /// The FAILURE code, or `EXPIRED` for a lost lease.
    public var code: String
    public var reason: String
    public init(attempt: Int, worker: String, code: String, reason: String) {
        self.attempt = attempt
        self.worker = worker
        self.code = code
        self.reason = reason
    }
}

/// One trial: a decision vector to evaluate.
public struct TrialRecord: Sendable, Hashable {
    public var id: Int64
    /// Free-form label of the search configuration that produced the trial (e.g. the partition strategy).
    public var strategy: String
    /// The decision vector x (block weights).
    public var x: [Double]
    public var origin: TrialOrigin
    /// The proposal number: trials added by one `addTrials` call share it (1, 2, …).
    public var batch: Int
    public var state: TrialState
    public var created: Date
    /// When it reached `completed` or `failed`.
    public var finished: Date?
    /// For a failed trial: the attempts that counted against it.
    public var failureReasons: [FailureReason]
    /// The trial's own partition, when it differs from the study's (nil: the study's).
    public var partition: PartitionSpec? = nil
    /// The trial's own merge spec, when it differs from the study's (nil: the study's).
    public var merge: MergeSpec? = nil
}

/// One dispatch of a trial to a worker.
public struct AttemptRecord: Sendable, Hashable {
    public var trial: Int64
    /// 1, 2, … per trial.
    public var number: Int
    public var worker: String
    public var dispatched: Date
    public var leaseDeadline: Date
    public var state: AttemptState
    public var finished: Date?
    /// How it ended without a result: the FAILURE code, or `EXPIRED` (lease passed, worker lost),
    /// `WORKER_GONE` (the worker left with BYE), `DROPPED` (ended by the coordinator as abandoned).
    public var code: String?
    public var reason: String?
}

/// The accepted result of a trial.
public struct ResultRecord: Sendable, Hashable {
    public var id: Int64
    public var trial: Int64
    public var attempt: Int
    public var metrics: Metrics
    /// Normalized objectives (paper Eq. 2) by objective name; nil until the coordinator sets them.
    public var objectives: [String: Double]?
    public var durations: Durations
    public var received: Date
}

/// A completed trial with its result.
public struct CompletedTrial: Sendable, Hashable {
    public var trial: TrialRecord
    public var result: ResultRecord
}

/// The liveness of a worker as the coordinator last saw it.
public enum WorkerState: String, Codable, Sendable, Hashable, CaseIterable {
    /// Registered (READY) and heard from.
    case alive
    /// Silent past its lease; its attempts were requeued.
    case lost
    /// Left with BYE.
    case gone
}

/// A worker the coordinator has seen.
public struct WorkerRecord: Sendable, Hashable {
    public var name: String
    public var host: String?
    public var pid: Int?
    public var capabilities: Capabilities?
    public var firstSeen: Date
    public var lastSeen: Date
    public var state: WorkerState
}

/// How many trials are in each state.
public struct TrialCounts: Sendable, Hashable {
    public var pending = 0
    public var dispatched = 0
    public var completed = 0
    public var failed = 0
    public var total: Int { pending + dispatched + completed + failed }
    public init(pending: Int = 0, dispatched: Int = 0, completed: Int = 0, failed: Int = 0) {
        self.pending = pending
        self.dispatched = dispatched
        self.completed = completed
        self.failed = failed
    }
}

/// What `recordResult` made of a RESULT.
public enum ResultOutcome: Sendable, Hashable {
    /// Stored; the trial is completed.
    case accepted
    /// A result for this (trial, attempt) was stored before; nothing changed.
    case duplicate
    /// Not the trial's current attempt on that worker (late, expired, cancelled, completed by another
    /// attempt, or sent by another worker); nothing changed.
    case stale
    /// No such attempt was ever dispatched; nothing changed.
    case unknownAttempt

    /// The ACK outcome to answer the worker with.
    public var ack: AckOutcome {
        switch self {
        case .accepted: .accepted
        case .duplicate: .duplicate
        case .stale, .unknownAttempt: .stale
        }
    }
}

/// What `recordFailure` made of a FAILURE.
public enum FailureOutcome: Sendable, Hashable {
    /// The trial is pending again.
    case requeued
    /// The trial failed on the failure limit of different workers; final.
    case failed
    /// This attempt's FAILURE was recorded before; nothing changed.
    case duplicate
    /// Not the trial's current attempt on that worker; nothing changed.
    case stale
    /// No such attempt was ever dispatched; nothing changed.
    case unknownAttempt

    /// The ACK outcome to answer the worker with.
    public var ack: AckOutcome {
        switch self {
        case .requeued, .failed: .accepted
        case .duplicate: .duplicate
        case .stale, .unknownAttempt: .stale
        }
    }
}

/// An attempt that ended without a result because of its lease or its worker, and what became of
/// its trial (`pending` again, or `failed`).
public struct EndedAttempt: Sendable, Hashable {
    public var trial: Int64
    public var attempt: Int
    public var worker: String
    /// `expired` or `abandoned`.
    public var state: AttemptState
    /// `pending` (requeued) or `failed`.
    public var trialState: TrialState
}
