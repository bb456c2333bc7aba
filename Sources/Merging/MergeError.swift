import Foundation

/// Why a merge cannot be done, with what was expected.
public struct MergeError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A method parameter is unknown, does not apply to the method, or is out of range.
        case invalidParameter(String)
        /// Block weights of the wrong count, out of range, or not summing to 1.
        case invalidWeights(String)
        /// The method needs a base model (`--base`) and none was given.
        case missingBase(MergeMethod)
        /// Too few models for the method.
        case tooFewModels(got: Int, needed: Int)
        /// The partition does not match the models' layers.
        case partitionMismatch(String)
        /// The output location cannot be used (exists, or its parent is missing).
        case invalidOutput(String)
        /// Any other invalid request (thread count, shard size…).
        case invalidRequest(String)
        /// Writing the output failed; nothing was left behind.
        case writeFailed(path: String, reason: String)
        /// The merge was cancelled (``MergeCancellation``); nothing was left behind.
        case cancelled
    }

    public var kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    public var description: String {
        switch kind {
        case let .invalidParameter(s): "merge parameter: \(s)"
        case let .invalidWeights(s): "block weights: \(s)"
        case let .missingBase(m): "method \(m.rawValue) works on task vectors M_i − base: give the base model (--base DIR)"
        case let .tooFewModels(got, needed): "got \(got) model\(got == 1 ? "" : "s"); expected at least \(needed)"
        case let .partitionMismatch(s): "partition: \(s)"
        case let .invalidOutput(s): "output: \(s)"
        case let .invalidRequest(s): "merge request: \(s)"
        case let .writeFailed(path, reason): "writing \(path) failed: \(reason); the partial output was removed"
        case .cancelled: "the merge was cancelled; the partial output was removed"
        }
    }
}
