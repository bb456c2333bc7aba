import Testing
@testable import Optimization

/// Reference values printed by Tests/OptimizationTests/Scripts/make_sobol_fixtures.py with scipy 1.17.1
/// (`scipy.stats.qmc.Sobol(d, scramble=False)`, which includes the origin as point 0).
@Suite struct SobolTests {
    @Test func firstPointsMatchScipyInFourDimensions() throws {
        let expected: [[Double]] = [
            [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.75, 0.25, 0.25, 0.25], [0.25, 0.75, 0.75, 0.75],
            [0.375, 0.375, 0.625, 0.875], [0.875, 0.875, 0.125, 0.375], [0.625, 0.125, 0.875, 0.625],
            [0.125, 0.625, 0.375, 0.125],
        ]
        var sobol = try SobolSequence(dimension: 4, scramble: false)
        #expect(try sobol.draw(8) == expected)
    }

    static let coordinates = [0, 1, 2, 99, 499, 1000, 1110]

    @Test func pointsMatchScipyUpToDimension1111() throws {
        // Points 0..<32 at coordinates [0, 1, 2, 99, 499, 1000, 1110] of the 1111-dimensional sequence.
        let expected: [[Double]] = [
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
            [0.75, 0.25, 0.25, 0.75, 0.25, 0.25, 0.75], [0.25, 0.75, 0.75, 0.25, 0.75, 0.75, 0.25],
            [0.375, 0.375, 0.625, 0.875, 0.625, 0.875, 0.875], [0.875, 0.875, 0.125, 0.375, 0.125, 0.375, 0.375],
            [0.625, 0.125, 0.875, 0.125, 0.875, 0.625, 0.125], [0.125, 0.625, 0.375, 0.625, 0.375, 0.125, 0.625],
            [0.1875, 0.3125, 0.9375, 0.9375, 0.4375, 0.8125, 0.3125],
            [0.6875, 0.8125, 0.4375, 0.4375, 0.9375, 0.3125, 0.8125],
            [0.9375, 0.0625, 0.6875, 0.1875, 0.1875, 0.5625, 0.5625],
            [0.4375, 0.5625, 0.1875, 0.6875, 0.6875, 0.0625, 0.0625],
            [0.3125, 0.1875, 0.3125, 0.0625, 0.8125, 0.1875, 0.6875],
            [0.8125, 0.6875, 0.8125, 0.5625, 0.3125, 0.6875, 0.1875],
            [0.5625, 0.4375, 0.0625, 0.8125, 0.5625, 0.4375, 0.4375],
            [0.0625, 0.9375, 0.5625, 0.3125, 0.0625, 0.9375, 0.9375],
            [0.09375, 0.46875, 0.46875, 0.03125, 0.34375, 0.59375, 0.40625],
            [0.59375, 0.96875, 0.96875, 0.53125, 0.84375, 0.09375, 0.90625],
            [0.84375, 0.21875, 0.21875, 0.78125, 0.09375, 0.84375, 0.65625],
            [0.34375, 0.71875, 0.71875, 0.28125, 0.59375, 0.34375, 0.15625],
            [0.46875, 0.09375, 0.84375, 0.90625, 0.96875, 0.46875, 0.53125],
            [0.96875, 0.59375, 0.34375, 0.40625, 0.46875, 0.96875, 0.03125],
            [0.71875, 0.34375, 0.59375, 0.15625, 0.71875, 0.21875, 0.28125],
            [0.21875, 0.84375, 0.09375, 0.65625, 0.21875, 0.71875, 0.78125],
            [0.15625, 0.15625, 0.53125, 0.96875, 0.15625, 0.28125, 0.21875],
            [0.65625, 0.65625, 0.03125, 0.46875, 0.65625, 0.78125, 0.71875],
            [0.90625, 0.40625, 0.78125, 0.21875, 0.40625, 0.03125, 0.96875],
            [0.40625, 0.90625, 0.28125, 0.71875, 0.90625, 0.53125, 0.46875],
            [0.28125, 0.28125, 0.15625, 0.09375, 0.53125, 0.65625, 0.84375],
            [0.78125, 0.78125, 0.65625, 0.59375, 0.03125, 0.15625, 0.34375],
            [0.53125, 0.03125, 0.40625, 0.84375, 0.78125, 0.90625, 0.09375],
            [0.03125, 0.53125, 0.90625, 0.34375, 0.28125, 0.40625, 0.59375],
        ]
        var sobol = try SobolSequence(dimension: 1111, scramble: false)
        let points = try sobol.draw(32)
        #expect(points.map { point in Self.coordinates.map { point[$0] } } == expected)
        // Points 1000..<1003 exercise m_1 … m_10.
        let later: [[Double]] = [
            [0.2197265625, 0.0966796875, 0.5185546875, 0.1865234375, 0.2548828125, 0.5654296875, 0.3701171875],
            [0.7197265625, 0.5966796875, 0.0185546875, 0.6865234375, 0.7548828125, 0.0654296875, 0.8701171875],
            [0.9697265625, 0.3466796875, 0.7685546875, 0.9365234375, 0.0048828125, 0.8154296875, 0.6201171875],
        ]
        try sobol.fastForward(1000 - 32)
        #expect(try sobol.draw(3).map { point in Self.coordinates.map { point[$0] } } == later)
    }

