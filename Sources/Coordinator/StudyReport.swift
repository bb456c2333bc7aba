import Archive
import BamboProtocol
import Foundation
import Optimization

/// What `bambo status` and `bambo export` show: the evaluated trials with their metrics, normalized
/// objectives and Pareto membership, and the hypervolume of the front.
///
/// The hypervolume's reference point is the origin of the normalized objectives (every objective's
/// base model scores 0 on it, Eq. 2), so it measures how far the front reaches beyond the base
/// anchors; trials without objectives (the anchors not done yet) are not in the front.
public struct StudyReport: Codable, Sendable, Equatable {
    public struct Trial: Codable, Sendable, Equatable {
        public var trial: Int64
        public var weights: [Double]
        public var metrics: Metrics
        /// Normalized objectives by name; nil until both anchor trials are done.
        public var objectives: [String: Double]?
        public var pareto: Bool
        /// `bambo`, `layerwise` or `grid`.
        public var strategy: String
        /// The merge method the trial used (its own for `grid` trials, else the study's).
        public var method: String?
    }

    /// One strategy's share of the report.
    public struct StrategySummary: Codable, Sendable, Equatable {
        /// Completed trials of the strategy.
        public var trials: Int
        /// Of them, on the study's front (all strategies together).
        public var pareto: Int
        /// The hypervolume of the strategy's trials alone (same reference point).
        public var hypervolume: Double
    }

    public var trials: [Trial]
    /// The hypervolume of every strategy's trials together.
    public var hypervolume: Double
    /// Per strategy, by name.
    public var strategies: [String: StrategySummary]

    /// The hypervolume's reference point for `count` objectives: the origin (every base model's score).
    public static func referencePoint(objectives count: Int) -> [Double] { Array(repeating: 0, count: count) }

    /// The report of the completed trials in `archive` of the study `config` (objectives in its
    /// order, each trial's merge method from `config.mergeSpec(for:)`).
    public static func make(archive: Archive, config: StudyConfig) throws -> StudyReport {
        try make(archive: archive, objectiveNames: config.objectives.map(\.name)) { config.mergeSpec(for: $0).method }
    }

    /// The report of the completed trials in `archive`, with objectives in `objectiveNames` order;
    /// `method` names each trial's merge method (none when nil).
    public static func make(
        archive: Archive, objectiveNames: [String], method: ((TrialRecord) -> String)? = nil
    ) throws -> StudyReport {
        let completed = try archive.completedTrials()
        // The study's merge method, for trials without their own (archives of tests may hold another config).
        let studyMethod = (try archive.loadStudy()).flatMap { try? $0.decodeConfig(as: StudyConfig.self).merge.method }
        var points: [[Double]] = []
        var pointTrial: [Int] = []
        for (index, entry) in completed.enumerated() {
            guard let objectives = entry.result.objectives else { continue }
            let y = objectiveNames.compactMap { objectives[$0] }
            guard y.count == objectiveNames.count, !y.isEmpty, y.allSatisfy(\.isFinite) else { continue }
            points.append(y)
            pointTrial.append(index)
        }
        let front = Set(try Pareto.nonDominatedIndices(points, keepDuplicates: true).map { pointTrial[$0] })
        let reference = referencePoint(objectives: objectiveNames.count)
        let hypervolume = points.isEmpty ? 0 : try Hypervolume.compute(points, referencePoint: reference)
        let trials = completed.enumerated().map { index, entry in
            Trial(
                trial: entry.trial.id, weights: entry.trial.x, metrics: entry.result.metrics, objectives: entry.result.objectives,
                pareto: front.contains(index), strategy: entry.trial.strategy, method: method?(entry.trial) ?? entry.trial.merge?.method ?? studyMethod)
        }
        var strategies: [String: StrategySummary] = [:]
        for name in Set(trials.map(\.strategy)) {
            let own = points.indices.filter { completed[pointTrial[$0]].trial.strategy == name }.map { points[$0] }
            strategies[name] = StrategySummary(
                trials: trials.filter { $0.strategy == name }.count, pareto: trials.filter { $0.strategy == name && $0.pareto }.count,
                hypervolume: own.isEmpty ? 0 : try Hypervolume.compute(own, referencePoint: reference))
        }
        return StudyReport(trials: trials, hypervolume: hypervolume, strategies: strategies)
    }

