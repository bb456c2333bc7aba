import Archive
import ArgumentParser
import BamboProtocol
import Coordinator
import Foundation
import Merging
import Report
import Worker

/// A study archive opened for reading by the study tools (`status`, `export`, `select`,
/// `materialize`): the study, its configuration and the report of its completed trials.
struct LoadedStudy {
    let path: String
    let store: Archive
    let record: StudyRecord
    let config: StudyConfig
    let report: StudyReport

    /// Opens `path` read-only-shared; a missing file or an archive without a study is a clear error.
    static func open(_ path: String) throws -> LoadedStudy {
        let store = try Archive.open(at: URL(fileURLWithPath: path), options: .init(role: .shared, mode: .existing))
        guard let record = try store.loadStudy() else {
            try? store.close()
            throw ValidationError("\(path) holds no study")
        }
        let config = try record.decodeConfig(as: StudyConfig.self)
        return LoadedStudy(path: path, store: store, record: record, config: config, report: try StudyReport.make(archive: store, config: config))
    }

    func close() { try? store.close() }

    var objectiveNames: [String] { config.objectives.map(\.name) }

    /// The stored partition (nil before the coordinator saved one).
    func partition() throws -> PartitionDocument? { try store.loadPartition(as: PartitionDocument.self) }

    /// A trial's objectives in `objectiveNames` order, or nil when any is missing.
    func objectiveVector(_ trial: StudyReport.Trial) -> [Double]? {
        let values = objectiveNames.compactMap { trial.objectives?[$0] }
        return values.count == objectiveNames.count ? values : nil
    }

    /// The Pareto-optimal trials that have every objective, by trial id.
    var front: [StudyReport.Trial] { report.trials.filter { $0.pareto && objectiveVector($0) != nil } }

    /// The merge request a worker would build for `trial` (same partition, weights, models, base and
    /// merge spec, through `EngineMerger`), writing to `output`.
    func mergeRequest(trial: TrialRecord, output: URL, threads: Int) throws -> MergeRequest {
        guard let partition = try partition() else {
            throw ValidationError("\(path) holds no partition yet (the coordinator stores it when the study starts)")
        }
        let task = config.task(for: trial, attempt: 1, partition: PartitionSpec(blocks: partition.blocks, layers: partition.layerCount))
        do {
            return try EngineMerger(threads: threads).request(for: task, output: output)
        } catch {
            throw ValidationError("trial \(trial.id) of \(path): \(error.reason)")
        }
    }

    /// The report's plain values.
    func reportInput() throws -> ReportInput {
        let partition = try partition().map {
            ReportPartition(
                layerDifferences: $0.layerDifferences, blocks: $0.blocks, norm: $0.norm.rawValue,
                embeddingDifference: $0.embeddingDifference, headDifference: $0.headDifference)
        }
        let trials = report.trials.map { trial in
            ReportTrial(
                id: trial.trial, strategy: trial.strategy, method: trial.method, weights: trial.weights,
                benchmarks: trial.metrics.benchmarks.mapValues { BenchmarkScore(accuracy: $0.accuracy, tokens: $0.tokens) },
                objectives: objectiveVector(trial), pareto: trial.pareto)
        }
        let notes = config.objectives.map {
            "\($0.metric.rawValue) summed over \($0.benchmarks.map { "the benchmark\($0.count == 1 ? "" : "s") \($0.joined(separator: ", "))" } ?? "the benchmarks"), expert \($0.expert), base \($0.base)"
        }
        return ReportInput(
            study: record.name, objectiveNames: objectiveNames, objectiveNotes: notes, trials: trials, partition: partition,
            referencePoint: StudyReport.referencePoint(objectives: objectiveNames.count))
    }
}
