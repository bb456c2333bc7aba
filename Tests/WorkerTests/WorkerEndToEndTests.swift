import BamboProtocol
import Foundation
import Testing
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// The built `bambo worker` against a test coordinator on 127.0.0.1: real sockets, real merges of
/// `bambo synthesize` checkpoints, a real evaluator process. Serialized: timing checks stay honest
/// on a loaded 2-core machine.
@Suite(.serialized) struct WorkerEndToEndTests {
    @Test(.timeLimit(.minutes(10)))
    func aTaskIsMergedEvaluatedReportedAndCleanedUp() async throws {
        let fixture = try Fixture()
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator, extra: ["--gpus", "0,1"]), in: fixture.root)

        let ready = try #require(await coordinator.register())
        #expect(ready.worker == "w1" && ready.pid == Int(worker.pid))
        #expect(ready.capabilities == Capabilities(slots: 1, gpus: ["0", "1"], backends: [], evaluators: ["exec", "harness"], version: "0.1.0"))
        #expect(ready.activeTrials == nil)

        let weights = [0.1, 0.3, 0.6, 0.9]
        coordinator.send(.task(fixture.task(5, attempt: 2, weights: weights, mode: ["ok", "0.6"])), to: "w1")
        let result = try #require(await coordinator.expect(.result)?.message.resultBody)
        #expect(result.trial == 5 && result.attempt == 2)
        let math = try #require(result.metrics.benchmarks["math"])
        #expect(abs(math.accuracy - weights.reduce(0, +) / 4) < 1e-12)
        #expect(abs(math.tokens - 110) < 1e-9)
        #expect(math.items == 7)
        #expect(math.extra["trial"] == "5" && math.extra["attempt"] == "2" && math.extra["gpus"] == "0,1")
        // The merged checkpoint was there while the evaluator ran.
        guard case .array(let files)? = math.extra["files"] else { Issue.record("no file list"); return }
        #expect(files.contains("config.json") && files.contains { $0.stringValue?.hasSuffix(".safetensors") == true })
        #expect(result.durations.merge > 0 && result.durations.evaluate >= 0.6)

        // PROGRESS for both phases (merge bytes up to the total), HEARTBEATs holding the attempt.
        let messages = coordinator.all.map(\.message)
        let progress = messages.compactMap(\.progressBody)
        let merge = progress.filter { $0.phase == .merge && $0.total > 0 }
        #expect(!merge.isEmpty && merge.last.map { $0.done == $0.total } == true)
        #expect(progress.contains { $0.phase == .evaluate })
        #expect(messages.contains { if case .workerHeartbeat(let body) = $0 { body.activeTrials == [AttemptRef(trial: 5, attempt: 2)] } else { false } })

        // The attempt's scratch is gone once the RESULT is out.
        try await Task.sleep(for: .milliseconds(300))
        #expect(!FileManager.default.fileExists(atPath: fixture.attemptDirectory(5, 2).path))

        // The RESULT stays until ACKed: not sent again after the ACK; SHUTDOWN → BYE, exit 0.
        coordinator.send(.ack(AckBody(trial: 5, attempt: 2, outcome: .accepted)), to: "w1")
        coordinator.send(.shutdown(ShutdownBody(reason: "budget reached")), to: "w1")
        #expect(await coordinator.expect(.bye) != nil)
        #expect(await worker.waitForExit(timeout: 30) == 0)
        #expect(coordinator.undecodable.isEmpty)
    }

    @Test(.timeLimit(.minutes(10)))
    func prefetchMergesTheNextTaskWhileTheCurrentOneEvaluates() async throws {
        let fixture = try Fixture()
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator, extra: ["--prefetch", "1"]), in: fixture.root)
        let ready = try #require(await coordinator.register())
        #expect(ready.capabilities.slots == 2)
        coordinator.send(.task(fixture.task(1, mode: ["ok", "2.5"])), to: "w1")
        coordinator.send(.task(fixture.task(2, mode: ["ok", "0.1"])), to: "w1")
        var results: [Int64: ResultBody] = [:]
        while results.count < 2, let arrival = await coordinator.expect(.result, timeout: 60) {
            if let body = arrival.message.resultBody { results[body.trial] = body }
        }
        let first = try #require(results[1]?.metrics.benchmarks["math"])
        let second = try #require(results[2]?.metrics.benchmarks["math"])
        let (written1, end1) = (try #require(first.number("modelWritten")), try #require(first.number("ended")))
        let written2 = try #require(second.number("modelWritten"))
        let start2 = try #require(second.number("started"))
        // Trial 2's model was written after trial 1's, before trial 1's 2.5 s evaluation ended,
        // and its evaluation started right after trial 1's ended (no merge in between).
        #expect(written2 >= written1 && written2 < end1 - 1, "trial 2 merged at \(written2), trial 1 merged at \(written1), evaluated until \(end1)")
        #expect(start2 >= end1 && start2 - end1 < 2, "trial 2 evaluated \(start2 - end1) s after trial 1 ended")
        for trial in [Int64(1), 2] { coordinator.send(.ack(AckBody(trial: trial, attempt: 1, outcome: .accepted)), to: "w1") }
        coordinator.send(.shutdown(ShutdownBody(reason: "done")), to: "w1")
        #expect(await worker.waitForExit(timeout: 30) == 0)
    }

    @Test(.timeLimit(.minutes(10)))
    func theWorkerReconnectsAndResendsItsUnacknowledgedResult() async throws {
        let fixture = try Fixture()
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator), in: fixture.root)
        _ = try #require(await coordinator.register())
        coordinator.send(.task(fixture.task(3, mode: ["ok", "1.5"])), to: "w1")
        _ = try #require(await coordinator.expect(.progress) { $0.progressBody?.phase == .evaluate })
        let goneAt = Date()
        coordinator.disappear()
        try await Task.sleep(for: .seconds(2.5))  // lease 0.6 s; the evaluation ends while away
        try coordinator.comeBack()
        let ready = try #require(await coordinator.register(timeout: 30))
        #expect(ready.pid == Int(worker.pid))
        #expect(ready.activeTrials == [AttemptRef(trial: 3, attempt: 1)])
        let resent = try #require(await coordinator.expect(.result)?.message.resultBody)
        #expect(resent.trial == 3)
        let math = try #require(resent.metrics.benchmarks["math"])
        #expect(try #require(math.number("ended")) < Date().timeIntervalSince1970)
        #expect(try #require(math.number("ended")) > goneAt.timeIntervalSince1970)  // finished while away
        coordinator.send(.ack(AckBody(trial: 3, attempt: 1, outcome: .accepted)), to: "w1")
        coordinator.send(.shutdown(ShutdownBody(reason: "done")), to: "w1")
        #expect(await worker.waitForExit(timeout: 30) == 0)
        #expect(coordinator.all.filter { $0.message.type == .result }.count == 1)  // not sent to nobody's ACK twice
    }

    @Test(.timeLimit(.minutes(10)))
    func sigtermAbandonsTheTaskSaysByeAndExitsZero() async throws {
        let fixture = try Fixture()
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator), in: fixture.root)
        _ = try #require(await coordinator.register())
        coordinator.send(.task(fixture.task(4, mode: ["hang"])), to: "w1")
        _ = try #require(await coordinator.expect(.progress) { $0.progressBody?.phase == .evaluate })
        let pidFile = fixture.scratch.appendingPathComponent("eval-4.pid")
        var evaluatorPID: Int32?
        for _ in 0..<200 where evaluatorPID == nil {
            evaluatorPID = (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let evaluator = try #require(evaluatorPID)
        #expect(FileManager.default.fileExists(atPath: fixture.attemptDirectory(4).appendingPathComponent("model").path))
        worker.signal(SIGTERM)
        let failure = try #require(await coordinator.expect(.failure)?.message.failureBody)
        #expect(failure.trial == 4 && failure.code == .abandoned)
        #expect(await coordinator.expect(.bye) != nil)
        coordinator.send(.ack(AckBody(trial: 4, attempt: 1, outcome: .accepted)), to: "w1")
        #expect(await worker.waitForExit(timeout: 15) == 0)
        #expect(kill(evaluator, 0) != 0)  // the evaluator's process group is gone
        #expect(!FileManager.default.fileExists(atPath: fixture.attemptDirectory(4).path))
    }

    @Test(.timeLimit(.minutes(10)))
    func evaluatorFailuresAreReportedWithReasonAndStderr() async throws {
        let fixture = try Fixture()
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator), in: fixture.root)
        _ = try #require(await coordinator.register())
        let cases: [(mode: [String], timeout: Double, code: FailureCode, reason: String, tail: String?)] = [
            (["fail"], 60, .evalFailed, "exited with status 1", "CUDA out of memory"),
            (["badjson"], 60, .badOutput, "not valid JSON", "evaluating"),
            (["nan"], 60, .badOutput, "NaN", nil),
            (["hang"], 1, .evalTimeout, "timeout of 1 s", "evaluating"),
        ]
        for (index, item) in cases.enumerated() {
            let trial = Int64(10 + index)
            let started = Date()
            coordinator.send(.task(fixture.task(trial, mode: item.mode, timeout: item.timeout)), to: "w1")
            let failure = try #require(await coordinator.expect(.failure, timeout: 30)?.message.failureBody)
            #expect(failure.trial == trial && failure.code == item.code, "\(item.mode): \(failure)")
            #expect(failure.reason.contains(item.reason), "\(item.mode): \(failure.reason)")
            if let tail = item.tail { #expect(failure.logTail.contains(tail), "\(item.mode): \(failure.logTail)") }
            if item.code == .evalTimeout { #expect(Date().timeIntervalSince(started) < 10) }
            coordinator.send(.ack(AckBody(trial: trial, attempt: 1, outcome: .accepted)), to: "w1")
        }
        // A model the worker cannot see is the task's problem.
        var missing = fixture.model("thinking")
        missing.path += "-missing"
        coordinator.send(.task(fixture.task(20, models: [fixture.model("instruct"), missing])), to: "w1")
        let failure = try #require(await coordinator.expect(.failure)?.message.failureBody)
        #expect(failure.code == .badTask && failure.reason.contains("models[1].path"))
        coordinator.send(.shutdown(ShutdownBody(reason: "done")), to: "w1")
        #expect(await worker.waitForExit(timeout: 30) == 0)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: fixture.scratch.path)) ?? []
        #expect(left.filter { $0.hasPrefix("trial-") }.isEmpty)
    }

    @Test(.timeLimit(.minutes(10)))
    func staleScratchIsCleanedAtStart() async throws {
        let fixture = try Fixture()
        let stale = fixture.attemptDirectory(99).appendingPathComponent("model")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        let keep = fixture.scratch.appendingPathComponent("notes.txt")
        try "mine".write(to: keep, atomically: true, encoding: .utf8)
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator), in: fixture.root)
        _ = try #require(await coordinator.register())
        #expect(!FileManager.default.fileExists(atPath: fixture.attemptDirectory(99).path))
        #expect(FileManager.default.fileExists(atPath: keep.path))
        worker.signal(SIGINT)
        #expect(await coordinator.expect(.bye) != nil)
        #expect(await worker.waitForExit(timeout: 30) == 0)
    }

    @Test(.timeLimit(.minutes(10)))
    func curveWorkerConnectsWithItsKeys() async throws {
        let fixture = try Fixture()
        let server = try CurveKeyPair.generate()
        let client = try CurveKeyPair.generate()
        let keys = fixture.root.appendingPathComponent("keys-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try server.publicKey.write(toFile: keys.appendingPathComponent("coordinator.pub").path)
        try client.write(toFile: keys.appendingPathComponent("worker.key").path)
        let coordinator = try TestCoordinator(curve: server, allowedKeys: [client.publicKey])
        let worker = try WorkerProcess(fixture.workerArguments(coordinator, extra: [
            "--curve-server-key", keys.appendingPathComponent("coordinator.pub").path,
            "--curve-secret", keys.appendingPathComponent("worker.key").path,
        ]), in: fixture.root)
        _ = try #require(await coordinator.register())
        #expect(coordinator.all.first?.userID == client.publicKey.z85)  // admitted by its key
        coordinator.send(.task(fixture.task(30)), to: "w1")
        #expect(await coordinator.expect(.result)?.message.resultBody?.trial == 30)
        coordinator.send(.shutdown(ShutdownBody(reason: "done")), to: "w1")
        #expect(await worker.waitForExit(timeout: 30) == 0)

        // A worker with a key the coordinator does not allow never gets a message through.
        let stranger = try CurveKeyPair.generate()
        try stranger.write(toFile: keys.appendingPathComponent("stranger.key").path)
        let refused = try WorkerProcess(fixture.workerArguments(coordinator, name: "w2", extra: [
            "--curve-server-key", keys.appendingPathComponent("coordinator.pub").path,
            "--curve-secret", keys.appendingPathComponent("stranger.key").path,
        ]), in: fixture.root)
        #expect(await coordinator.expect(.ready, timeout: 2) == nil)
        refused.signal(SIGTERM)
        #expect(await refused.waitForExit(timeout: 10) == 0)
    }

    @Test(.timeLimit(.minutes(10)))
    func badOptionsAreRefusedWithAReason() throws {
        for (arguments, needle) in [
            (["--connect", "localhost:5555"], "--connect"),
            (["--connect", "tcp://127.0.0.1:5555", "--name", "-bad"], "--name"),
            (["--connect", "tcp://127.0.0.1:5555", "--curve-secret", "x"], "--curve-server-key"),
            (["--connect", "tcp://127.0.0.1:5555", "--prefetch", "-1"], "--prefetch"),
        ] {
            let process = Process()
            process.executableURL = Bambo.executable
            process.arguments = ["worker"] + arguments
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus != 0)
            #expect(text.contains(needle), "\(arguments): \(text)")
        }
    }
}
