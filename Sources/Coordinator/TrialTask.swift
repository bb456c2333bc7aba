import Archive
import BamboProtocol

/// How a stored trial is merged: one definition for the coordinator's TASK, `bambo materialize`,
/// `bambo export --format mergekit` and the merge method shown in exports and reports.
extension StudyConfig {
    /// The merge spec (method, dtype, parameters, seed) every trial of the study is merged with.
    public var mergeSpec: MergeSpec {
        MergeSpec(method: merge.method, dtype: merge.dtype, params: merge.params, seed: merge.seed)
    }

    /// The merge spec of `trial`: its own (grid trials vary the method) or else the study's.
    public func mergeSpec(for trial: TrialRecord) -> MergeSpec { trial.merge ?? mergeSpec }

    /// The TASK a worker gets for `attempt` of `trial`: over the trial's own partition (layer-wise
    /// and grid trials) or else the study's `partition`.
    public func task(for trial: TrialRecord, attempt: Int, partition: PartitionSpec) -> TaskBody {
        TaskBody(
            trial: trial.id, attempt: attempt, weights: trial.x, partition: trial.partition ?? partition, models: models, base: base,
            merge: mergeSpec(for: trial), evaluator: evaluator, deadline: nil)
    }
}
