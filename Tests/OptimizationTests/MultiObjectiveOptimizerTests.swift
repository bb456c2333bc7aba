import Foundation
import Testing
@testable import Optimization

/// Small settings so that a whole loop runs in seconds in a debug build.
private func quickConfiguration(_ strategy: ProposalStrategy, seed: UInt64, dimension: Int = 2) -> MultiObjectiveOptimizerConfiguration {
    var c = MultiObjectiveOptimizerConfiguration(dimension: dimension, objectives: 2, initialDesignSize: 8,
                                                 strategy: strategy, seed: seed, mcSamples: 32, restarts: 2,
                                                 rawSamples: 64, fitOptions: GPFitOptions(randomRestarts: 0))
    c.acquisitionOptions.optimizer.maxIterations = 30
    return c
}

/// Runs `iterations` batches of `q` after the initial design; returns the final hypervolume.
private func runLoop(_ problem: some MultiObjectiveTestProblem, _ configuration: MultiObjectiveOptimizerConfiguration,
                     iterations: Int, q: Int) throws -> Double {
    var optimizer = try MultiObjectiveOptimizer(configuration)
    let design = try optimizer.ask(q: configuration.initialDesignSize)
    try optimizer.tell(x: design, y: design.map { try problem.evaluate($0) })
    for _ in 0..<iterations {
        let batch = try optimizer.ask(q: q)
        #expect(batch.count == q)
        try optimizer.tell(x: batch, y: batch.map { try problem.evaluate($0) })
    }
    return try Hypervolume.compute(optimizer.observedY, referencePoint: problem.referencePoint)
}

@Suite("MultiObjectiveOptimizer: ask/tell")
struct MultiObjectiveOptimizerTests {
    @Test("The initial design is Sobol, handed out once; then proposals lie in the cube")
    func initialDesignThenModels() throws {
        var o = try MultiObjectiveOptimizer(quickConfiguration(.qehvi, seed: 1))
        let first = try o.ask(q: 3)
        let second = try o.ask(q: 5)
        var sobol = try SobolSequence(dimension: 2, scramble: true, seed: 1)
        #expect(first + second == (try sobol.draw(8)))
        #expect(o.isInInitialDesign)
        let problem = BraninCurrin()
        try o.tell(x: first + second, y: (first + second).map { try problem.evaluate($0) })
        #expect(!o.isInInitialDesign)
        let batch = try o.ask(q: 2, pending: [[0.5, 0.5]])
        #expect(batch.count == 2)
        #expect(batch.allSatisfy { $0.count == 2 && $0.allSatisfy { (0...1).contains($0) } })
        #expect(o.lastHyperparameters?.count == 2)
        // No proposal duplicates an observed, pending or sibling point.
        for (i, p) in batch.enumerated() {
            for other in o.observedX + [[0.5, 0.5]] + batch[..<i] {
                #expect(AcquisitionOptimizer.distance(p, other) > 1e-6)
            }
        }
    }

    @Test("Same seed and calls give the same proposals; another seed differs", arguments: [ProposalStrategy.qehvi, .qnehvi, .qlogehvi, .qlognehvi])
    func deterministic(strategy: ProposalStrategy) throws {
        let problem = BraninCurrin()
        func proposals(seed: UInt64) throws -> [[Double]] {
            var o = try MultiObjectiveOptimizer(quickConfiguration(strategy, seed: seed))
            let design = try o.ask(q: 8)
            try o.tell(x: design, y: design.map { try problem.evaluate($0) })
            let batch = try o.ask(q: 2)
            try o.tell(x: batch, y: batch.map { try problem.evaluate($0) })
            return batch + (try o.ask(q: 1, pending: [[0.2, 0.7]]))
        }
        let a = try proposals(seed: 4)
        #expect(a == (try proposals(seed: 4)))
        #expect(a != (try proposals(seed: 5)))
    }

    @Test("Bad configurations and observations are rejected with the field named")
    func validation() throws {
        #expect(throws: AcquisitionError.self) { try MultiObjectiveOptimizer(.init(dimension: 0, objectives: 2)) }
        #expect(throws: AcquisitionError.self) {
            try MultiObjectiveOptimizer(.init(dimension: 2, objectives: 2, referencePoint: [0]))
        }
        #expect(throws: AcquisitionError.self) { try MultiObjectiveOptimizer(.init(dimension: 2, objectives: 2, initialDesignSize: 1)) }
        var o = try MultiObjectiveOptimizer(.init(dimension: 2, objectives: 2))
        do {
            try o.tell(x: [[0.1, 1.5]], y: [[1, 2]])
            Issue.record("x outside the cube accepted")
        } catch let error as AcquisitionError {
            #expect(error.description.contains("tell[0].x"))
        }
        #expect(throws: AcquisitionError.self) { try o.tell(x: [[0.1, 0.2]], y: [[1, .nan]]) }
        #expect(throws: AcquisitionError.self) { try o.tell(x: [[0.1, 0.2]], y: []) }
        #expect(throws: AcquisitionError.self) { try o.ask(q: 0) }
        #expect(throws: AcquisitionError.self) { try o.ask(q: 1, pending: [[0.1]]) }
        #expect(o.observationCount == 0)
    }

    @Test("BraninCurrin: 8 Sobol + 3 batches of qEHVI (q = 2) beat 14 Sobol points on average")
    func beatsSobolOnBraninCurrin() throws {
        let problem = BraninCurrin()
        var qehvi = 0.0, sobol = 0.0
        for seed in UInt64(0)..<3 {
            qehvi += try runLoop(problem, quickConfiguration(.qehvi, seed: seed), iterations: 3, q: 2)
            sobol += try runLoop(problem, quickConfiguration(.sobol, seed: seed), iterations: 3, q: 2)
        }
        #expect(qehvi > sobol, "mean HV qEHVI \(qehvi / 3) vs Sobol \(sobol / 3)")
    }
}
