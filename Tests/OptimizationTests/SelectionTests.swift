import Testing
@testable import Optimization

@Suite struct SelectionTests {
    /// A hand-made normalized front; cosines with (1, 0): 1, .874, .707, .486, 0, .786;
    /// with (½, ½): .707, .962, 1, .962, .707, .993.
    static let front: [[Double]] = [[1.0, 0.0], [0.9, 0.5], [0.6, 0.6], [0.5, 0.9], [0.0, 1.0], [0.7, 0.55]]

    @Test func topKByCosineThenBestSum() throws {
        #expect(try Selection.bestForPreference(objectives: Self.front, preference: [1, 0], topK: 1) == 0)
        #expect(try Selection.bestForPreference(objectives: Self.front, preference: [1, 0], topK: 2) == 1)
        #expect(try Selection.bestForPreference(objectives: Self.front, preference: [0.5, 0.5], topK: 1) == 2)
        #expect(try Selection.bestForPreference(objectives: Self.front, preference: [0.5, 0.5], topK: 2) == 5)
        // Top-4 = {2, 5, 1, 3}: 1 and 3 tie on sum and similarity, the lower index wins.
        #expect(try Selection.bestForPreference(objectives: Self.front, preference: [0.5, 0.5], topK: 4) == 1)
        // All points: 1 and 3 tie on sum (1.4); 3 is closer to (0, 1).
        #expect(try Selection.bestForPreference(objectives: Self.front, preference: [0, 1], topK: 100) == 3)
    }

    @Test func perObjectiveBestsAndFullSelection() throws {
        #expect(try Selection.perObjectiveBests(objectives: Self.front) == [0, 4])
        let selection = try Selection.select(objectives: Self.front, divisions: 2, topK: 2)
        #expect(selection.preferences == [[1, 0], [0.5, 0.5], [0, 1]])
        #expect(selection.choiceForPreference == [1, 5, 3])
        #expect(selection.perObjectiveBests == [0, 4])
        #expect(selection.selectedIndices == [0, 1, 3, 4, 5])
    }

    @Test func normalizationAndCosine() throws {
        #expect(try Selection.minMaxNormalized([[2, 10], [4, 10], [3, 10]]) == [[0, 0], [1, 0], [0.5, 0]])
        #expect(Selection.cosineSimilarity([0, 0], [1, 1]) == 0)
        #expect(abs(Selection.cosineSimilarity([1, 1], [2, 2]) - 1) < 1e-15)
    }

    @Test func rejectsBadInput() {
        #expect(throws: ParetoError.empty(what: "objectives")) {
            try Selection.bestForPreference(objectives: [], preference: [1], topK: 1)
        }
        #expect(throws: ParetoError.objectiveCountMismatch(what: "preference", index: 0, expected: 2, found: 3)) {
            try Selection.bestForPreference(objectives: Self.front, preference: [1, 0, 0], topK: 1)
        }
        #expect(throws: ParetoError.self) { try Selection.bestForPreference(objectives: Self.front, preference: [1, 0], topK: 0) }
    }
}
