import Archive
import ArgumentParser
import BamboProtocol
import Coordinator
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole study on this machine: a coordinator and workers on loopback over the tiny demo family, then the Pareto front.",
        discussion: """
        Writes OUT/study.yaml (the tiny Thinking/Instruct family of cluster/demo, 6 layers in 3 blocks, \
        the multiply and choice benchmarks, greedy decoding), starts `bambo coordinator` and --workers \
        `bambo worker` processes on 127.0.0.1 (logs in OUT/logs/), follows the study's events until the \
        budget is spent, then prints the Pareto front and writes OUT/study.db (the archive) and \
        OUT/front.json (`bambo export --format json`) and OUT/report.html (`bambo export --format html`).

        --baselines (default grid) adds comparison strategies to the same archive: grid = model-level \
        merges (linear and TIES at α = 0.1, 0.3, …, 0.9, or 0.5 alone below budget 16; paper §4.3), layerwise = \
        one block per layer with the same budget as the block-wise search. `none` runs bambo alone.

        --budget N is the number of evaluations: a warm start of about N/4 trials (at least the 3 \
        anchors x = 0, x = 1, x = ½, the rest Sobol points), then qEHVI batches of 4; the remainder of \
        N/4 goes to the warm start. --seed sets the optimizer's seed (default 0), e.g. to repeat a \
        comparison of strategies over several seeds.

        The workers' inference server needs a Python environment with torch (CPU) and \
        transformers[serving]: `bash cluster/python-env.sh` makes it and prints its python \
        (pass it as --python or BAMBO_PYTHON).

        Ctrl-C (or SIGTERM) stops the coordinator, the workers and their servers; the archive is kept \
        and the same command resumes it. A child that dies unexpectedly stops the demo with the tail of \
        its log.

        Examples:
          bambo demo --out demo-out
          bambo demo --out /tmp/d --budget 8 --python ~/.cache/bambo/venv-*/bin/python
        """)

    enum Backend: String, ExpressibleByArgument, CaseIterable { case transformers, vllm }

    /// The coordinator's heartbeat (s); workers are lost after 3 silent beats. qEHVI proposals run
    /// off the coordinator's loop, so its beats keep their pace while one is computed.
    static let heartbeat = 1

    @Option(help: ArgumentHelp("Output directory (created; an existing study.db in it is resumed).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Evaluations of the block-wise study (≥ 3).", valueName: "n"))
    var budget: Int = 32

    @Option(help: ArgumentHelp("Comparison strategies in the same archive: grid, layerwise, both (grid,layerwise) or none.", valueName: "list"))
    var baselines: String = "grid"

    @Option(help: ArgumentHelp("The optimizer's seed (Sobol warm start, qEHVI) written into study.yaml.", valueName: "n"))
    var seed: Int = 0

    @Option(help: "Workers to start (1–8).")
    var workers: Int = 2

    @Option(help: "The workers' inference backend: transformers (transformers serve, loads each merge by path) or vllm (vLLM's CPU build, one restart per trial).")
    var backend: Backend = .transformers

    @Option(help: ArgumentHelp("The demo family: a directory with base/, instruct/ and thinking/ (default: cluster/demo/family above the current directory or this executable).", valueName: "dir"))
    var family: String?

    @Option(help: ArgumentHelp("The benchmark directory with multiply.jsonl and choice.jsonl (default: bench/ beside the family).", valueName: "dir"))
    var bench: String?

    @Option(help: ArgumentHelp("Python of the inference server's environment (default: $BAMBO_PYTHON).", valueName: "path"))
    var python: String?

    func validate() throws {
        guard budget >= DemoStudy.minimumBudget else {
            throw ValidationError("--budget must be at least \(DemoStudy.minimumBudget) (the warm start's anchors x = 0, x = 1, x = ½), got \(budget)")
        }
        guard seed >= 0 else { throw ValidationError("--seed must be at least 0, got \(seed)") }
        guard (1...8).contains(workers) else { throw ValidationError("--workers must be between 1 and 8, got \(workers)") }
        _ = try parsedBaselines()
    }

    /// `--baselines` as strategies (`none` is empty).
    func parsedBaselines() throws -> [DemoStudy.Baseline] {
        if baselines == "none" { return [] }
        var parsed: [DemoStudy.Baseline] = []
        for name in baselines.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let baseline = DemoStudy.Baseline(rawValue: name) else {
                throw ValidationError("--baselines: unknown strategy '\(name)'; expected grid, layerwise, a comma list of both, or none")
            }
            if !parsed.contains(baseline) { parsed.append(baseline) }
        }
        return parsed
    }

    func run() throws {
        let started = Date()
        let fileManager = FileManager.default
        let cwd = URL(fileURLWithPath: fileManager.currentDirectoryPath)
        let executable = URL(fileURLWithPath: MeasuredProcess.selfExecutable).resolvingSymlinksInPath()
        let outDirectory = URL(fileURLWithPath: out, relativeTo: cwd).standardizedFileURL
        let familyDirectory = try locateFamily(cwd: cwd, executable: executable)
        let benchDirectory = try locateBench(family: familyDirectory, cwd: cwd)
        let interpreter = try locatePython(cwd: cwd)

        let logs = outDirectory.appendingPathComponent("logs")
        try fileManager.createDirectory(at: logs, withIntermediateDirectories: true)
        let studyFile = outDirectory.appendingPathComponent("study.yaml")
        let archiveURL = outDirectory.appendingPathComponent("study.db")
        let eventsURL = EventLog.url(besideArchive: archiveURL)

        var resuming = false
        if fileManager.fileExists(atPath: archiveURL.path) {
            let (state, counts) = try Self.archiveState(archiveURL)
            if state == .finished {
                Terminal.error("demo: \(archiveURL.path) holds a finished study (\(counts.completed) completed, \(counts.failed) failed); showing its front")
                try finish(archive: archiveURL, out: outDirectory, started: started)
                return
            }
            resuming = true
            Terminal.error("demo: resuming the study in \(archiveURL.path) (\(counts.completed) completed so far; its stored settings win over --budget)")
        } else {
            let chosen = try parsedBaselines()
            let yaml = DemoStudy.yaml(family: familyDirectory, bench: benchDirectory, backend: backend.rawValue, budget: budget, baselines: chosen, seed: seed)
            try Data(yaml.utf8).write(to: studyFile, options: .atomic)
            // The real parser checks what was written, so a bad family or benchmark path fails here, clearly.
            do { _ = try StudyConfig.load(from: studyFile) } catch let error as StudyConfigError { throw ValidationError(error.description) }
            let plan = DemoStudy.plan(budget: budget)
            let extra = DemoStudy.baselineTrials(budget: budget, baselines: chosen)
            Terminal.error("demo: wrote \(studyFile.path): budget \(budget) = \(plan.initial) warm-start trials + \(plan.iterations) qEHVI batches of \(plan.batch)\(extra > 0 ? ", plus \(extra) baseline trials (\(chosen.map(\.rawValue).joined(separator: ", ")))" : "")")
        }
        Terminal.error("demo: family \(familyDirectory.path), benchmarks \(benchDirectory.path), python \(interpreter), logs in \(logs.path)")

        let stop = DemoStopFlag()
        signal(SIGPIPE, SIG_IGN)
        let sources = [SIGINT, SIGTERM, SIGHUP].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.set(number) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        // Every process the demo starts, and everything those start, carries this marker: the final
        // sweep finds whatever a crashed child left behind.
        let marker = (key: "BAMBO_DEMO_OUT", value: outDirectory.path)
        var environment = ProcessInfo.processInfo.environment
        environment[marker.key] = marker.value
        environment["BAMBO_PYTHON"] = interpreter
        if backend == .vllm {
            // vLLM's CPU build otherwise reserves most of the machine's memory for its KV cache and one
            // thread per core for each server (measured: 21 GiB of 23.5 and an unusable machine).
            for (key, value) in ["VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"] where environment[key] == nil {
                environment[key] = value
            }
        }
        var children: [DemoChild] = []
        func fail(_ message: String) -> Never {
            Terminal.error(message)
            Terminal.error("demo: stopping everything it started")
            DemoChild.stopAll(children, grace: 20, marker: marker)
            Terminal.error("demo: the archive \(archiveURL.path) is kept; run the same command again to resume")
            Foundation.exit(1)
        }
        func interrupted(_ number: Int32) -> Never {
            Terminal.error("\ndemo: \(number == SIGINT ? "interrupted" : "signal \(number)"): stopping the coordinator and the workers")
            DemoChild.stopAll(children, grace: 20, marker: marker)
            Terminal.error("demo: stopped; the archive \(archiveURL.path) is kept; run the same command again to resume")
            Foundation.exit(128 + number)
        }

        let progress = DemoProgress(archive: archiveURL, events: eventsURL, fromEnd: resuming, started: started)
        let coordinator = try DemoChild(
            name: "coordinator",
            arguments: [executable.path, "coordinator", "--study", studyFile.path, "--archive", archiveURL.path,
                        "--bind", "tcp://127.0.0.1:*", "--events", "none", "--heartbeat", String(Self.heartbeat),
                        "--parent-pid", String(getpid())],  // a demo killed outright takes its children along
            environment: environment, logFile: logs.appendingPathComponent("coordinator.log"))
        children.append(coordinator)
        Terminal.error("demo: coordinator pid \(coordinator.pid) (profiling and partitioning the family)")
        var endpoint: String?
        let listenDeadline = Date().addingTimeInterval(300)
        while endpoint == nil {
            if let number = stop.signal { interrupted(number) }
            if let end = coordinator.poll() {
                fail("demo: the coordinator \(end) before listening; last lines of \(coordinator.logFile.path):\n\(coordinator.logTail())")
            }
            if Date() > listenDeadline { fail("demo: the coordinator did not listen within 300 s; see \(coordinator.logFile.path)") }
            let log = coordinator.logText()
            if let range = log.range(of: #"listening on tcp://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                endpoint = String(log[range].dropFirst("listening on ".count))
            } else {
                usleep(50_000)
            }
        }
        for index in 1...workers {
            let name = "demo-w\(index)"
            do {
                let worker = try DemoChild(
                    name: "worker \(name)",
                    arguments: [executable.path, "worker", "--connect", endpoint!, "--name", name,
                                "--scratch", outDirectory.appendingPathComponent("scratch/\(name)").path,
                                "--python", interpreter, "--merge-threads", "1", "--parent-pid", String(getpid())],
                    environment: environment, logFile: logs.appendingPathComponent("\(name).log"))
                children.append(worker)
            } catch {
                fail("demo: \(error)")
            }
        }
        Terminal.error("demo: coordinator on \(endpoint!), \(workers) worker(s) started; following \(eventsURL.lastPathComponent)")

        var workerExitedAt: Date?
        let workersStarted = Date()
        while true {
            if let number = stop.signal { interrupted(number) }
            progress.drain()
            progress.tick()
            if let end = coordinator.poll() {
                progress.drain()
                guard end == .exited(0), (try? Self.archiveState(archiveURL).state) == .finished else {
                    fail("demo: the coordinator \(end) before the study finished; last lines of \(coordinator.logFile.path):\n\(coordinator.logTail())")
                }
                break
            }
            for worker in children.dropFirst() {
                guard let end = worker.poll() else { continue }
                // Exit 0 is the answer to SHUTDOWN at the budget, which races with the coordinator's own exit.
                guard end == .exited(0) else {
                    fail("demo: \(worker.name) \(end) unexpectedly; last lines of \(worker.logFile.path):\n\(worker.logTail())")
                }
                if workerExitedAt == nil { workerExitedAt = Date() }
            }
            if progress.workersJoined == 0 && Date().timeIntervalSince(workersStarted) > 180 {
                let tails = children.dropFirst().map { "\($0.logFile.path):\n\($0.logTail(lines: 5))" }.joined(separator: "\n")
                fail("demo: no worker joined the coordinator within 180 s; last lines of the worker logs:\n\(tails)")
            }
            if let workerExitedAt, Date().timeIntervalSince(workerExitedAt) > 60 {
                let gone = children.dropFirst().filter { !$0.isRunning }.map(\.name).joined(separator: ", ")
                fail("demo: \(gone) left but the study did not finish within 60 s; see the logs in \(logs.path)")
            }
            usleep(200_000)
        }
        // At the budget the coordinator sent SHUTDOWN: the workers exit (and stop their servers) by themselves.
        let deadline = Date().addingTimeInterval(30)
        while children.contains(where: \.isRunning) && Date() < deadline {
            if let number = stop.signal { interrupted(number) }
            usleep(100_000)
        }
        DemoChild.stopAll(children, grace: 20, marker: marker)
        for worker in children.dropFirst() where worker.poll() != .exited(0) {
            Terminal.error("demo: warning: \(worker.name) \(worker.poll().map(\.description) ?? "?") after the study finished; see \(worker.logFile.path)")
        }
        try finish(archive: archiveURL, out: outDirectory, started: started)
    }

    /// Prints the front and writes front.json and report.html.
    private func finish(archive: URL, out: URL, started: Date) throws {
        let store = try Archive.open(at: archive, options: .init(role: .shared, mode: .existing))
        let (table, summary) = try DemoFront.render(store)
        try? store.close()
        print(table, terminator: "")
        let front = out.appendingPathComponent("front.json")
        try ExportCommand.parse(["--archive", archive.path, "--format", "json", "--out", front.path]).run()
        let report = out.appendingPathComponent("report.html")
        try ExportCommand.parse(["--archive", archive.path, "--format", "html", "--out", report.path]).run()
        print("\(summary); wall time \(DemoProgress.clock(Date().timeIntervalSince(started)))")
        print("archive \(archive.path), front \(front.path), report \(report.path)")
    }

    static func archiveState(_ url: URL) throws -> (state: StudyState?, counts: TrialCounts) {
        let store = try Archive.open(at: url, options: .init(role: .shared, mode: .existing))
        defer { try? store.close() }
        return (try store.loadStudy()?.state, try store.counts())
    }

    private func locateFamily(cwd: URL, executable: URL) throws -> URL {
        if let family {
            let url = URL(fileURLWithPath: family, relativeTo: cwd).standardizedFileURL
            guard DemoStudy.isFamily(url) else {
                throw ValidationError("--family \(url.path): expected a directory with \(DemoStudy.modelNames.map { "\($0)/config.json" }.joined(separator: ", "))")
            }
            return url
        }
        let starts = [cwd, executable.deletingLastPathComponent()]
        guard let found = DemoStudy.findFamily(from: starts) else {
            throw ValidationError("""
                cannot find the demo family (\(DemoStudy.familyPath)/{\(DemoStudy.modelNames.joined(separator: ","))}) \
                above \(starts.map(\.path).joined(separator: " or ")); run from the BAMBO clone or pass --family DIR
                """)
        }
        return found
    }

    private func locateBench(family: URL, cwd: URL) throws -> URL {
        let url = bench.map { URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL }
            ?? family.deletingLastPathComponent().appendingPathComponent("bench")
        for name in DemoStudy.benchmarkFiles where !FileManager.default.fileExists(atPath: url.appendingPathComponent(name).path) {
            throw ValidationError("\(bench == nil ? "the benchmark directory beside the family" : "--bench") \(url.path): expected \(DemoStudy.benchmarkFiles.joined(separator: " and ")) in it, \(name) is missing")
        }
        return url
    }

    private func locatePython(cwd: URL) throws -> String {
        let given = python ?? ProcessInfo.processInfo.environment["BAMBO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
        guard let given else {
            throw ValidationError("""
                no Python for the inference server: pass --python PATH or set BAMBO_PYTHON. \
                `bash cluster/python-env.sh` builds the environment (torch CPU + transformers[serving], cached in ~/.cache/bambo) and prints its python
                """)
        }
        let path = given.contains("/")
            ? URL(fileURLWithPath: given, relativeTo: cwd).standardizedFileURL.path
            : (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/\(given)" }
                .first { FileManager.default.isExecutableFile(atPath: $0) } ?? given
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("\(python == nil ? "BAMBO_PYTHON" : "--python") \(path): not an executable file (make the environment with `bash cluster/python-env.sh`)")
        }
        return path
    }
}

/// The first terminating signal received.
final class DemoStopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var number: Int32?
    func set(_ signal: Int32) {
        lock.lock(); defer { lock.unlock() }
        if number == nil { number = signal }
    }
    var signal: Int32? { lock.lock(); defer { lock.unlock() }; return number }
}
