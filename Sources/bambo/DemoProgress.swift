import Archive
import BamboProtocol
import Coordinator
import Foundation

/// What `bambo demo` shows while the study runs: each event of the JSONL log as a line
/// (`EventFormatter`, the format of `bambo log`) and a status line — trials done of the budget,
/// running, front size, elapsed — after every finished trial and at least every 15 s.
final class DemoProgress {
    private let archive: URL
    private let events: URL
    private let started: Date
    private let color = Terminal.stderrIsTerminal
    private var handle: FileHandle?
    /// Where the new events start in the file (its size when a resumed study began).
    private let startOffset: UInt64
    private var buffer = Data()
    private var statusDue = false
    private var lastStatus = Date()
    /// `worker.joined` events seen (a worker that cannot reach the coordinator never joins).
    private(set) var workersJoined = 0
    /// Events too frequent or too internal for the demo's screen (they stay in the log).
    static let quiet: Set<String> = ["trial.progress", "objectives.updated", "worker.heartbeat"]

    /// `fromEnd`: skip the events already in the file (a resumed study); make it before the coordinator starts.
    init(archive: URL, events: URL, fromEnd: Bool, started: Date) {
        self.archive = archive
        self.events = events
        startOffset = fromEnd ? ((try? FileManager.default.attributesOfItem(atPath: events.path))?[.size] as? NSNumber)?.uint64Value ?? 0 : 0
        self.started = started
    }

    /// Prints the events appended since the last call.
    func drain() {
        if handle == nil {
            guard let opened = FileHandle(forReadingAtPath: events.path) else { return }
            try? opened.seek(toOffset: startOffset)
            handle = opened
        }
        guard let handle else { return }
        let chunk = handle.availableData
        guard !chunk.isEmpty else { return }
        buffer.append(chunk)
        var start = buffer.startIndex
        defer { buffer = Data(buffer[start...]) }  // one copy per chunk, not per line
        while let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer[start..<newline]
            start = buffer.index(after: newline)
            guard let event = try? EventRecord(jsonLine: Data(line)) else { continue }
            if event.kind == "worker.joined" { workersJoined += 1 }
            if ["trial.completed", "trial.failed", "study.state"].contains(event.kind) { statusDue = true }
            guard !Self.quiet.contains(event.kind) else { continue }
            Terminal.error(EventFormatter.line(event, color: color))
        }
    }

    /// Prints the status line when a trial finished or 15 s passed.
    func tick() {
        guard statusDue || Date().timeIntervalSince(lastStatus) >= 15 else { return }
        statusDue = false
        lastStatus = Date()
        Terminal.error(statusLine())
    }

    func statusLine() -> String {
        let elapsed = Self.clock(Date().timeIntervalSince(started))
        guard let store = try? Archive.open(at: archive, options: .init(role: .shared, mode: .existing)) else {
            return "[\(elapsed)] starting"
        }
        defer { try? store.close() }
        guard let record = try? store.loadStudy(), let config = try? record.decodeConfig(as: StudyConfig.self),
              let counts = try? store.counts() else { return "[\(elapsed)] starting" }
        let report = try? StudyReport.make(archive: store, objectiveNames: config.objectives.map(\.name))
        let front = report.map { String($0.trials.filter(\.pareto).count) } ?? "?"
        let hypervolume = report.map { String(format: "%.3f", $0.hypervolume) } ?? "?"
        return "[\(elapsed)] \(counts.completed + counts.failed)/\(config.budget) trials done (\(counts.failed) failed), "
            + "\(counts.dispatched) running, front \(front) trials, hypervolume \(hypervolume)"
    }

    /// Seconds as m:ss (or h:mm:ss).
    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }
}

/// The Pareto front as a table for the terminal.
enum DemoFront {
    /// The table (one row per Pareto trial, best first objective first) and a one-line summary.
    static func render(_ store: Archive) throws -> (table: String, summary: String) {
        guard let record = try store.loadStudy() else { throw DemoError("\(store.url.path) holds no study") }
        let config = try record.decodeConfig(as: StudyConfig.self)
        let names = config.objectives.map(\.name)
        let report = try StudyReport.make(archive: store, objectiveNames: names)
        let front = report.trials.filter(\.pareto).sorted {
            ($0.objectives?[names[0]] ?? -.infinity, $1.trial) > ($1.objectives?[names[0]] ?? -.infinity, $0.trial)
        }
        let benchmarks = Set(report.trials.flatMap { $0.metrics.benchmarks.keys }).sorted()
        let strategies = Set(report.trials.map(\.strategy))
        var header = ["trial"] + (strategies.count > 1 ? ["strategy"] : []) + ["weights (emb, blocks…, head)"]
        header += benchmarks.flatMap { ["\($0) acc", "\($0) tok"] }
        header += names.enumerated().map { "f\($0.offset + 1) \($0.element)" }
        var rows = [header]
        for trial in front {
            var row = [String(trial.trial)] + (strategies.count > 1 ? [trial.strategy] : [])
            row.append(trial.weights.map { String(format: "%.2f", $0) }.joined(separator: " "))
            for benchmark in benchmarks {
                let metrics = trial.metrics.benchmarks[benchmark]
                row += [metrics.map { String(format: "%.3f", $0.accuracy) } ?? "–", metrics.map { String(format: "%.1f", $0.tokens) } ?? "–"]
            }
            row += names.map { name in trial.objectives?[name].map { String(format: "%.3f", $0) } ?? "–" }
            rows.append(row)
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var table = "Pareto front of study \(record.name) (\(front.count) of \(report.trials.count) evaluated trials):\n"
        for (index, row) in rows.enumerated() {
            table += row.enumerated().map { column, text in
                column == 0 || column >= row.count - names.count - 2 * benchmarks.count
                    ? String(repeating: " ", count: widths[column] - text.count) + text
                    : text + String(repeating: " ", count: widths[column] - text.count)
            }.joined(separator: "  ") + "\n"
            if index == 0 { table += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        let counts = try store.counts()
        let summary = "\(record.name): \(counts.completed) trials completed, \(counts.failed) failed; front \(front.count) trials, hypervolume "
            + String(format: "%.4f", report.hypervolume)
        return (table, summary)
    }
}