    /// The report as JSON (keys sorted, pretty).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// The report as CSV: one row per trial; columns trial, strategy, method, pareto, w0…w(D−1), one per
    /// objective, then `<benchmark>.accuracy` and `<benchmark>.tokens` per benchmark.
    public func csv(objectiveNames: [String]) -> String {
        let dimension = trials.map(\.weights.count).max() ?? 0
        let benchmarks = Set(trials.flatMap { $0.metrics.benchmarks.keys }).sorted()
        var header = ["trial", "strategy", "method", "pareto"] + (0..<dimension).map { "w\($0)" } + objectiveNames
        header += benchmarks.flatMap { ["\($0).accuracy", "\($0).tokens"] }
        var lines = [header.map(Self.field).joined(separator: ",")]
        for trial in trials {
            var row = [String(trial.trial), trial.strategy, trial.method ?? "", trial.pareto ? "true" : "false"]
            row += (0..<dimension).map { $0 < trial.weights.count ? Self.number(trial.weights[$0]) : "" }
            row += objectiveNames.map { trial.objectives?[$0].map(Self.number) ?? "" }
            for benchmark in benchmarks {
                let metrics = trial.metrics.benchmarks[benchmark]
                row += [metrics.map { Self.number($0.accuracy) } ?? "", metrics.map { Self.number($0.tokens) } ?? ""]
            }
            lines.append(row.map(Self.field).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func number(_ value: Double) -> String { "\(value)" }

    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// One event as a line for people (`bambo log`, the coordinator's stderr).
public enum EventFormatter {
    /// `color`: ANSI colours (only on a terminal).
    public static func line(_ event: EventRecord, color: Bool) -> String {
        let time = EventRecord.format(event.time).dropFirst(11).prefix(12)  // HH:MM:SS.mmm
        let data = event.data
        func text(_ key: String) -> String {
            switch data[key] {
            case .string(let value)?: return value
            case .number(let value)?: return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.4g", value)
            case .bool(let value)?: return String(value)
            case nil, .null?: return "?"
            default: return "…"
            }
        }
        let (summary, tone): (String, Tone)
        switch event.kind {
        case "trial.added": (summary, tone) = ("trial \(text("trial")) added (\(text("origin")), batch \(text("batch")))", .plain)
        case "trial.dispatched": (summary, tone) = ("trial \(text("trial")) attempt \(text("attempt")) → \(text("worker"))", .plain)
        case "trial.progress":
            let done = data["done"]?.numberValue ?? 0, total = data["total"]?.numberValue ?? 0
            let bar = total > 0 ? " " + progressBar(done / total) : ""
            (summary, tone) = ("trial \(text("trial")) \(text("phase")) \(text("done"))/\(total > 0 ? text("total") : "?")\(bar) on \(text("worker"))", .dim)
        case "trial.completed":
            var metrics = ""
            if case .object(let all)? = data["metrics"], case .object(let benchmarks)? = all["benchmarks"] {
                metrics = benchmarks.keys.sorted().map { name -> String in
                    guard case .object(let values)? = benchmarks[name] else { return name }
                    let accuracy = values["accuracy"]?.numberValue.map { String(format: "%.3f", $0) } ?? "?"
                    let tokens = values["tokens"]?.numberValue.map { String(format: "%.0f", $0) } ?? "?"
                    return "\(name) acc \(accuracy) tok \(tokens)"
                }.joined(separator: ", ")
            }
            (summary, tone) = ("trial \(text("trial")) completed by \(text("worker")): \(metrics)", .good)
        case "attempt.failed": (summary, tone) = ("trial \(text("trial")) attempt \(text("attempt")) failed on \(text("worker")): \(text("code")) \(text("reason"))", .bad)
        case "attempt.expired", "attempt.abandoned":
            (summary, tone) = ("trial \(text("trial")) attempt \(text("attempt")) \(event.kind.dropFirst(8)) on \(text("worker")): \(text("reason"))", .warn)
        case "trial.requeued": (summary, tone) = ("trial \(text("trial")) requeued", .warn)
        case "trial.failed": (summary, tone) = ("trial \(text("trial")) FAILED (on 2 workers)", .bad)
        case "worker.joined": (summary, tone) = ("worker \(text("worker")) joined from \(text("host"))", .good)
        case "worker.lost", "worker.gone": (summary, tone) = ("worker \(text("worker")) \(event.kind.dropFirst(7)): \(text("reason"))", .warn)
        case "worker.refused": (summary, tone) = ("refused connection from \(text("address")) (key \(text("key")))", .bad)
        case "protocol.error": (summary, tone) = ("protocol error from \(text("worker")): \(text("code")) \(text("message"))", .bad)
        case "study.created": (summary, tone) = ("study \(text("name")) created", .plain)
        case "study.state": (summary, tone) = ("study \(text("state"))", .good)
        case "partition.saved": (summary, tone) = ("partition saved", .plain)
        case "objectives.updated": (summary, tone) = ("objectives updated", .dim)
        case "objectives.degenerate": (summary, tone) = ("objective \(text("objective")): \(text("reason"))", .warn)
        default: (summary, tone) = ("\(event.kind) \(compact(data))", .plain)
        }
        let body = "\(time) #\(event.seq) \(summary)"
        guard color else { return body }
        return tone.code + body + "\u{1B}[0m"
    }

    enum Tone {
        case plain, dim, good, warn, bad
        var code: String {
            switch self {
            case .plain: "\u{1B}[0m"
            case .dim: "\u{1B}[2m"
            case .good: "\u{1B}[32m"
            case .warn: "\u{1B}[33m"
            case .bad: "\u{1B}[31m"
            }
        }
    }

    /// A 20-cell bar for a fraction in [0, 1].
    public static func progressBar(_ fraction: Double) -> String {
        let cells = 20
        let filled = max(0, min(cells, Int((fraction * Double(cells)).rounded())))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: cells - filled) + "]"
    }

    static func compact(_ data: [String: JSONValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(data)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
