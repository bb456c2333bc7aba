import Archive
import BamboProtocol
import Coordinator
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// The stored partition's blocks (the archive's `partition.spec`).
private struct StoredBlocks: Decodable { var blocks: [[Int]] }

/// Several strategies in one archive, with the built `bambo coordinator` as a process on loopback.
@Suite(.serialized) struct MultiStrategyStudyTests {
    @Test("bambo, layerwise and grid share one archive; corners first; each TASK carries its partition and method; kill -9 resumes")
    func threeStrategiesOneArchiveAndResume() throws {
        // bambo and layerwise: 3 + 1 × 2 = 5 each; grid: 2 methods × 3 α = 6; 16 in all.
        let fixture = try StudyFixture(initial: 3, iterations: 1, batch: 2, acquisition: "qehvi", extra: """
            base: {name: base, path: ckpt/base}
            strategies: [grid, bambo, layerwise]
            grid: {methods: [ties, linear], alphas: [0.25, 0.5, 0.75]}
            """)
        let budgets = ["bambo": 5, "layerwise": 5, "grid": 6]
        let total = budgets.values.reduce(0, +)
        let port = freePort()
        let context = try Context()
        defer { context.close() }
        // Heartbeats of 1 s (lease 3 s): a GP fit on a loaded machine blocks the coordinator's loop for
        // a while, and with the fixture's 0.2 s a worker would re-register mid-dispatch (it then
        // drops a TASK in flight, which expires the attempt).
        let slower = ["--heartbeat", "1"]
        var coordinator = try CoordinatorProcess(fixture: fixture, port: port, extra: slower)
        let workers = (1...2).map { SimulatedWorker(name: "sim-\($0)", endpoint: coordinator.endpoint, behavior: .init(evaluationSeconds: 0.3)) }
        workers.forEach { $0.start(context: context) }
        defer { workers.forEach { $0.stop() } }
        let deadline = Date().addingTimeInterval(60)
        while fixture.readEvents().filter({ $0.kind == "trial.completed" }).count < 6 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        coordinator.signal(SIGKILL)
        _ = coordinator.waitForExit(timeout: 10)
        let firstLog = coordinator.log
        Thread.sleep(forTimeInterval: 0.3)
        coordinator = try CoordinatorProcess(fixture: fixture, port: port, extra: slower)
        #expect(coordinator.waitForExit(timeout: 120) == 0, "first:\n\(firstLog)\nsecond:\n\(coordinator.log)")
        #expect(coordinator.log.contains("resuming:"))

        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        #expect(try archive.loadStudy()?.state == .finished)
        let trials = try archive.trials()
        #expect(Dictionary(grouping: trials, by: \.strategy).mapValues(\.count) == budgets)
        let failed = try archive.trials(in: .failed).map { "\($0.id) \($0.strategy): \($0.failureReasons)" }
        #expect(try archive.counts() == TrialCounts(completed: total), "failed: \(failed)\nfirst:\n\(firstLog)\nsecond:\n\(coordinator.log)")
        // The anchor strategy is bambo (the first that interpolates): its corners are the first trials
        // and the first dispatched.
        let studyBlocks = try #require(try archive.loadPartition(as: StoredBlocks.self)).blocks
        #expect(studyBlocks.count == 2)
        #expect(trials[0].strategy == "bambo" && trials[0].x == [0, 0, 0, 0])
        #expect(trials[1].strategy == "bambo" && trials[1].x == [1, 1, 1, 1])
        let dispatched = fixture.readEvents().filter { $0.kind == "trial.dispatched" }.compactMap { $0.data["trial"]?.numberValue }
        #expect(Set(dispatched.prefix(2)) == [1, 2])

        // Every TASK carried its strategy's partition and merge method.
        let byID = Dictionary(uniqueKeysWithValues: trials.map { ($0.id, $0) })
        let bodies = workers.flatMap { $0.stats.bodies }
        #expect(Set(bodies.map(\.trial)) == Set(trials.map(\.id)))
        var gridPoints: Set<String> = []
        for body in bodies {
            let trial = try #require(byID[body.trial])
            #expect(body.weights == trial.x)
            #expect(body.base?.name == "base")
            switch trial.strategy {
            case "bambo":
                #expect(body.partition.blocks == studyBlocks && body.partition.layers == 4)
                #expect(body.merge.method == "linear" && trial.partition == nil && trial.merge == nil)
            case "layerwise":
                #expect(body.partition == PartitionSpec(blocks: [[0, 0], [1, 1], [2, 2], [3, 3]], layers: 4))
                #expect(body.weights.count == 6 && body.merge.method == "linear")
            case "grid":
                #expect(body.partition == PartitionSpec(blocks: [[0, 3]], layers: 4))
                #expect(Set(body.weights).count == 1 && body.weights.count == 3)
                #expect(body.merge.method == "ties" || body.merge.method == "linear")
                if body.merge.method == "ties" { #expect(body.merge.params == ["density": 0.5]) }
                gridPoints.insert("\(body.merge.method)@\(body.weights[0])")
            default:
                Issue.record("unexpected strategy \(trial.strategy)")
            }
        }
        #expect(gridPoints == ["ties@0.25", "ties@0.5", "ties@0.75", "linear@0.25", "linear@0.5", "linear@0.75"])
        // Every trial, whatever its strategy, has objectives normalized by bambo's corners.
        #expect(try archive.completedTrials().allSatisfy { $0.result.objectives?.count == 2 })
        // Eq. 2 by hand for every trial: per benchmark (s − s_base) / (s_expert − s_base), summed, with
        // bambo's corners as instruct (x = 0) and thinking (x = 1).
        let instruct = SimulatedWorker.metrics(for: [0, 0, 0, 0]).benchmarks, thinking = SimulatedWorker.metrics(for: [1, 1, 1, 1]).benchmarks
        for entry in try archive.completedTrials() {
            let own = SimulatedWorker.metrics(for: entry.trial.x).benchmarks
            var reasoning = 0.0, efficiency = 0.0
            for name in own.keys {
                reasoning += (own[name]!.accuracy - instruct[name]!.accuracy) / (thinking[name]!.accuracy - instruct[name]!.accuracy)
                efficiency += (own[name]!.tokens - thinking[name]!.tokens) / (instruct[name]!.tokens - thinking[name]!.tokens)
            }
            let stored = try #require(entry.result.objectives)
            #expect(abs(stored["reasoning"]! - reasoning) < 1e-9 && abs(stored["efficiency"]! - efficiency) < 1e-9, "trial \(entry.trial.id)")
        }

        // The export and status say which strategy (and grid method) each trial is.
        let exported = try Bambo.run(["export", "--archive", fixture.archive.path, "--format", "json"], in: fixture.directory)
        #expect(exported.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(exported.stdout.utf8)) as? [String: Any])
        let rows = try #require(object["trials"] as? [[String: Any]])
        #expect(rows.count == total)
        for row in rows {
            let strategy = try #require(row["strategy"] as? String)
            let method = row["method"] as? String
            #expect(strategy == "grid" ? (method == "ties" || method == "linear") : method == "linear")
        }
        let summaries = try #require(object["strategies"] as? [String: [String: Any]])
        #expect(summaries.mapValues { $0["trials"] as? Int ?? -1 } == budgets)
        let status = try Bambo.run(["status", "--archive", fixture.archive.path], in: fixture.directory)
        #expect(status.status == 0 && status.stdout.contains("strategy grid: 6/6 completed") && status.stdout.contains("strategy layerwise: 5/5"))
    }
}
