import Testing
@testable import Optimization

@Suite struct HypervolumeTests {
    @Test(arguments: [1, 2, 3, 4, 5])
    func integerFrontsMatchExactGridCounting(objectives: Int) throws {
        let levels = objectives >= 4 ? 5 : 8
        for seed: UInt64 in 1...6 {
            let points = ParetoTestSupport.integerPoints(count: 25, objectives: objectives, levels: levels, seed: seed)
            let reference = [Double](repeating: 0, count: objectives)
            let expected = ParetoTestSupport.gridCountHypervolume(points, objectives: objectives, levels: levels)
            #expect(try Hypervolume.compute(points, referencePoint: reference) == expected)
        }
    }

    @Test(arguments: [2, 3, 4, 5])
    func continuousFrontsMatchInclusionExclusion(objectives: Int) throws {
        for seed: UInt64 in 1...10 {
            let points = ParetoTestSupport.sphericalFront(count: 10, objectives: objectives, seed: seed)
            let reference = [Double](repeating: 0.1, count: objectives)
            let expected = ParetoTestSupport.inclusionExclusionHypervolume(points, referencePoint: reference)
            let value = try Hypervolume.compute(points, referencePoint: reference)
            #expect(abs(value - expected) <= 1e-12 * expected)
        }
    }

    @Test(arguments: [2, 3, 4])
    func largerFrontsAgreeWithMonteCarloCounting(objectives: Int) throws {
        let points = ParetoTestSupport.sphericalFront(count: 80, objectives: objectives, seed: 99)
        let reference = [Double](repeating: 0, count: objectives)
        let value = try Hypervolume.compute(points, referencePoint: reference)
        // Fraction of uniform samples in [0, 1]^M that some point dominates, and its standard error.
        var generator = SplitMix64(seed: 7)
        let samples = 30_000
        var hits = 0
        for _ in 0..<samples {
            let z = (0..<objectives).map { _ in ParetoTestSupport.uniform(&generator) }
            if points.contains(where: { point in (0..<objectives).allSatisfy { point[$0] >= z[$0] } }) { hits += 1 }
        }
        let estimate = Double(hits) / Double(samples)
        let standardError = (estimate * (1 - estimate) / Double(samples)).squareRoot()
        #expect(abs(value - estimate) < 5 * standardError)
    }

    @Test func pointsNotAboveTheReferenceCountForNothing() throws {
        #expect(try Hypervolume.compute([], referencePoint: [0, 0]) == 0)
        #expect(try Hypervolume.compute([[1, 0], [0, 5], [-1, 3]], referencePoint: [0, 0]) == 0)
        #expect(try Hypervolume.compute([[2, 3], [1, 0]], referencePoint: [0, 0]) == 6)
        #expect(try Hypervolume.compute([[2, 3, 4], [2, 3, 4]], referencePoint: [1, 1, 1]) == 6)
    }

    @Test func improvementIsTheDifference() throws {
        let front: [[Double]] = [[1, 3], [2, 2], [3, 1]]
        #expect(try Hypervolume.compute(front, referencePoint: [0, 0]) == 6)
        #expect(try Hypervolume.improvement(of: [[2.5, 2.5]], over: front, referencePoint: [0, 0]) == 1.25)
        #expect(try Hypervolume.improvement(of: [[0.5, 0.5]], over: front, referencePoint: [0, 0]) == 0)
    }

    @Test func rejectsMismatchedReference() {
        #expect(throws: ParetoError.objectiveCountMismatch(what: "points", index: 0, expected: 3, found: 2)) {
            try Hypervolume.compute([[1, 2]], referencePoint: [0, 0, 0])
        }
        #expect(throws: ParetoError.nonFiniteValue(what: "referencePoint", index: 0, objective: 0)) {
            try Hypervolume.compute([[1, 2]], referencePoint: [.infinity, 0])
        }
        #expect(throws: ParetoError.empty(what: "referencePoint")) { try Hypervolume.compute([], referencePoint: []) }
    }
}
