import Testing
@testable import Optimization

@Suite struct DasDennisTests {
    @Test(arguments: [(2, 5, 6), (3, 12, 91), (5, 4, 70), (3, 1, 3), (1, 3, 1), (4, 6, 84)])
    func countsAreBinomial(objectives: Int, divisions: Int, expected: Int) throws {
        #expect(DasDennis.count(objectives: objectives, divisions: divisions) == expected)
        let directions = try DasDennis.referenceDirections(objectives: objectives, divisions: divisions)
        #expect(directions.count == expected)
        #expect(Set(directions).count == expected)
        for direction in directions {
            #expect(direction.count == objectives)
            #expect(abs(direction.reduce(0, +) - 1) < 1e-12)
            #expect(direction.allSatisfy { $0 >= 0 && abs($0 * Double(divisions) - ($0 * Double(divisions)).rounded()) < 1e-9 })
        }
        #expect(directions.first == [1] + [Double](repeating: 0, count: objectives - 1))
    }

    @Test func rejectsBadArguments() {
        #expect(throws: ParetoError.self) { try DasDennis.referenceDirections(objectives: 0, divisions: 3) }
        #expect(throws: ParetoError.self) { try DasDennis.referenceDirections(objectives: 3, divisions: 0) }
        #expect(throws: ParetoError.self) { try DasDennis.referenceDirections(objectives: 10, divisions: 40) }
        #expect(DasDennis.count(objectives: 60, divisions: 1_000_000) == nil)
    }
}
