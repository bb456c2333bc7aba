import Archive
import BamboProtocol
import Coordinator
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// End to end: the built `bambo coordinator` as a process on loopback, workers simulated in the test
/// as real DEALER sockets. Each test is bounded by timeouts.
@Suite(.serialized) struct CoordinatorProcessTests {
    /// Completed results in the archive, and checks that none is duplicated.
    func completedTrials(_ fixture: StudyFixture) throws -> [Int64] {
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        return try archive.completedTrials().map(\.trial.id)
    }

    func studyState(_ fixture: StudyFixture) throws -> StudyState? {
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        return try archive.loadStudy()?.state
    }

    @Test func threeWorkersCompleteTheStudy() throws {
        let fixture = try StudyFixture()
        let coordinator = try CoordinatorProcess(fixture: fixture)
        let context = try Context()
        defer { context.close() }
        // Watch the PUB socket from before the workers join.
        let eventsRange = try #require(coordinator.log.range(of: #"events on tcp://127\.0\.0\.1:[0-9]+"#, options: .regularExpression))
        let subscriber = try Socket(context, type: .subscriber)
        defer { subscriber.close() }
        try subscriber.subscribe()
        try subscriber.connect(String(coordinator.log[eventsRange].dropFirst("events on ".count)))
        Thread.sleep(forTimeInterval: 0.3)
        let workers = (1...3).map { SimulatedWorker(name: "sim-\($0)", endpoint: coordinator.endpoint, behavior: .init(slots: $0 == 1 ? 2 : 1)) }
        workers.forEach { $0.start(context: context) }
        let status = coordinator.waitForExit(timeout: 60)
        #expect(status == 0, "coordinator log:\n\(coordinator.log)")
        for worker in workers {
            #expect(worker.join(timeout: 5))
            #expect(worker.stats.shutdown)
            #expect(worker.stats.errors.isEmpty)
        }
        let completed = try completedTrials(fixture)
        #expect(completed.count == fixture.budget)
        #expect(Set(completed).count == completed.count)
        #expect(try studyState(fixture) == .finished)
        let events = fixture.readEvents()
        #expect(events.filter { $0.kind == "trial.completed" }.count == fixture.budget)
        #expect(events.map(\.seq) == Array(1...Int64(events.count)))
        // The PUB socket carried the same lines as the file.
        var published: [EventRecord] = []
        while let frames = try subscriber.receive(timeout: .milliseconds(200)) {
            published.append(try EventRecord(jsonLine: frames[0]))
        }
        #expect(published.filter { $0.kind == "trial.completed" }.count == fixture.budget)
        let bySeq = Dictionary(uniqueKeysWithValues: events.map { ($0.seq, $0) })
        #expect(published.allSatisfy { bySeq[$0.seq] == $0 })
        // Every worker evaluated something; the three together exactly the budget.
        #expect(workers.allSatisfy { !$0.stats.results.isEmpty })
        #expect(workers.map { $0.stats.acks.filter { $0.outcome == .accepted }.count }.reduce(0, +) == fixture.budget)

        // export: every trial with weights, metrics, objectives and the front; hypervolume > 0.
        let export = try Bambo.run(["export", "--archive", fixture.archive.path, "--format", "json"], in: fixture.directory)
        #expect(export.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        let trials = try #require(json["trials"] as? [[String: Any]])
        #expect(trials.count == fixture.budget)
        #expect(trials.allSatisfy { $0["trial"] != nil && $0["weights"] != nil && $0["metrics"] != nil && $0["objectives"] != nil && $0["pareto"] != nil })
        #expect(trials.contains { $0["pareto"] as? Bool == true })
        #expect((json["hypervolume"] as? Double ?? 0) > 0)
        // The corners score (0, 2) and (2, 0) in (reasoning, efficiency): Eq. 2 over two benchmarks.
        let corner = try #require(trials.first { ($0["weights"] as? [Double])?.allSatisfy { $0 == 1 } == true })
        let objectives = try #require(corner["objectives"] as? [String: Double])
        #expect(abs(objectives["reasoning"]! - 2) < 1e-9 && abs(objectives["efficiency"]!) < 1e-9)
        let csv = try Bambo.run(["export", "--archive", fixture.archive.path, "--format", "csv"], in: fixture.directory)
        #expect(csv.stdout.split(separator: "\n").count == fixture.budget + 1)
        let status2 = try Bambo.run(["status", "--archive", fixture.archive.path, "--json"], in: fixture.directory)
        #expect(status2.status == 0 && status2.stdout.contains("\"finished\""))
        // Workers sent SHUTDOWN are not shown as alive once the study is over.
        let statusJSON = try #require(try JSONSerialization.jsonObject(with: Data(status2.stdout.utf8)) as? [String: Any])
        let seen = try #require(statusJSON["workers"] as? [[String: Any]])
        #expect(seen.count == 3 && seen.allSatisfy { $0["state"] as? String == "gone" }, "workers: \(seen)")
        let log = try Bambo.run(["log", "--file", fixture.events.path], in: fixture.directory)
        #expect(log.stdout.split(separator: "\n").count == events.count)
        #expect(!log.stdout.contains("\u{1B}["))  // plain when piped
    }