    @Test func deepPointUsesTheDirectionRecurrence() throws {
        // Point 1_000_003 (≈ 2^20) needs m_k beyond every initial degree carried, i.e. the recurrence.
        let expected = [0.2764749526977539, 0.5619192123413086, 0.07799625396728516, 0.04960346221923828,
                        0.901423454284668, 0.23240947723388672, 0.15498828887939453]
        var sobol = try SobolSequence(dimension: 1111, scramble: false)
        try sobol.fastForward(1_000_003)
        let point = sobol.next()
        #expect(Self.coordinates.map { point[$0] } == expected)
    }

    @Test func fastForwardAgreesWithDrawing() throws {
        for scramble in [false, true] {
            var drawn = try SobolSequence(dimension: 7, scramble: scramble, seed: 11)
            _ = try drawn.draw(77)
            var skipped = try SobolSequence(dimension: 7, scramble: scramble, seed: 11)
            try skipped.fastForward(77)
            #expect(drawn.next() == skipped.next())
            #expect(drawn.index == 78 && skipped.index == 78)
        }
    }

    @Test func scrambledSequenceIsSeededAndKeepsTheNetProperty() throws {
        var a = try SobolSequence(dimension: 5, seed: 42)
        var b = try SobolSequence(dimension: 5, seed: 42)
        var c = try SobolSequence(dimension: 5, seed: 43)
        let pointsA = try a.draw(256)
        let pointsB = try b.draw(256)
        let pointsC = try c.draw(256)
        #expect(pointsA == pointsB)
        #expect(pointsA != pointsC)
        #expect(pointsA[0] != [0, 0, 0, 0, 0])
        // Each coordinate of the first 2^8 points hits every interval [k/256, (k+1)/256) exactly once.
        for d in 0..<5 {
            let cells = Set(pointsA.map { Int($0[d] * 256) })
            #expect(cells.count == 256)
        }
        // Coordinates 1 and 2 of Sobol points form a (0, m, 2)-net: every 16 × 16 elementary box of the
        // unit square (area 1/256) holds exactly one of the 256 points, scrambled or not.
        let boxes = Set(pointsA.map { Int($0[0] * 16) * 16 + Int($0[1] * 16) })
        #expect(boxes.count == 256)
        #expect(pointsA.allSatisfy { $0.allSatisfy { $0 >= 0 && $0 < 1 } })
    }

    @Test func rejectsBadArguments() throws {
        #expect(throws: SobolError.dimensionOutOfRange(dimension: 0, maximum: 1111)) {
            try SobolSequence(dimension: 0)
        }
        #expect(throws: SobolError.dimensionOutOfRange(dimension: 1112, maximum: 1111)) {
            try SobolSequence(dimension: 1112)
        }
        var sobol = try SobolSequence(dimension: 2)
        #expect(throws: SobolError.invalidCount(-1)) { try sobol.draw(-1) }
        #expect(throws: SobolError.invalidCount(-5)) { try sobol.fastForward(-5) }
    }

    @Test func normalSamplesHaveStandardMoments() throws {
        let samples = try SobolSequence.normalSamples(count: 1024, dimension: 6, seed: 3)
        #expect(samples.count == 1024 && samples.allSatisfy { $0.count == 6 })
        for d in 0..<6 {
            let values = samples.map { $0[d] }
            #expect(values.allSatisfy { $0.isFinite })
            let mean = values.reduce(0, +) / 1024
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 1023
            // QMC errors are far below the i.i.d. 1/√n ≈ 0.03 here.
            #expect(abs(mean) < 0.01)
            #expect(abs(variance - 1) < 0.03)
        }
        let again = try SobolSequence.normalSamples(count: 1024, dimension: 6, seed: 3)
        #expect(samples == again)
    }
}
