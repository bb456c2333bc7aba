import BamboProtocol
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// CANCEL and SIGTERM during a real merge of larger synthetic models (`bambo synthesize
/// --size-mb`), a TIES merge (a statistics pass, then the merge pass) with one thread, so that it
/// takes seconds: the merge is interrupted (the
/// worker logs how far it got, short of the total), the worker answers FAILURE `CANCELLED` (or
/// `ABANDONED` on SIGTERM), and no partial output is left in the scratch directory.
@Suite(.serialized) struct MergeCancellationTests {
    /// Models of about 128 MB each, made once per test process.
    static let bigModels: Result<URL, Error> = Result {
        let root = try Fixture.shared.get().appendingPathComponent("big")
        if !FileManager.default.fileExists(atPath: root.appendingPathComponent("thinking/config.json").path) {
            try Bambo.run(["synthesize", "--out", root.path, "--layers", "4", "--size-mb", "128"])
        }
        return root
    }

    func bigTask(_ fixture: Fixture, trial: Int64) throws -> TaskBody {
        let root = try Self.bigModels.get()
        var task = fixture.task(trial, mode: ["ok"], models: [
            ModelRef(name: "instruct", path: root.appendingPathComponent("instruct").path),
            ModelRef(name: "thinking", path: root.appendingPathComponent("thinking").path),
        ])
        task.base = ModelRef(name: "base", path: root.appendingPathComponent("base").path)
        task.merge = MergeSpec(method: "ties", dtype: .bfloat16, params: ["density": 0.5])
        return task
    }

    /// Waits until the merge of `trial` reported some progress short of its total.
    func waitForMergeUnderWay(_ coordinator: TestCoordinator, trial: Int64) async -> ProgressBody? {
        await coordinator.expect(.progress, timeout: 120) { message in
            guard let body = message.progressBody else { return false }
            return body.trial == trial && body.phase == .merge && body.done > 0 && body.done < body.total
        }?.message.progressBody
    }

    /// The "merge cancelled … at D of T bytes" line of the worker's log, as (D, T).
    func cancelledAt(_ worker: WorkerProcess, timeout: Double = 30) async -> (Int64, Int64)? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = worker.logText
            if let range = text.range(of: #"merge cancelled after [0-9.]+ s at [0-9]+ of [0-9]+ bytes"#, options: .regularExpression) {
                let numbers = text[range].split(separator: " ").compactMap { Int64($0) }
                if numbers.count == 2 { return (numbers[0], numbers[1]) }
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    func scratchEntries(_ fixture: Fixture) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: fixture.scratch.path))?.filter { $0.hasPrefix("trial-") } ?? []
    }

    @Test(.timeLimit(.minutes(5)))
    func cancelInterruptsTheMergeAndTheWorkerAnswersCancelled() async throws {
        let fixture = try Fixture()
        let task = try bigTask(fixture, trial: 7)
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator), in: fixture.root)
        _ = try #require(await coordinator.register())
        coordinator.send(.task(task), to: "w1")
        let underWay = try #require(await waitForMergeUnderWay(coordinator, trial: 7), "worker log:\n\(worker.logText)")
        coordinator.send(.cancel(CancelBody(trial: 7, attempt: 1, reason: "test")), to: "w1")
        let failure = try #require(await coordinator.expect(.failure, timeout: 60)?.message.failureBody, "worker log:\n\(worker.logText)")
        #expect(failure.trial == 7 && failure.attempt == 1 && failure.code == .cancelled)
        #expect(failure.reason.contains("test"))
        // The merge stopped where it was, short of its end, and its output is gone.
        let (done, total) = try #require(await cancelledAt(worker), "worker log:\n\(worker.logText)")
        #expect(done >= Int64(underWay.done) && done < total, "stopped at \(done) of \(total)")
        #expect(!coordinator.all.contains { $0.message.resultBody != nil })
        for _ in 0..<100 where !scratchEntries(fixture).isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(scratchEntries(fixture).isEmpty, "left in scratch: \(scratchEntries(fixture))")
        coordinator.send(.ack(AckBody(trial: 7, attempt: 1, outcome: .accepted)), to: "w1")

        // The merger is free again: the next task is merged and evaluated.
        coordinator.send(.task(fixture.task(8)), to: "w1")
        let result = try #require(await coordinator.expect(.result, timeout: 60)?.message.resultBody, "worker log:\n\(worker.logText)")
        #expect(result.trial == 8)
        coordinator.send(.ack(AckBody(trial: 8, attempt: 1, outcome: .accepted)), to: "w1")
        coordinator.send(.shutdown(ShutdownBody(reason: "done")), to: "w1")
        #expect(await worker.waitForExit(timeout: 30) == 0)
    }

    @Test(.timeLimit(.minutes(5)))
    func sigtermDuringAMergeAbandonsItCleanly() async throws {
        let fixture = try Fixture()
        let task = try bigTask(fixture, trial: 9)
        let coordinator = try TestCoordinator()
        let worker = try WorkerProcess(fixture.workerArguments(coordinator), in: fixture.root)
        _ = try #require(await coordinator.register())
        coordinator.send(.task(task), to: "w1")
        _ = try #require(await waitForMergeUnderWay(coordinator, trial: 9), "worker log:\n\(worker.logText)")
        worker.signal(SIGTERM)
        let failure = try #require(await coordinator.expect(.failure, timeout: 60)?.message.failureBody)
        #expect(failure.trial == 9 && failure.code == .abandoned)
        #expect(await coordinator.expect(.bye) != nil)
        coordinator.send(.ack(AckBody(trial: 9, attempt: 1, outcome: .accepted)), to: "w1")
        #expect(await worker.waitForExit(timeout: 60) == 0, "worker log:\n\(worker.logText)")
        // It exited after the merge had stopped and removed its partial output.
        let (done, total) = try #require(await cancelledAt(worker, timeout: 1), "worker log:\n\(worker.logText)")
        #expect(done < total)
        #expect(scratchEntries(fixture).isEmpty, "left in scratch: \(scratchEntries(fixture))")
    }
}