    @Test func aSilentWorkersTrialIsRequeuedAndCompletedElsewhere() throws {
        let fixture = try StudyFixture()
        let coordinator = try CoordinatorProcess(fixture: fixture)
        let context = try Context()
        defer { context.close() }
        let silent = SimulatedWorker(name: "sim-silent", endpoint: coordinator.endpoint, behavior: .init(silentAtTask: 1))
        silent.start(context: context)
        // Let the silent worker take the first task before the healthy ones join.
        let deadline = Date().addingTimeInterval(10)
        while silent.stats.tasks.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let healthy = (1...2).map { SimulatedWorker(name: "sim-\($0)", endpoint: coordinator.endpoint) }
        healthy.forEach { $0.start(context: context) }
        let status = coordinator.waitForExit(timeout: 60)
        silent.stop()
        #expect(status == 0, "coordinator log:\n\(coordinator.log)")
        let lostTrial = try #require(silent.stats.tasks.first)
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        let attempts = try archive.attempts(ofTrial: lostTrial.trial)
        #expect(attempts.first?.worker == "sim-silent" && attempts.first?.state == .expired)
        #expect(attempts.last?.state == .completed && attempts.last?.worker != "sim-silent")
        #expect(try archive.counts() == TrialCounts(completed: fixture.budget))
        #expect(fixture.readEvents().contains { $0.kind == "worker.lost" && $0.data["worker"] == .string("sim-silent") })
    }

