import Archive
import BamboProtocol
import Coordinator
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// qEHVI proposals run off the coordinator's loop: the built `bambo coordinator` stopped by SIGTERM
/// while one is computed loses nothing stored, and the same archive resumed proposes again and
/// finishes with exactly the budget.
@Suite(.serialized) struct BackgroundProposalTests {
    @Test func sigtermDuringAProposalLosesNothingAndTheResumedStudyProposesAgain() throws {
        let fixture = try StudyFixture(initial: 4, iterations: 3, batch: 2, acquisition: "qehvi")
        let context = try Context()
        defer { context.close() }
        let first = try CoordinatorProcess(fixture: fixture)
        let workers = (1...2).map { SimulatedWorker(name: "sim-\($0)", endpoint: first.endpoint) }
        workers.forEach { $0.start(context: context) }
        // The first model-based proposal starts once the warm start is scored: stop right then.
        let deadline = Date().addingTimeInterval(120)
        while !first.log.contains("in the background"), first.process.isRunning, Date() < deadline { usleep(5_000) }
        try #require(first.log.contains("in the background"), "no background proposal; log:\n\(first.log)")
        first.signal(SIGTERM)
        #expect(first.waitForExit(timeout: 60) == 0, "log:\n\(first.log)")
        workers.forEach { $0.stop() }
        #expect(workers.allSatisfy { $0.join(timeout: 10) })

        let added = fixture.readEvents().filter { $0.kind == "trial.added" }.count
        let stopped = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        let counts = try stopped.counts()
        let completedBefore = try stopped.completedTrials().count
        let originsBefore = try stopped.trials().map(\.origin)
        try stopped.close()
        // Everything announced is stored; the study is not over.
        #expect(counts.total == added && counts.total < fixture.budget, "\(counts)")
        #expect(completedBefore >= 2, "a model needs two scored trials")
        if first.log.contains("discarded (proposed again on resume)") {
            // Stopped mid-proposal (the usual case): nothing of it (the first qEHVI one) was stored.
            #expect(!originsBefore.contains(.qehvi), "\(originsBefore)")
        }

        let second = try CoordinatorProcess(fixture: fixture)
        let again = (1...2).map { SimulatedWorker(name: "sim-\($0)", endpoint: second.endpoint) }
        again.forEach { $0.start(context: context) }
        #expect(second.waitForExit(timeout: 120) == 0, "log:\n\(second.log)")
        #expect(again.allSatisfy { $0.join(timeout: 10) })
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        let completed = try archive.completedTrials().map(\.trial.id)
        #expect(completed.count == fixture.budget && Set(completed).count == completed.count)
        #expect(try archive.loadStudy()?.state == .finished)
        let origins = try archive.trials().map(\.origin)
        #expect(origins.filter { $0 == .qehvi }.count >= 2, "\(origins)")
        #expect(second.log.contains("proposal: 2 qehvi point(s) for bambo"), "log:\n\(second.log)")
    }
}
