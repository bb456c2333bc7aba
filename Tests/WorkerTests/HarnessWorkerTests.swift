import BamboProtocol
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The `harness` evaluator end to end: the built `bambo worker` merges two tiny random Qwen3 models
/// (cluster/demo/tiny_qwen3.py) and evaluates the merge with `transformers serve` from BAMBO_PYTHON
/// (set by cluster/test.sh; skipped, visibly, when unset).
@Suite(.serialized) struct HarnessWorkerTests {
    static let python: String? = ProcessInfo.processInfo.environment["BAMBO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

    /// Two tiny Qwen3 models (seeds 1, 2) and a 3-item integer benchmark, made once per run.
    static let fixture: Result<URL, Error> = Result {
        let interpreter = try #require(Self.python)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-harness-worker-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var script = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { script.deleteLastPathComponent() }
        script.appendPathComponent("cluster/demo/tiny_qwen3.py")
        for seed in [1, 2] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: interpreter)
            process.arguments = [script.path, "random", "--out", root.appendingPathComponent("tiny\(seed)").path, "--seed", String(seed)]
            process.environment = ProcessInfo.processInfo.environment.merging(["HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"]) { $1 }
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let text = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw TestFailure("tiny_qwen3.py failed: \(String(decoding: text, as: UTF8.self))") }
        }
        let items = [("a", "What is 2+3?", "5"), ("b", "What is 7-4?", "3"), ("c", "What is 6*7?", "42")]
        let lines = items.map { #"{"id": "\#($0.0)", "question": "\#($0.1)", "answer": "\#($0.2)", "kind": "integer"}"# }
        try (lines.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("arith.jsonl"), atomically: true, encoding: .utf8)
        return root
    }

    func task(_ trial: Int64, root: URL, weights: [Double]) -> TaskBody {
        TaskBody(
            trial: trial, attempt: 1, weights: weights, partition: PartitionSpec(blocks: [[0, 2], [3, 5]], layers: 6),
            models: [ModelRef(name: "one", path: root.appendingPathComponent("tiny1").path),
                     ModelRef(name: "two", path: root.appendingPathComponent("tiny2").path)],
            merge: MergeSpec(method: "linear", dtype: .float32),
            evaluator: ["kind": "harness", "backend": "transformers",
                        "benchmarks": [.string(root.appendingPathComponent("arith.jsonl").path)],
                        "sampling": ["temperature": 0, "max_tokens": 16], "samples": 1, "concurrency": 4, "request_timeout": 120])
    }

    @Test(.enabled(if: python != nil, "BAMBO_PYTHON is unset: the harness worker test is skipped. Run cluster/test.sh, or export BAMBO_PYTHON=$(bash cluster/python-env.sh)"),
          .timeLimit(.minutes(30)))
    func twoTasksAreEvaluatedOnOneTransformersServer() async throws {
        let root = try Self.fixture.get()
        // Heartbeats every 2 s, lease 15 beats: the worker must not take a loaded machine's pauses for a lost coordinator.
        let coordinator = try TestCoordinator(heartbeatInterval: 2)
        let scratch = root.appendingPathComponent("scratch-\(UUID().uuidString.prefix(8))")
        let worker = try WorkerProcess(["--connect", coordinator.endpoint, "--name", "h1", "--scratch", scratch.path, "--heartbeat", "0",
                                        "--merge-threads", "1", "--python", try #require(Self.python)], in: root)
        let ready = try #require(await coordinator.register(timeout: 300))
        #expect(ready.capabilities.evaluators.contains("harness"))

        var results: [ResultBody] = []
        for (trial, weights) in [(Int64(1), [0.2, 0.7, 0.4, 0.5]), (Int64(2), [0.9, 0.1, 0.6, 0.3])] {
            coordinator.send(.task(task(trial, root: root, weights: weights)), to: "h1")
            // Hang guards, not timing checks: a fresh `transformers serve` start on 2 shared cores is slow.
            let arrival = await coordinator.expect(.result, timeout: 300)
            guard let result = arrival?.message.resultBody else {
                let failure = coordinator.all.compactMap(\.message.failureBody).last
                Issue.record("no RESULT for trial \(trial); failure: \(String(describing: failure))\n\(worker.logText)")
                return
            }
            coordinator.send(.ack(AckBody(trial: trial, attempt: 1, outcome: .accepted)), to: "h1")
            results.append(result)
        }
        for result in results {
            let arith = try #require(result.metrics.benchmarks["arith"])
            #expect(arith.items == 3)
            #expect(arith.tokens > 0 && arith.tokens <= 16)
            #expect((0...1).contains(arith.accuracy))
            #expect(arith.number("samples") == 1)
            let records = try #require(result.items)
            #expect(records.map(\.id) == ["a", "b", "c"] && records.allSatisfy { $0.benchmark == "arith" && (1...16).contains($0.tokens) })
            #expect(abs(Double(records.map(\.tokens).reduce(0, +)) / 3 - arith.tokens) < 1e-9)
            #expect(Double(records.filter(\.correct).count) / 3 == arith.accuracy)
        }
        // Evaluation progress counted replies up to 3 of 3.
        let progress = coordinator.all.compactMap(\.message.progressBody).filter { $0.phase == .evaluate }
        #expect(progress.contains { $0.done == 3 && $0.total == 3 })

        // One server for both trials: started once, the same pid reported after each evaluation.
        let log = worker.logText
        let pids = log.split(separator: "\n").compactMap { line -> Substring? in
            guard line.contains("evaluated on transformers server pid") else { return nil }
            return line.split(separator: " ").last
        }
        #expect(pids.count == 2 && Set(pids).count == 1, "\(log)")
        #expect(log.components(separatedBy: "new transformers backend").count - 1 == 1)
        let pid = try #require(pids.first.flatMap { Int32($0) })
        #expect(kill(pid, 0) == 0)

        // Changed backend settings (another interpreter) stop that server and start a new one; this
        // interpreter does not exist, so the attempt fails with the reason and the server's log.
        var broken = task(3, root: root, weights: [0.5, 0.5, 0.5, 0.5])
        broken.evaluator["python"] = .string(root.appendingPathComponent("no-such-python").path)
        coordinator.send(.task(broken), to: "h1")
        // Generous: stopping the old server (SIGTERM, up to 10 s grace) on a machine loaded by the demo tests.
        let failure = try #require(await coordinator.expect(.failure, timeout: 300)?.message.failureBody, "\(worker.logText)")
        #expect(failure.trial == 3 && failure.code == .evalFailed)
        #expect(failure.reason.contains("did not start"), "\(failure.reason)")
        #expect(worker.logText.contains("backend settings changed; stopping the transformers backend"))
        #expect(kill(pid, 0) != 0, "the replaced transformers server still runs")
        coordinator.send(.ack(AckBody(trial: 3, attempt: 1, outcome: .accepted)), to: "h1")

        // SHUTDOWN: the worker exits and takes the server with it.
        // Back to the first settings: a fresh server; the worker's exit stops it.
        coordinator.send(.task(task(4, root: root, weights: [0.1, 0.2, 0.3, 0.4])), to: "h1")
        let fourth = try #require(await coordinator.expect(.result, timeout: 300)?.message.resultBody, "\(worker.logText)")
        #expect(fourth.metrics.benchmarks["arith"]?.items == 3)
        coordinator.send(.ack(AckBody(trial: 4, attempt: 1, outcome: .accepted)), to: "h1")
        let last = try #require(worker.logText.split(separator: "\n").last { $0.contains("trial 4 attempt 1 evaluated on transformers server pid") })
        let newPID = try #require(last.split(separator: " ").last.flatMap { Int32($0) })
        #expect(newPID != pid && kill(newPID, 0) == 0)
        coordinator.send(.shutdown(ShutdownBody(reason: "done")), to: "h1")
        #expect(await worker.waitForExit(timeout: 120) == 0)
        // The worker stops (and reaps) its server before it exits; the wait is only a hang guard.
        let gone = ContinuousClock.now + .seconds(60)
        while kill(newPID, 0) == 0 && ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(100)) }
        #expect(kill(newPID, 0) != 0, "the transformers server outlived its worker")
    }
}
