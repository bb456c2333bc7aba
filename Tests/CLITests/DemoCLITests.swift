import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `bambo demo` as a user runs it: the real binary starts a real coordinator, real workers and real
/// `transformers serve` processes from BAMBO_PYTHON (set by cluster/test.sh). Without BAMBO_PYTHON the
/// end-to-end tests are skipped, visibly — except under CI=true, where they fail instead.
@Suite(.serialized) struct DemoCLITests {
    static let python: String? = ProcessInfo.processInfo.environment["BAMBO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static let skipNote: Comment = "BAMBO_PYTHON is unset: the demo end-to-end tests are skipped. Run cluster/test.sh, or export BAMBO_PYTHON=$(bash cluster/python-env.sh)"
    /// The CI budget: 4 warm-start trials and one qEHVI batch of 4.
    static let budget = 8
    /// The grid baseline's trials at that budget: linear and TIES at α = 0.5.
    static let gridTrials = 2

    static var repositoryRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }

    /// Arguments that select the family: none when the committed family is in the clone (the demo
    /// finds it from the working directory, as a user's run does), else stand-ins made here.
    static func familyArguments(python: String, scratch: URL) throws -> [String] {
        let committed = repositoryRoot.appendingPathComponent("cluster/demo/family")
        if ["base", "instruct", "thinking"].allSatisfy({ FileManager.default.fileExists(atPath: committed.appendingPathComponent("\($0)/config.json").path) }),
           FileManager.default.fileExists(atPath: repositoryRoot.appendingPathComponent("cluster/demo/bench/choice.jsonl").path) {
            return []
        }
        let family = scratch.appendingPathComponent("demo/family")
        for (seed, name) in [(0, "base"), (1, "instruct"), (2, "thinking")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [repositoryRoot.appendingPathComponent("cluster/demo/tiny_qwen3.py").path, "random",
                                 "--out", family.appendingPathComponent(name).path, "--seed", String(seed)]
            process.environment = ProcessInfo.processInfo.environment.merging(["HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw DemoTestError("tiny_qwen3.py failed for \(name)") }
        }
        let bench = scratch.appendingPathComponent("demo/bench")
        try FileManager.default.createDirectory(at: bench, withIntermediateDirectories: true)
        let integer = (0..<12).map { i -> String in
            let (a, b) = (1000 + 731 * i, 2 + i % 8)
            return #"{"id": "m\#(i)", "question": "\#(a)*\#(b)=", "answer": "\#(a * b)", "kind": "integer"}"#
        }
        // The family's multiple-choice format (cluster/demo/family_tasks.py): the thousands digit of the
        // product, choices "0" … "9" in that order, the answer its letter.
        let digits = (0...9).map { "\"\($0)\"" }.joined(separator: ", ")
        let choice = (0..<6).map { i -> String in
            let (a, b) = (1200 + 517 * i, 3 + i % 7)
            let letter = String(UnicodeScalar(UInt8(65 + a * b / 1000 % 10)))
            return #"{"id": "c\#(i)", "question": "What is the thousands digit of \#(a)*\#(b)?", "answer": "\#(letter)", "kind": "multiple-choice", "choices": [\#(digits)]}"#
        }
        try (integer.joined(separator: "\n") + "\n").write(to: bench.appendingPathComponent("multiply.jsonl"), atomically: true, encoding: .utf8)
        try (choice.joined(separator: "\n") + "\n").write(to: bench.appendingPathComponent("choice.jsonl"), atomically: true, encoding: .utf8)
        return ["--family", family.path]
    }

    // MARK: bad input (no Python needed)

    @Test func aMissingFamilyIsNamedWithWhatWasExpected() throws {
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let run = try DemoProcess.run(["demo", "--out", scratch.appendingPathComponent("out").path,
                                       "--family", scratch.appendingPathComponent("nowhere").path, "--python", "/bin/sh"], in: scratch)
        #expect(run.status != 0)
        #expect(run.output.contains("--family \(scratch.appendingPathComponent("nowhere").path)"), "\(run.output)")
        #expect(run.output.contains("base/config.json, instruct/config.json, thinking/config.json"), "\(run.output)")
        #expect(!FileManager.default.fileExists(atPath: scratch.appendingPathComponent("out/study.db").path))
    }

    @Test func withoutPythonTheErrorPointsAtTheEnvironmentScript() throws {
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        // The family is found from the working directory (the clone) or given; Python is missing either way.
        let family = try Self.familyArgumentsWithoutPython(scratch: scratch)
        let run = try DemoProcess.run(["demo", "--out", scratch.appendingPathComponent("out").path] + family,
                                      in: Self.repositoryRoot, environment: ["BAMBO_PYTHON": ""])
        #expect(run.status != 0)
        #expect(run.output.contains("BAMBO_PYTHON") && run.output.contains("cluster/python-env.sh"), "\(run.output)")
    }

    @Test func aBudgetBelowTheAnchorsIsRefused() throws {
        let run = try DemoProcess.run(["demo", "--out", "/nonexistent/out", "--budget", "2"], in: Self.repositoryRoot)
        #expect(run.status != 0)
        #expect(run.output.contains("--budget must be at least 3"), "\(run.output)")
        let negative = try DemoProcess.run(["demo", "--out", "/nonexistent/out", "--seed=-1"], in: Self.repositoryRoot)
        #expect(negative.status != 0)
        #expect(negative.output.contains("--seed must be at least 0, got -1"), "\(negative.output)")
    }

    /// A family that only has to pass the look-up (config.json files), for the error tests.
    static func familyArgumentsWithoutPython(scratch: URL) throws -> [String] {
        let family = scratch.appendingPathComponent("fake/family")
        for name in ["base", "instruct", "thinking"] {
            try FileManager.default.createDirectory(at: family.appendingPathComponent(name), withIntermediateDirectories: true)
            try "{}".write(to: family.appendingPathComponent("\(name)/config.json"), atomically: true, encoding: .utf8)
        }
        let bench = scratch.appendingPathComponent("fake/bench")
        try FileManager.default.createDirectory(at: bench, withIntermediateDirectories: true)
        for name in ["multiply.jsonl", "choice.jsonl"] { try "".write(to: bench.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return ["--family", family.path]
    }

    // MARK: the real demo

    @Test(.enabled(if: python != nil || isCI, skipNote), .timeLimit(.minutes(15)))
    func theDemoRunsAStudyEndToEnd() throws {
        let python = try #require(Self.python, "CI=true but BAMBO_PYTHON is unset: the demo must run in CI")
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("demo-out")
        let family = try Self.familyArguments(python: python, scratch: scratch)
        let run = try DemoProcess.run(["demo", "--out", out.path, "--budget", String(Self.budget), "--seed", "7"] + family,
                                      in: Self.repositoryRoot, environment: ["BAMBO_PYTHON": python])
        #expect(run.status == 0, "\(run.output)\n\(Self.logs(out))")

        // The archive holds the whole budget and the grid baseline, finished.
        let total = Self.budget + Self.gridTrials
        let status = try Self.status(out)
        #expect(status.state == "finished" && status.completed == total && status.failed == 0, "\(status)")
        // front.json is the export's JSON: every trial with its strategy, a non-empty front with objectives.
        let front = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("front.json"))) as? [String: Any])
        let trials = try #require(front["trials"] as? [[String: Any]])
        #expect(trials.count == total)
        #expect(trials.filter { $0["strategy"] as? String == "bambo" }.count == Self.budget)
        #expect(Set(trials.filter { $0["strategy"] as? String == "grid" }.compactMap { $0["method"] as? String }) == ["linear", "ties"])
        let pareto = trials.filter { $0["pareto"] as? Bool == true }
        #expect(!pareto.isEmpty)
        #expect(pareto.allSatisfy { ($0["objectives"] as? [String: Double])?.keys.sorted() == ["efficiency", "reasoning"] })
        #expect(front["hypervolume"] is Double)
        // The HTML report is written beside it (its rendering is checked in StudyToolsTests).
        let report = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(report.contains("<svg") && report.contains("grid"))
        // Progress the whole time: events, status lines, then the table with one row per Pareto trial.
        #expect(run.output.contains("worker demo-w1 joined") && run.output.contains("worker demo-w2 joined"), "\(run.output)")
        #expect(run.output.contains("completed by demo-w"))
        #expect(run.output.contains("/\(total) trials done"))
        #expect(run.output.contains("Pareto front of study bambo-demo (\(pareto.count) of \(total) evaluated trials)"), "\(run.output)")
        let table = run.output.components(separatedBy: "Pareto front of study").last ?? ""
        let rowTrials = Set(table.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Int($0) } })
        #expect(rowTrials == Set(pareto.compactMap { $0["trial"] as? Int }), "\(table)")
        #expect(run.output.contains("multiply acc") && run.output.contains("choice tok"))
        // Nothing it started outlives it (a transformers server included).
        #expect(DemoProcess.processes(marking: out).isEmpty, "\(DemoProcess.processes(marking: out))")
        // The study file is the template's: budget = initial + iterations × batch.
        let yaml = try String(contentsOf: out.appendingPathComponent("study.yaml"), encoding: .utf8)
        #expect(yaml.contains("optimizer: {initial: 4, iterations: 1, batch: 4, acquisition: qehvi, seed: 7}"), "\(yaml)")
        #expect(yaml.contains("strategies: [bambo, grid]") && yaml.contains("grid: {methods: [linear, ties], alphas: [0.5]}"), "\(yaml)")
    }

    @Test(.enabled(if: python != nil || isCI, skipNote), .timeLimit(.minutes(15)))
    func sigintStopsEverythingAndTheSameCommandResumes() throws {
        let python = try #require(Self.python, "CI=true but BAMBO_PYTHON is unset: the demo must run in CI")
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("demo-out")
        let family = try Self.familyArguments(python: python, scratch: scratch)
        // 3 anchors + 1 Sobol point, plus the grid baseline's 2 trials: interrupted after the first,
        // resumed for the rest.
        let budget = 4
        let total = budget + Self.gridTrials
        let arguments = ["demo", "--out", out.path, "--budget", String(budget)] + family
        let demo = try DemoProcess(arguments, in: Self.repositoryRoot, environment: ["BAMBO_PYTHON": python])

        // Mid-run: a trial completed, so the coordinator, both workers and their servers are up.
        let deadline = Date().addingTimeInterval(240)
        while !demo.output.contains("completed by demo-w") && demo.process.isRunning && Date() < deadline { usleep(100_000) }
        try #require(demo.process.isRunning && demo.output.contains("completed by demo-w"), "\(demo.output)\n\(Self.logs(out))")
        let started = DemoProcess.processes(marking: out)
        let commands = started.map(DemoProcess.commandLine)
        #expect(started.count >= 4, "coordinator, 2 workers and a server at least, got \(commands)")
        #expect(commands.contains { $0.contains("transformers") && $0.contains("serve") }, "no transformers server among \(commands)")
        kill(demo.process.processIdentifier, SIGINT)
        let status = demo.wait(timeout: 90)
        #expect(status == 130, "\(demo.output)")
        #expect(demo.output.contains("run the same command again to resume"))
        #expect(DemoProcess.processes(marking: out).isEmpty, "left running: \(DemoProcess.processes(marking: out))")
        #expect(started.allSatisfy { kill($0, 0) != 0 }, "a process of the demo outlived it: \(started)")

        // The archive is intact and not finished; the same command finishes the study from it.
        let stopped = try Self.status(out)
        #expect(stopped.state == "running" && stopped.completed >= 1 && stopped.completed < total, "\(stopped)")
        let again = try DemoProcess.run(arguments, in: Self.repositoryRoot, environment: ["BAMBO_PYTHON": python])
        #expect(again.status == 0, "\(again.output)\n\(Self.logs(out))")
        #expect(again.output.contains("resuming the study"))
        let finished = try Self.status(out)
        #expect(finished.state == "finished" && finished.completed + finished.failed == total, "\(finished)")
        #expect(finished.completed >= stopped.completed)
        #expect(DemoProcess.processes(marking: out).isEmpty)
    }

    @Test(.enabled(if: python != nil || isCI, skipNote), .timeLimit(.minutes(15)))
    func aWorkerThatDiesStopsTheDemoWithItsLogAndLeavesNothingRunning() throws {
        let python = try #require(Self.python, "CI=true but BAMBO_PYTHON is unset: the demo must run in CI")
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("demo-out")
        let family = try Self.familyArguments(python: python, scratch: scratch)
        let demo = try DemoProcess(["demo", "--out", out.path, "--budget", "3"] + family, in: Self.repositoryRoot,
                                   environment: ["BAMBO_PYTHON": python])
        // Wait for a worker's inference server, then SIGKILL that worker: its server is orphaned.
        var server: pid_t?
        let deadline = Date().addingTimeInterval(240)
        while server == nil && demo.process.isRunning && Date() < deadline {
            server = DemoProcess.processes(marking: out).first {
                let command = DemoProcess.commandLine($0)
                return command.contains("transformers") && command.contains("serve")
            }
            if server == nil { usleep(100_000) }
        }
        let serverPID = try #require(server, "no transformers server appeared: \(demo.output)\n\(Self.logs(out))")
        let worker = DemoProcess.parent(of: serverPID)
        #expect(DemoProcess.commandLine(worker).contains(" worker "), "\(DemoProcess.commandLine(worker))")
        kill(worker, SIGKILL)

        let status = demo.wait(timeout: 120)
        #expect(status == 1, "\(demo.output)")
        #expect(demo.output.contains("killed by signal 9 unexpectedly; last lines of"), "\(demo.output)")
        #expect(demo.output.contains("worker demo-w"))
        #expect(DemoProcess.processes(marking: out).isEmpty, "left running: \(DemoProcess.processes(marking: out).map(DemoProcess.commandLine))")
        // The archive is kept for a later resume.
        #expect(try Self.status(out).state == "running")
    }

    /// `bambo demo` killed outright cannot stop what it started: its coordinator and workers watch it
    /// (`--parent-pid`) and stop as on SIGTERM, each worker taking its inference server along.
    @Test(.enabled(if: python != nil || isCI, skipNote), .timeLimit(.minutes(15)))
    func aDemoKilledWithSIGKILLLeavesNothingRunning() async throws {
        let python = try #require(Self.python, "CI=true but BAMBO_PYTHON is unset: the demo must run in CI")
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("demo-out")
        let family = try Self.familyArguments(python: python, scratch: scratch)
        let demo = try DemoProcess(["demo", "--out", out.path, "--budget", "3", "--baselines", "none"] + family, in: Self.repositoryRoot,
                                   environment: ["BAMBO_PYTHON": python])
        defer { for pid in DemoProcess.processes(marking: out) { kill(pid, SIGKILL) } }
        // Wait (a hang guard) for an inference server: then every kind of descendant is running.
        var server: pid_t?
        let deadline = ContinuousClock.now + .seconds(240)
        while server == nil && demo.process.isRunning && ContinuousClock.now < deadline {
            server = DemoProcess.processes(marking: out).first {
                let command = DemoProcess.commandLine($0)
                return command.contains("transformers") && command.contains("serve")
            }
            if server == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        _ = try #require(server, "no transformers server appeared: \(demo.output)\n\(Self.logs(out))")
        let started = DemoProcess.processes(marking: out).map(DemoProcess.commandLine)
        #expect(started.contains { $0.contains(" coordinator ") } && started.contains { $0.contains(" worker ") }, "\(started)")

        kill(demo.process.processIdentifier, SIGKILL)
        let gone = ContinuousClock.now + .seconds(180)
        while !DemoProcess.processes(marking: out).isEmpty && ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(200)) }
        let left = DemoProcess.processes(marking: out).map(DemoProcess.commandLine)
        #expect(left.isEmpty, "still running after the demo's SIGKILL: \(left)\n\(Self.logs(out))")
        for name in ["coordinator", "demo-w1", "demo-w2"] {
            let log = (try? String(contentsOf: out.appendingPathComponent("logs/\(name).log"), encoding: .utf8)) ?? ""
            #expect(log.contains("is gone (the parent is now"), "\(name): \(log.suffix(2000))")
        }
        // The archive is kept for a later resume.
        #expect(try Self.status(out).state == "running")
    }

    struct Status: CustomStringConvertible {
        var state: String, completed: Int, failed: Int
        var description: String { "state \(state), \(completed) completed, \(failed) failed" }
    }

    /// `bambo status --json` on the demo's archive.
    static func status(_ out: URL) throws -> Status {
        let run = try BamboProcess.run(["status", "--archive", out.appendingPathComponent("study.db").path, "--json"])
        guard run.status == 0, let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
              let trials = object["trials"] as? [String: Int], let state = object["state"] as? String
        else { throw DemoTestError("bambo status failed: \(run.stdout) \(run.stderr)") }
        return Status(state: state, completed: trials["completed"] ?? -1, failed: trials["failed"] ?? -1)
    }

    /// The tails of the demo's child logs, for failure messages.
    static func logs(_ out: URL) -> String {
        let directory = out.appendingPathComponent("logs")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        return names.map { name in
            let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
            return "--- \(name)\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

struct DemoTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `bambo demo` as a child process with stdout and stderr into one file.
final class DemoProcess {
    let process = Process()
    let outputFile: URL

    init(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws {
        outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-demo-output-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        process.executableURL = BamboProcess.executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let handle = try FileHandle(forWritingTo: outputFile)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: outputFile)
    }

    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    /// The exit status, or nil when it ran past `timeout` seconds: then it gets SIGINT, and 30 s later
    /// SIGKILL, and whatever it started is killed too (so a failing test leaves nothing running).
    func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGINT)
        let grace = Date().addingTimeInterval(30)
        while process.isRunning && Date() < grace { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        if let index = process.arguments?.firstIndex(of: "--out"), let out = process.arguments?[index + 1] {
            for pid in Self.processes(marking: URL(fileURLWithPath: out)) { kill(pid, SIGKILL) }
        }
        return nil
    }

    /// Runs to completion (at most 5 minutes); status and the combined output.
    static func run(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws -> (status: Int32?, output: String) {
        let demo = try DemoProcess(arguments, in: directory, environment: environment)
        let status = demo.wait(timeout: 300)
        return (status, demo.output)
    }

    /// The parent process id, from /proc (0 when unknown).
    static func parent(of pid: pid_t) -> pid_t {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) ?? 0 : 0
    }

    static func commandLine(_ pid: pid_t) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    /// Live processes whose environment holds BAMBO_DEMO_OUT=`out` — what the demo started, and what
    /// those started — read from /proc.
    static func processes(marking out: URL) -> [pid_t] {
        let entry = Data("BAMBO_DEMO_OUT=\(out.standardizedFileURL.path)".utf8)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let environment = FileManager.default.contents(atPath: "/proc/\(name)/environ"),
                  environment.split(separator: 0).contains(where: { Data($0) == entry }) else { return nil }
            let stat = (try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") { return nil }
            return pid
        }
    }
}
