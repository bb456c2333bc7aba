import Testing
@testable import Optimization

@Suite struct BoxDecompositionTests {
    /// Random fronts: continuous (general position) and integer (ties, duplicates, dominated points).
    static func fronts(objectives: Int) -> [[[Double]]] {
        (1...4).map { ParetoTestSupport.sphericalFront(count: 15 + 5 * Int($0), objectives: objectives, seed: $0) }
            + (1...4).map { ParetoTestSupport.integerPoints(count: 30, objectives: objectives, levels: 6, seed: $0) }
    }

    static func reference(for front: [[Double]], objectives: Int) -> [Double] {
        front.first!.first! >= 1 && front.first!.allSatisfy { $0 == $0.rounded() }
            ? [Double](repeating: 0.5, count: objectives) : [Double](repeating: 0.1, count: objectives)
    }

    @Test(arguments: [2, 3, 4])
    func dominatedCellsPartitionTheDominatedRegion(objectives: Int) throws {
        for front in Self.fronts(objectives: objectives) {
            let r = Self.reference(for: front, objectives: objectives)
            let cells = try BoxDecomposition.dominatedCells(front: front, referencePoint: r)
            let hypervolume = try Hypervolume.compute(front, referencePoint: r)
            let sum = cells.reduce(0) { $0 + $1.volume }
            #expect(abs(sum - hypervolume) <= 1e-12 * hypervolume)
            #expect(cells.allSatisfy { $0.volume > 0 && $0.volume.isFinite })
            #expect(cells.allSatisfy { cell in cell.lower.indices.allSatisfy { cell.lower[$0] >= r[$0] } })
            // Every cell lies below some front point (so inside the dominated region) …
            #expect(cells.allSatisfy { cell in front.contains { Pareto.dominates($0, cell.upper) || $0 == cell.upper } })
            // … and no two overlap.
            for i in cells.indices {
                for j in cells.indices where j > i {
                    #expect(cells[i].intersectionVolume(with: cells[j]) == 0)
                }
            }
        }
    }

    @Test(arguments: [2, 3, 4])
    func nonDominatedCellsPartitionTheRest(objectives: Int) throws {
        for front in Self.fronts(objectives: objectives) {
            let r = Self.reference(for: front, objectives: objectives)
            let open = try BoxDecomposition.nonDominatedCells(front: front, referencePoint: r)
            let dominated = try BoxDecomposition.dominatedCells(front: front, referencePoint: r)
            for i in open.indices {
                #expect(open[i].lower.allSatisfy { $0.isFinite })
                for j in open.indices where j > i {
                    #expect(open[i].intersectionVolume(with: open[j]) == 0)
                }
                for cell in dominated {
                    #expect(open[i].intersectionVolume(with: cell) == 0)
                }
                // No front point strictly dominates a cell's lower corner's neighbourhood: the cell's lower corner
                // is not strictly below any front point in every objective.
                #expect(!front.contains { point in point.indices.allSatisfy { point[$0] > open[i].lower[$0] } })
            }
            // Clipped to the box [r, top], both decompositions together fill it exactly.
            let top = (0..<objectives).map { m in front.map { $0[m] }.max()! + 1 }
            let box = HyperRectangle(lower: r, upper: top)
            let covered = open.reduce(0) { $0 + $1.intersectionVolume(with: box) }
                + dominated.reduce(0) { $0 + $1.volume }
            #expect(abs(covered - box.volume) <= 1e-12 * box.volume)
        }
    }

    @Test(arguments: [2, 3, 4])
    func inclusionExclusionOverCellsGivesTheImprovement(objectives: Int) throws {
        var generator = SplitMix64(seed: 5)
        for front in Self.fronts(objectives: objectives) {
            let r = Self.reference(for: front, objectives: objectives)
            let cells = try BoxDecomposition.nonDominatedCells(front: front, referencePoint: r)
            let scale = front.flatMap { $0 }.max()! * 1.1
            for q in 1...3 {
                let newPoints = (0..<q).map { _ in
                    (0..<objectives).map { _ in ParetoTestSupport.uniform(&generator) * scale }
                }
                let expected = try Hypervolume.improvement(of: newPoints, over: front, referencePoint: r)
                let value = try BoxDecomposition.hypervolumeImprovement(of: newPoints, cells: cells)
                #expect(abs(value - expected) <= 1e-12 * max(1, expected), "q = \(q)")
            }
        }
    }

