import Archive
import ArgumentParser
import BamboProtocol
import Coordinator
import Foundation
import Merging
import Report
import ZeroMQ

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: FILE (secret, mode 0600) and FILE.pub (public, for the other side's allow-list or --curve-server-key).")

    @Option(help: ArgumentHelp("The secret key file to write; the public key goes to FILE.pub.", valueName: "file"))
    var out: String

    @Flag(help: "Replace existing files.")
    var force = false

    func run() throws {
        let pair = try CurveKeyPair.generate()
        try pair.write(toFile: out, overwrite: force)
        try pair.publicKey.write(toFile: out + ".pub", overwrite: force)
        print("wrote \(out) (secret) and \(out).pub (public key \(pair.publicKey.z85))")
    }
}

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Print a study's events for people: one line per event (colours on a terminal, plain when piped).",
        discussion: """
        bambo log --file study.events.jsonl            # what happened so far
        bambo log --follow --file study.events.jsonl   # and keep watching
        bambo log --connect tcp://HEAD:5556            # live, from the coordinator's PUB socket
        """)

    @Option(help: ArgumentHelp("The JSONL event file beside the archive.", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("The coordinator's event endpoint (always follows).", valueName: "endpoint"))
    var connect: String?

    @Flag(help: "Keep printing new events as they come.")
    var follow = false

    @Option(name: .customLong("curve-server-key"), help: ArgumentHelp("The coordinator's public key file, when it uses CURVE.", valueName: "file"))
    var curveServerKey: String?

    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("This client's secret key file (on the coordinator's allow-list).", valueName: "file"))
    var curveSecret: String?

    func validate() throws {
        guard (file == nil) != (connect == nil) else { throw ValidationError("pass exactly one of --file FILE or --connect ENDPOINT") }
    }

    func run() throws {
        let color = isatty(1) == 1
        // SIGINT/SIGTERM end a follow cleanly: what was printed is flushed, exit status 0.
        let stopSources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                fflush(nil)
                Foundation.exit(0)
            }
            source.resume()
            return source
        }
        defer { stopSources.forEach { $0.cancel() } }
        if let file {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty {
                    guard follow else { break }
                    Thread.sleep(forTimeInterval: 0.2)
                    continue
                }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    printLine(buffer[buffer.startIndex..<newline], color: color)
                    buffer = Data(buffer[buffer.index(after: newline)...])
                }
            }
        } else if let connect {
            let context = try Context()
            let socket = try Socket(context, type: .subscriber)
            if let curveServerKey, let curveSecret {
                try socket.makeCurveClient(keyPair: try CurveKeyPair(contentsOfFile: curveSecret), serverKey: try CurveKey(contentsOfFile: curveServerKey))
            }
            try socket.subscribe()
            try socket.connect(connect)
            while true {
                guard let frames = try socket.receive(timeout: .seconds(1)) else { continue }
                if let line = frames.first { printLine(line, color: color) }
            }
        }
    }

    private func printLine(_ line: Data, color: Bool) {
        guard let event = try? EventRecord(jsonLine: line) else { return }
        print(EventFormatter.line(event, color: color))
        fflush(nil)
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a study: workers seen, trials by state, the best points and the hypervolume.")

    @Option(help: ArgumentHelp("The study's archive.", valueName: "file"))
    var archive: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    struct Status: Codable {
        var study: String
        var state: String
        var budget: Int
        var trials: [String: Int]
        var workers: [Worker]
        var front: [StudyReport.Trial]
        var hypervolume: Double
        var strategies: [String: StudyReport.StrategySummary]
        struct Worker: Codable { var name: String; var state: String; var host: String?; var slots: Int?; var lastSeen: String }
    }

    func run() throws {
        let study = try LoadedStudy.open(archive)
        defer { study.close() }
        let (store, record, config, report) = (study.store, study.record, study.config, study.report)
        let counts = try store.counts()
        let status = Status(
            study: record.name, state: record.state.rawValue, budget: config.budget,
            trials: ["pending": counts.pending, "dispatched": counts.dispatched, "completed": counts.completed, "failed": counts.failed],
            workers: try store.workers().map {
                .init(name: $0.name, state: $0.state.rawValue, host: $0.host, slots: $0.capabilities?.slots, lastSeen: EventRecord.format($0.lastSeen))
            },
            front: report.trials.filter(\.pareto), hypervolume: report.hypervolume, strategies: report.strategies)
        if json {
            try printJSON(status)
            return
        }
        print("study \(status.study): \(status.state), \(counts.completed + counts.failed)/\(config.budget) trials done")
        print("trials: \(counts.pending) pending, \(counts.dispatched) dispatched, \(counts.completed) completed, \(counts.failed) failed")
        print("workers (\(status.workers.count)):")
        for worker in status.workers {
            print("  \(worker.name)  \(worker.state)  \(worker.host ?? "?")  slots \(worker.slots.map(String.init) ?? "?")  last seen \(worker.lastSeen)")
        }
        let names = config.objectives.map(\.name)
        for plan in config.plans {
            let summary = report.strategies[plan.strategy.rawValue]
            print("strategy \(plan.strategy.rawValue): \(summary?.trials ?? 0)/\(plan.budget) completed, \(summary?.pareto ?? 0) on the front, hypervolume \(String(format: "%.4f", summary?.hypervolume ?? 0))")
        }
        print("front (\(status.front.count) trials), hypervolume \(String(format: "%.4f", status.hypervolume)):")
        for trial in status.front {
            let objectives = names.map { name in "\(name) \(trial.objectives?[name].map { String(format: "%.3f", $0) } ?? "?")" }.joined(separator: ", ")
            let label = trial.strategy == StudyStrategy.grid.rawValue ? "grid \(trial.method ?? "?")" : trial.strategy
            print("  trial \(trial.trial) (\(label)): \(objectives)  x = [\(trial.weights.map { String(format: "%.2f", $0) }.joined(separator: ", "))]")
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a study's results: every trial as JSON or CSV, a mergekit YAML per Pareto model, or an HTML report.",
        discussion: """
        json      every evaluated trial (strategy, merge method, weights,
                  metrics, objectives, Pareto membership) and the
                  hypervolume; stdout unless --out FILE
        csv       the same, one row per trial
        mergekit  --out DIR: DIR/trial-N.yaml per Pareto model
                  (`mergekit-yaml FILE OUT` performs the same merge) and
                  DIR/index.json listing them
        html      a self-contained report (inline SVG, no network): the
                  front in objective space, tokens vs accuracy per
                  benchmark, hypervolume over evaluations per strategy,
                  the partition and a table of the Pareto models; stdout
                  unless --out FILE
        Hypervolumes use the reference point (0, …, 0) of the normalized \
        objectives (every objective's base model).
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case json, csv, mergekit, html }

    @Option(help: ArgumentHelp("The study's archive.", valueName: "file"))
    var archive: String

    @Option(help: "json, csv, mergekit or html.")
    var format: Format = .json

    @Option(help: ArgumentHelp("Write here instead of stdout (a directory for mergekit).", valueName: "path"))
    var out: String?

    func validate() throws {
        if format == .mergekit && out == nil { throw ValidationError("--format mergekit writes one file per model: give --out DIR") }
    }

    func run() throws {
        let study = try LoadedStudy.open(archive)
        defer { study.close() }
        let data: Data
        switch format {
        case .json: data = try study.report.jsonData() + Data("\n".utf8)
        case .csv: data = Data(study.report.csv(objectiveNames: study.objectiveNames).utf8)
        case .html: data = Data(try HTMLReport.render(try study.reportInput()).utf8)
        case .mergekit: return try writeMergekit(study, directory: URL(fileURLWithPath: out!))
        }
        if let out {
            try data.write(to: URL(fileURLWithPath: out), options: .atomic)
            Terminal.error("wrote \(out) (\(study.report.trials.count) trials)")
        } else {
            FileHandle.standardOutput.write(data)
        }
    }

    /// One entry of `index.json`.
    struct MergekitEntry: Codable {
        var trial: Int64
        var file: String
        var strategy: String
        var method: String
        var weights: [Double]
        var objectives: [String: Double]?
        var metrics: Metrics
    }

    func writeMergekit(_ study: LoadedStudy, directory: URL) throws {
        let front = study.front
        guard !front.isEmpty else { throw ValidationError("\(archive) has no Pareto-optimal trial with objectives yet: nothing to export") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var entries: [MergekitEntry] = []
        for trial in front {
            guard let record = try study.store.trial(trial.trial) else { throw ValidationError("\(archive): trial \(trial.trial) vanished") }
            let request = try study.mergeRequest(trial: record, output: directory.appendingPathComponent("unused"), threads: 1)
            let file = "trial-\(trial.trial).yaml"
            try MergekitExport.yaml(for: request).write(to: directory.appendingPathComponent(file), atomically: true, encoding: .utf8)
            entries.append(MergekitEntry(
                trial: trial.trial, file: file, strategy: trial.strategy, method: request.method.rawValue, weights: trial.weights,
                objectives: trial.objectives, metrics: trial.metrics))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        struct Index: Codable { var study: String; var models: [MergekitEntry] }
        try (encoder.encode(Index(study: study.record.name, models: entries)) + Data("\n".utf8))
            .write(to: directory.appendingPathComponent("index.json"), options: .atomic)
        print("wrote \(entries.count) mergekit configuration\(entries.count == 1 ? "" : "s") and index.json to \(directory.path)")
    }
}
