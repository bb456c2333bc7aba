import Testing
@testable import Optimization

@Suite struct ParetoTests {
    @Test(arguments: [1, 2, 3, 4])
    func nonDominatedFilterMatchesBruteForce(objectives: Int) throws {
        for seed: UInt64 in 1...8 {
            let tied = ParetoTestSupport.integerPoints(count: 60, objectives: objectives, levels: 6, seed: seed)
            #expect(try Pareto.nonDominatedIndices(tied) == ParetoTestSupport.bruteForceNonDominated(tied))
            let continuous = ParetoTestSupport.sphericalFront(count: 80, objectives: objectives, seed: seed)
            #expect(try Pareto.nonDominatedIndices(continuous) == ParetoTestSupport.bruteForceNonDominated(continuous))
        }
    }

    @Test func duplicatesAreKeptOnceUnlessAsked() throws {
        let points: [[Double]] = [[1, 2], [2, 1], [1, 2], [0, 0], [2, 1], [1.5, 1.5]]
        #expect(try Pareto.nonDominatedIndices(points) == [0, 1, 5])
        #expect(try Pareto.nonDominatedIndices(points, keepDuplicates: true) == [0, 1, 2, 4, 5])
        let three: [[Double]] = [[1, 2, 3], [1, 2, 3], [1, 2, 2], [3, 2, 1]]
        #expect(try Pareto.nonDominatedIndices(three) == [0, 3])
        #expect(try Pareto.nonDominatedIndices(three, keepDuplicates: true) == [0, 1, 3])
        #expect(try Pareto.nonDominated([[5.0], [7], [7], [1]], keepDuplicates: true) == [[7], [7]])
        #expect(try Pareto.nonDominatedIndices([]) == [])
    }

    @Test func dominanceIsStrict() {
        #expect(Pareto.dominates([2, 2], [1, 2]))
        #expect(!Pareto.dominates([2, 2], [2, 2]))
        #expect(!Pareto.dominates([3, 1], [1, 3]))
    }

    @Test func referencePointFromNadir() throws {
        // Front {(1, 4), (3, 2)} plus a dominated point: nadir (1, 2), ideal (3, 4), range (2, 2).
        let r = try Pareto.referencePoint(fromNadirOf: [[1, 4], [3, 2], [0.5, 1]])
        #expect(r == [1 - 0.2, 2 - 0.2])
        // One point: the range falls back to |nadir|, and to 1 where that is 0.
        #expect(try Pareto.referencePoint(fromNadirOf: [[-2, 0]], scale: 0.5) == [-3, -0.5])
    }

    @Test func rejectsBadInput() {
        #expect(throws: ParetoError.objectiveCountMismatch(what: "points", index: 1, expected: 2, found: 3)) {
            try Pareto.nonDominatedIndices([[1, 2], [1, 2, 3]])
        }
        #expect(throws: ParetoError.nonFiniteValue(what: "points", index: 0, objective: 1)) {
            try Pareto.nonDominatedIndices([[1, .nan]])
        }
        #expect(throws: ParetoError.empty(what: "points")) { try Pareto.referencePoint(fromNadirOf: []) }
        #expect(throws: ParetoError.self) { try Pareto.referencePoint(fromNadirOf: [[1]], scale: 0) }
    }
}
