import BamboProtocol
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `bambo worker` process.
final class WorkerProcess {
    let process = Process()
    let logFile: URL

    init(name: String, endpoint: String, directory: URL) throws {
        logFile = directory.appendingPathComponent("worker-\(name).log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        process.executableURL = Bambo.executable
        process.arguments = ["worker", "--connect", endpoint, "--name", name, "--scratch", directory.appendingPathComponent("scratch-\(name)").path]
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: logFile)
        try process.run()
    }

    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// The study of issue 5 with real processes end to end: `bambo coordinator` proposing with qEHVI,
/// three `bambo worker` processes merging real checkpoints and running an `exec` evaluator, and one
/// worker killed with SIGKILL in the middle of a task.
@Suite("study end to end: coordinator + real workers")
struct StudyEndToEndTests {
    @Test("3 workers, one killed -9 mid-task: its trial is requeued and finished elsewhere; exactly the budget, qEHVI proposals")
    func studyWithRealWorkers() throws {
        let fixture = try StudyFixture(initial: 5, iterations: 2, batch: 2, acquisition: "qehvi")
        // A deterministic black box with a trade-off: accuracy grows with the weights, tokens too.
        // It sleeps so that a task is still running when a worker is killed.
        let script = """
            import json, os, time
            w = json.loads(os.environ["BAMBO_WEIGHTS"])
            assert os.path.isfile(os.path.join(os.environ["BAMBO_MODEL_DIR"], "config.json"))
            time.sleep(0.6)
            m = sum(w) / len(w)
            late = sum(w[len(w) // 2:]) / len(w[len(w) // 2:])
            print(json.dumps({"benchmarks": {"arith": {"accuracy": 0.4 + 0.5 * late ** 0.5, "tokens": 5 + 40 * m * m}}}))
            """
        try script.write(to: fixture.directory.appendingPathComponent("eval.py"), atomically: true, encoding: .utf8)
        // Proposals run off the coordinator's loop; 5 beats of 0.2 s still let a loaded machine's
        // scheduler pause a process for a moment without losing a healthy worker.
        let coordinator = try CoordinatorProcess(fixture: fixture, extra: ["--lease-beats", "5"])
        let workers = try (1...3).map { try WorkerProcess(name: "w\($0)", endpoint: coordinator.endpoint, directory: fixture.directory) }

        // Kill w1 once it holds a dispatched trial that has not completed.
        let deadline = Date().addingTimeInterval(60)
        var killedTrial: Int64?
        while killedTrial == nil, Date() < deadline {
            let events = fixture.readEvents()
            let completed = Set(events.filter { $0.kind == "trial.completed" }.compactMap { $0.data["trial"]?.numberValue.map { Int($0) } })
            if let dispatched = events.last(where: { $0.kind == "trial.dispatched" && $0.data["worker"]?.stringValue == "w1" }),
               let trial = dispatched.data["trial"]?.numberValue.map { Int($0) }, !completed.contains(trial) {
                Thread.sleep(forTimeInterval: 0.3)  // inside its merge or evaluation
                kill(workers[0].process.processIdentifier, SIGKILL)
                killedTrial = Int64(trial)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let victim = try #require(killedTrial, "w1 never got a trial")

        #expect(coordinator.waitForExit(timeout: 180) == 0, "coordinator log:\n\(coordinator.log)")
        for worker in workers.dropFirst() { #expect(worker.waitForExit(timeout: 30) == 0) }

        let events = fixture.readEvents()
        let completions = events.filter { $0.kind == "trial.completed" }
        let completedTrials = completions.compactMap { $0.data["trial"]?.numberValue.map { Int($0) } }
        let failures = events.filter { $0.kind == "attempt.failed" || $0.kind == "trial.failed" || $0.kind == "worker.lost" }
        #expect(completedTrials.count == fixture.budget, "one completion per planned trial; \(failures.map { "\($0.kind) \($0.data)" }); coordinator log:\n\(coordinator.log)")
        #expect(Set(completedTrials).count == completedTrials.count, "no duplicate result")
        // The killed worker's trial was expired and completed by another worker.
        #expect(events.contains { $0.kind == "attempt.expired" && $0.data["trial"]?.numberValue.map { Int($0) } == Int(victim) })
        let finisher = completions.first { $0.data["trial"]?.numberValue.map { Int($0) } == Int(victim) }?.data["worker"]?.stringValue
        #expect(finisher != nil && finisher != "w1")
        // After the warm start, proposals came from the model-based acquisition.
        let origins = events.filter { $0.kind == "trial.added" }.compactMap { $0.data["origin"]?.stringValue }
        // Proposals made before two trials are scored continue the Sobol sequence (and say so).
        #expect(origins.count == fixture.budget && origins.filter { $0 == "qehvi" }.count >= 2, "origins: \(origins)")
        #expect(Array(origins.prefix(fixture.initial)) == ["warm-start", "warm-start", "warm-start", "sobol", "sobol"])

        // The export has every trial with normalized objectives and a front.
        let exported = try Bambo.run(["export", "--archive", fixture.archive.path, "--format", "json"], in: fixture.directory)
        #expect(exported.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(exported.stdout.utf8)) as? [String: Any])
        let trials = try #require(object["trials"] as? [[String: Any]])
        #expect(trials.count == fixture.budget)
        #expect(trials.allSatisfy { ($0["objectives"] as? [String: Double])?.count == 2 })
        #expect(trials.contains { $0["pareto"] as? Bool == true })
        #expect((object["hypervolume"] as? Double ?? 0) > 0)
        // Scratch directories of the surviving workers are clean.
        for name in ["w2", "w3"] {
            let scratch = fixture.directory.appendingPathComponent("scratch-\(name)").path
            let left = (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []
            #expect(left.filter { $0.hasPrefix("trial-") }.isEmpty, "\(name) left \(left)")
        }
    }

    @Test("real workers merge every strategy's trials: layer-wise partitions and each grid method on real checkpoints")
    func strategiesWithRealWorkers() throws {
        // bambo 3, layerwise 3, grid 5 methods × 1 α: 11 trials.
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 2, acquisition: "qehvi", extra: """
            base: {name: base, path: ckpt/base}
            strategies: [bambo, layerwise, grid]
            grid: {alphas: [0.5]}
            """)
        // The merged model must exist; the metrics depend on the weights.
        let script = """
            import json, os
            w = json.loads(os.environ["BAMBO_WEIGHTS"])
            assert os.path.isfile(os.path.join(os.environ["BAMBO_MODEL_DIR"], "config.json"))
            m = sum(w) / len(w)
            print(json.dumps({"benchmarks": {"arith": {"accuracy": 0.4 + 0.5 * m, "tokens": 5 + 40 * m * m}}}))
            """
        try script.write(to: fixture.directory.appendingPathComponent("eval.py"), atomically: true, encoding: .utf8)
        let coordinator = try CoordinatorProcess(fixture: fixture)
        let workers = try (1...2).map { try WorkerProcess(name: "w\($0)", endpoint: coordinator.endpoint, directory: fixture.directory) }
        #expect(coordinator.waitForExit(timeout: 180) == 0, "coordinator log:\n\(coordinator.log)")
        for worker in workers { #expect(worker.waitForExit(timeout: 30) == 0) }
        let events = fixture.readEvents()
        #expect(events.filter { $0.kind == "trial.completed" }.count == 11)
        #expect(!events.contains { $0.kind == "attempt.failed" }, "\(events.filter { $0.kind == "attempt.failed" }.map(\.data))")
        let added = events.filter { $0.kind == "trial.added" }
        let methods = added.filter { $0.data["strategy"] == .string("grid") }.compactMap { $0.data["merge"]?.objectValue?["method"]?.stringValue }
        #expect(methods == ["task_arithmetic", "ties", "dare_ties", "breadcrumbs", "della"])
        #expect(added.filter { $0.data["strategy"] == .string("layerwise") }.allSatisfy { event in
            if case .array(let x)? = event.data["x"] { return x.count == 6 }
            return false
        })
    }
}