    @Test func twoObjectiveCellsAreTheStaircase() throws {
        let front: [[Double]] = [[1, 3], [2, 2], [3, 1], [1, 1]]
        let dominated = try BoxDecomposition.dominatedCells(front: front, referencePoint: [0, 0])
        #expect(Set(dominated) == [
            HyperRectangle(lower: [0, 2], upper: [1, 3]), HyperRectangle(lower: [0, 1], upper: [2, 2]),
            HyperRectangle(lower: [0, 0], upper: [3, 1]),
        ])
        let open = try BoxDecomposition.nonDominatedCells(front: front, referencePoint: [0, 0])
        #expect(Set(open) == [
            HyperRectangle(lower: [0, 3], upper: [.infinity, .infinity]),
            HyperRectangle(lower: [1, 2], upper: [.infinity, 3]), HyperRectangle(lower: [2, 1], upper: [.infinity, 2]),
            HyperRectangle(lower: [3, 0], upper: [.infinity, 1]),
        ])
        // An empty front leaves one cell: everything above the reference point.
        #expect(try BoxDecomposition.nonDominatedCells(front: [], referencePoint: [0, 0, 0])
            == [HyperRectangle(lower: [0, 0, 0], upper: [.infinity, .infinity, .infinity])])
        #expect(try BoxDecomposition.dominatedCells(front: [[-1, 5]], referencePoint: [0, 0]) == [])
    }

    @Test func threeObjectiveCellCountIsLinear() throws {
        // In general position the non-dominated region of n points in 3-D has 2n + 1 local upper bounds
        // (Klamroth, Lacour & Vanderpooten 2015); merged slabs must give exactly that many cells, not O(n²).
        for n in [20, 40, 80] {
            let front = try Pareto.nonDominated(ParetoTestSupport.sphericalFront(count: n, objectives: 3, seed: 1))
            let cells = try BoxDecomposition.nonDominatedCells(front: front, referencePoint: [0, 0, 0])
            #expect(cells.count == 2 * front.count + 1, "n = \(front.count): \(cells.count) cells")
        }
    }

    @Test func improvementRejectsTooManyPoints() throws {
        let cells = try BoxDecomposition.nonDominatedCells(front: [[1, 1]], referencePoint: [0, 0])
        #expect(throws: ParetoError.self) {
            try BoxDecomposition.hypervolumeImprovement(of: Array(repeating: [2, 2], count: 21), cells: cells)
        }
        #expect(throws: ParetoError.objectiveCountMismatch(what: "newPoints", index: 0, expected: 2, found: 1)) {
            try BoxDecomposition.hypervolumeImprovement(of: [[2]], cells: cells)
        }
        #expect(try BoxDecomposition.hypervolumeImprovement(of: [], cells: cells) == 0)
    }
}

@Suite struct HypervolumeImprovementGradientTests {
    @Test(arguments: [2, 3, 4])
    func gradientMatchesFiniteDifferences(objectives: Int) throws {
        var generator = SplitMix64(seed: 17)
        let front = try Pareto.nonDominated(ParetoTestSupport.sphericalFront(count: 25, objectives: objectives, seed: 3))
        let r = [Double](repeating: 0.1, count: objectives)
        let cells = try BoxDecomposition.nonDominatedCells(front: front, referencePoint: r)
        for q in 1...3 {
            // Continuous random points sit on no kink with probability 1.
            let points = (0..<q).map { _ in (0..<objectives).map { _ in 0.2 + 0.9 * ParetoTestSupport.uniform(&generator) } }
            let (value, gradient) = try BoxDecomposition.hypervolumeImprovementWithGradient(of: points, cells: cells)
            #expect(value == (try BoxDecomposition.hypervolumeImprovement(of: points, cells: cells)))
            let h = 1e-6
            for i in 0..<q {
                for m in 0..<objectives {
                    var up = points
                    var down = points
                    up[i][m] += h
                    down[i][m] -= h
                    let difference = (try BoxDecomposition.hypervolumeImprovement(of: up, cells: cells)
                        - BoxDecomposition.hypervolumeImprovement(of: down, cells: cells)) / (2 * h)
                    #expect(abs(gradient[i][m] - difference) < 1e-6, "q = \(q), ∂/∂y[\(i)][\(m)]")
                }
            }
        }
    }

    @Test func dominatedPointsHaveNoGradient() throws {
        let cells = try BoxDecomposition.nonDominatedCells(front: [[2, 2]], referencePoint: [0, 0])
        let (value, gradient) = try BoxDecomposition.hypervolumeImprovementWithGradient(of: [[1, 1], [3, 1]], cells: cells)
        // [3, 1] adds the strip (2, 3] × [0, 1]; its y₀ moves the strip's right edge, its y₁ the height.
        #expect(value == 1)
        #expect(gradient == [[0, 0], [1, 1]])
    }
}
