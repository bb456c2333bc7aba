import BamboProtocol
import Foundation
import Merging

/// Merges the two models of a TASK into one checkpoint directory. The worker calls it on a
/// background thread; `EngineMerger` is the real one (the streaming `MergeEngine`).
public protocol TrialMerger: Sendable {
    /// Writes the merged checkpoint of `task` to `output` (which does not exist yet), reporting
    /// progress as units done of total (bytes of input read). Throws `BAD_TASK` for a task that
    /// cannot be merged here (missing model, unknown method, weights that do not fit),
    /// `RESOURCE` when out of disk, `MERGE_FAILED` otherwise. When `cancellation` is set it stops
    /// promptly, leaves nothing at `output` and throws `CANCELLED`.
    func merge(
        _ task: TaskBody, output: URL, cancellation: MergeCancellation,
        progress: @escaping @Sendable (_ done: Int64, _ total: Int64) -> Void
    ) throws(AttemptFailure)
}
