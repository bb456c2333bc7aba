import Archive
import ArgumentParser
import BamboProtocol
import Coordinator
import Foundation
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
        struct Worker: Codable { var name: String; var state: String; var host: String?; var slots: Int?; var lastSeen: String }
    }

    func run() throws {
        let store = try Archive.open(at: URL(fileURLWithPath: archive), options: .init(role: .shared, mode: .existing))
        defer { try? store.close() }
        guard let record = try store.loadStudy() else { throw ValidationError("\(archive) holds no study") }
        let config = try record.decodeConfig(as: StudyConfig.self)
        let counts = try store.counts()
        let report = try StudyReport.make(archive: store, objectiveNames: config.objectives.map(\.name))
        let status = Status(
            study: record.name, state: record.state.rawValue, budget: config.budget,
            trials: ["pending": counts.pending, "dispatched": counts.dispatched, "completed": counts.completed, "failed": counts.failed],
            workers: try store.workers().map {
                .init(name: $0.name, state: $0.state.rawValue, host: $0.host, slots: $0.capabilities?.slots, lastSeen: EventRecord.format($0.lastSeen))
            },
            front: report.trials.filter(\.pareto), hypervolume: report.hypervolume)
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
        print("front (\(status.front.count) trials), hypervolume \(String(format: "%.4f", status.hypervolume)):")
        for trial in status.front {
            let objectives = names.map { name in "\(name) \(trial.objectives?[name].map { String(format: "%.3f", $0) } ?? "?")" }.joined(separator: ", ")
            print("  trial \(trial.trial): \(objectives)  x = [\(trial.weights.map { String(format: "%.2f", $0) }.joined(separator: ", "))]")
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the evaluated trials (weights, metrics, objectives, Pareto membership) and the hypervolume as JSON or CSV.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case json, csv }

    @Option(help: ArgumentHelp("The study's archive.", valueName: "file"))
    var archive: String

    @Option(help: "json or csv.")
    var format: Format = .json

    @Option(help: ArgumentHelp("Write here instead of stdout.", valueName: "file"))
    var out: String?

    func run() throws {
        let store = try Archive.open(at: URL(fileURLWithPath: archive), options: .init(role: .shared, mode: .existing))
        defer { try? store.close() }
        guard let record = try store.loadStudy() else { throw ValidationError("\(archive) holds no study") }
        let names = try record.decodeConfig(as: StudyConfig.self).objectives.map(\.name)
        let report = try StudyReport.make(archive: store, objectiveNames: names)
        let data = format == .json ? try report.jsonData() + Data("\n".utf8) : Data(report.csv(objectiveNames: names).utf8)
        if let out {
            try data.write(to: URL(fileURLWithPath: out), options: .atomic)
            Terminal.error("wrote \(out) (\(report.trials.count) trials)")
        } else {
            FileHandle.standardOutput.write(data)
        }
    }
}