    @Test func killNineAndRestartFinishWithExactlyTheBudget() throws {
        let fixture = try StudyFixture(initial: 4, iterations: 3, batch: 2)
        let port = freePort()
        let context = try Context()
        defer { context.close() }
        var coordinator = try CoordinatorProcess(fixture: fixture, port: port)
        let workers = (1...3).map { SimulatedWorker(name: "sim-\($0)", endpoint: coordinator.endpoint, behavior: .init(evaluationSeconds: 0.4)) }
        workers.forEach { $0.start(context: context) }
        defer { workers.forEach { $0.stop() } }
        // SIGTERM after the first results: exit 0, resumable.
        func waitForCompleted(_ count: Int) {
            let deadline = Date().addingTimeInterval(30)
            while fixture.readEvents().filter({ $0.kind == "trial.completed" }).count < count && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        waitForCompleted(2)
        coordinator.signal(SIGTERM)
        #expect(coordinator.waitForExit(timeout: 10) == 0, "coordinator log:\n\(coordinator.log)")
        #expect(try studyState(fixture) == .running)
        coordinator = try CoordinatorProcess(fixture: fixture, port: port)
        waitForCompleted(5)
        let secondLog = coordinator.log
        // kill -9 while workers hold tasks.
        coordinator.signal(SIGKILL)
        _ = coordinator.waitForExit(timeout: 10)
        Thread.sleep(forTimeInterval: 0.3)  // workers finish tasks while the coordinator is away
        coordinator = try CoordinatorProcess(fixture: fixture, port: port)
        let status = coordinator.waitForExit(timeout: 30)
        #expect(status == 0, "second coordinator:\n\(secondLog)\nthird coordinator:\n\(coordinator.log)")
        // The kill came while workers held attempts: the restart resumed with some still dispatched.
        let resumed = coordinator.log.range(of: #"completed, [0-9]+ failed, [1-9][0-9]* dispatched"#, options: .regularExpression)
        #expect(resumed != nil, "third coordinator:\n\(coordinator.log)")
        let completed = try completedTrials(fixture)
        #expect(completed.count == fixture.budget)
        #expect(Set(completed).count == completed.count)
        let completions = fixture.readEvents().filter { $0.kind == "trial.completed" }.compactMap { $0.data["trial"]?.numberValue }
        #expect(completions.count == fixture.budget)
        #expect(Set(completions).count == completions.count)
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        #expect(try archive.trials().count == fixture.budget)
        #expect(try archive.loadStudy()?.state == .finished)
        // Every result has its objectives, including those computed before the kill and not yet written.
        #expect(try archive.completedTrials().allSatisfy { $0.result.objectives?.count == 2 })
    }

    @Test func badMessagesGetErrorRepliesAndNeverStopTheCoordinator() throws {
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 1)
        let coordinator = try CoordinatorProcess(fixture: fixture)
        let context = try Context()
        defer { context.close() }
        let peer = try WorkerPeer(context: context, name: "rogue", endpoint: coordinator.endpoint)
        defer { peer.close() }
        func reply() throws -> ErrorBody? {
            try peer.receive(timeout: .seconds(5)) { message in
                if case .error(let body) = message { return body }
                return nil
            }
        }
        let version = Data("BAMBO/1".utf8)
        try peer.sendFrames([version, Data("HEARTBEAT".utf8)])
        #expect(try reply()?.code == .malformed)
        try peer.sendFrames([version, Data("HEARTBEAT".utf8), Data("{\"activeTrials\": [".utf8)])
        #expect(try reply()?.code == .malformed)
        try peer.sendFrames([version, Data("READY".utf8), Data(#"{"worker":"rogue","pid":0,"host":"h","capabilities":{}}"#.utf8)])
        let missing = try reply()
        #expect(missing?.code == .malformed && missing?.inReplyTo == "READY")
        try peer.sendFrames([version, Data("HEARTBEAT".utf8), Data(repeating: UInt8(ascii: " "), count: 2 << 20)])
        #expect(try reply()?.code == .tooLarge)
        try peer.sendFrames([Data("BAMBO/9".utf8), Data("READY".utf8), Data("{}".utf8)])
        #expect(try reply()?.code == .badVersion)
        try peer.sendFrames([version, Data("TASK".utf8), Data("{}".utf8)])
        #expect(try reply()?.code == .unknownType)
        try peer.send(.result(ResultBody(trial: 1, attempt: 1, metrics: Metrics(benchmarks: ["b": .init(accuracy: 1, tokens: 1)]), durations: .init(merge: 0, evaluate: 0))))
        #expect(try reply()?.code == .unknownWorker)
        try peer.send(.ready(ReadyBody(worker: "someone-else", pid: 1, host: "h", capabilities: Capabilities(slots: 1, gpus: [], backends: [], evaluators: ["exec"], version: "x"))))
        #expect(try reply()?.code == .outOfOrder)
        // Still alive and working: a proper worker finishes the study.
        let worker = SimulatedWorker(name: "sim-1", endpoint: coordinator.endpoint)
        worker.start(context: context)
        #expect(coordinator.waitForExit(timeout: 60) == 0, "coordinator log:\n\(coordinator.log)")
        #expect(worker.join(timeout: 5) && worker.stats.shutdown)
        let logged = fixture.readEvents().filter { $0.kind == "protocol.error" }.compactMap { $0.data["code"]?.stringValue }
        #expect(Set(logged).isSuperset(of: ["MALFORMED", "TOO_LARGE", "BAD_VERSION", "UNKNOWN_TYPE"]))
        #expect(coordinator.log.contains("OUT_OF_ORDER") || coordinator.log.contains("routing id"))
    }

    @Test func aKeyNotOnTheAllowListCannotTakeTasks() throws {
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 1)
        let keys = fixture.directory.appendingPathComponent("keys")
        let allowed = fixture.directory.appendingPathComponent("allowed")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: allowed, withIntermediateDirectories: true)
        for name in ["server", "good", "bad"] {
            #expect(try Bambo.run(["keygen", "--out", keys.appendingPathComponent(name).path], in: fixture.directory).status == 0)
        }
        try FileManager.default.copyItem(at: keys.appendingPathComponent("good.pub"), to: allowed.appendingPathComponent("good.pub"))
        let coordinator = try CoordinatorProcess(
            fixture: fixture, extra: ["--curve-secret", keys.appendingPathComponent("server").path, "--allow-keys", allowed.path])
        let serverKey = try CurveKey(contentsOfFile: keys.appendingPathComponent("server.pub").path)
        let context = try Context()
        defer { context.close() }
        let bad = SimulatedWorker(
            name: "sim-bad", endpoint: coordinator.endpoint,
            behavior: .init(curve: (try CurveKeyPair(contentsOfFile: keys.appendingPathComponent("bad").path), serverKey)))
        bad.start(context: context)
        Thread.sleep(forTimeInterval: 1.0)
        #expect(bad.stats.welcomes == 0 && bad.stats.tasks.isEmpty)
        let good = SimulatedWorker(
            name: "sim-good", endpoint: coordinator.endpoint,
            behavior: .init(curve: (try CurveKeyPair(contentsOfFile: keys.appendingPathComponent("good").path), serverKey)))
        good.start(context: context)
        #expect(coordinator.waitForExit(timeout: 60) == 0, "coordinator log:\n\(coordinator.log)")
        bad.stop()
        #expect(bad.stats.tasks.isEmpty && bad.stats.welcomes == 0)
        #expect(good.stats.results.count == fixture.budget)
        let refused = fixture.readEvents().filter { $0.kind == "worker.refused" }
        #expect(!refused.isEmpty)
        #expect(refused.allSatisfy { $0.data["key"] != .string(try! CurveKey(contentsOfFile: keys.appendingPathComponent("good.pub").path).z85) })
    }

    @Test func aNonLoopbackBindNeedsCurveOrInsecure() throws {
        let fixture = try StudyFixture(initial: 3, iterations: 0, batch: 1)
        let refused = try Bambo.run(
            ["coordinator", "--study", fixture.studyFile.path, "--bind", "tcp://*:\(freePort())", "--events", "none"], in: fixture.directory)
        #expect(refused.status != 0)
        #expect(CoordinatorService.isLoopback("tcp://127.0.0.1:5555") && CoordinatorService.isLoopback("tcp://[::1]:5555"))
        #expect(!CoordinatorService.isLoopback("tcp://*:5555") && !CoordinatorService.isLoopback("tcp://10.0.0.1:5555"))
    }
}
