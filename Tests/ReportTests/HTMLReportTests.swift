import Foundation
import Testing

@testable import Report

/// A hand-made study: three strategies, two benchmarks, a partition with its profile.
func sampleInput(profile: Bool = true) -> ReportInput {
    var trials: [ReportTrial] = []
    let strategies = ["grid", "bambo", "layer<wise>"]
    var id: Int64 = 0
    for (s, strategy) in strategies.enumerated() {
        for k in 0..<6 {
            id += 1
            let t = Double(k) / 5
            let y = [t, 1 - t * t * (1 - 0.1 * Double(s))]
            trials.append(ReportTrial(
                id: id, strategy: strategy, method: s == 0 ? "ties" : "linear", weights: [t, t, t],
                benchmarks: ["arith": BenchmarkScore(accuracy: 0.3 + 0.5 * t, tokens: 20 + 60 * t), "mc": BenchmarkScore(accuracy: 0.5 + 0.2 * t, tokens: 5 + 10 * t)],
                objectives: k == 5 && s == 2 ? nil : y, pareto: false))
        }
    }
    // Pareto flags by brute force over the trials with objectives.
    let scored = trials.filter { $0.objectives != nil }
    for index in trials.indices {
        guard let y = trials[index].objectives else { continue }
        trials[index].pareto = !scored.contains { other in
            let z = other.objectives!
            return z[0] >= y[0] && z[1] >= y[1] && (z[0] > y[0] || z[1] > y[1])
        }
    }
    let partition = ReportPartition(
        layerDifferences: profile ? (0..<12).map { 0.1 + 0.05 * Double($0 * $0) / 10 } : [], blocks: [[0, 3], [4, 8], [9, 11]], norm: "l2",
        embeddingDifference: 0.5, headDifference: 0.7)
    return ReportInput(
        study: "demo & test", objectiveNames: ["reasoning", "efficiency"], objectiveNotes: ["accuracy", "tokens"], trials: trials,
        partition: partition, referencePoint: [0, 0])
}

@Suite struct HTMLReportTests {
    /// HV of 2-D points against the origin by coordinate compression (independent of `Hypervolume`):
    /// for each strip between consecutive distinct x values, the highest y of the points reaching past it.
    func stripHypervolume(_ points: [[Double]]) -> Double {
        let xs = Array(Set([0] + points.map { max(0, $0[0]) })).sorted()
        var area = 0.0
        for (left, right) in zip(xs, xs.dropFirst()) {
            area += (right - left) * (points.filter { $0[0] >= right }.map { max(0, $0[1]) }.max() ?? 0)
        }
        return area
    }

    @Test func hypervolumeCurvesMatchStripCountingPerStrategy() throws {
        let input = sampleInput()
        let curves = try HypervolumeHistory.curves(input)
        #expect(curves.map(\.strategy) == ["bambo", "grid", "layer<wise>"])
        for curve in curves {
            let trials = input.trials.filter { $0.strategy == curve.strategy }.sorted { $0.id < $1.id }
            #expect(curve.values.count == trials.count)
            for n in 1...trials.count {
                let expected = stripHypervolume(trials.prefix(n).compactMap(\.objectives))
                #expect(abs(curve.values[n - 1] - expected) < 1e-12, "\(curve.strategy) after \(n)")
            }
            #expect(zip(curve.values, curve.values.dropFirst()).allSatisfy { $0 <= $1 }, "never decreases")
        }
        // A point on an axis of the reference point adds nothing: the first trial of each strategy is (0, 1).
        #expect(curves.allSatisfy { $0.values[0] == 0 })
    }

    @Test func pageIsSelfContainedWithEveryFigureAndTheParetoTable() throws {
        let input = sampleInput()
        let html = try HTMLReport.render(input)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.lowercased().contains("<script"), "no scripts")
        // Nothing fetched: the only URL is the SVG namespace.
        let urls = html.components(separatedBy: "http").count - 1
        let namespaces = html.components(separatedBy: "http://www.w3.org/2000/svg").count - 1
        #expect(urls == namespaces && namespaces == 5)
        // Objective space, hypervolume, one per benchmark, partition: each with its own plot-area fill.
        for (index, id) in ["objective-space", "hypervolume", "metrics-arith", "metrics-mc", "partition"].enumerated() {
            #expect(html.contains("<svg id=\"\(id)\""), "\(id)")
            #expect(html.contains("class=\"plot-area\" x=\"64.00\" y=\"46.00\" width=\"480.00\" height=\"288.00\" fill=\"\(HTMLReport.plotBackground(index))\""), "\(id)")
        }
        #expect(Set((0..<5).map(HTMLReport.plotBackground)).count == 5)
        // Names are escaped, never raw markup.
        #expect(html.contains("layer&lt;wise&gt;") && !html.contains("layer<wise>"))
        #expect(html.contains("demo &amp; test"))
        // The reference point is stated.
        #expect(html.contains("reference point r = (0, 0)"))
        // The table lists exactly the Pareto trials.
        let table = String(html[html.range(of: "<h2>Pareto models")!.lowerBound...])
        let rows = table.components(separatedBy: "<tr><td>").dropFirst().map { String($0.prefix { $0 != "<" }) }
        #expect(Set(rows) == Set(input.trials.filter(\.pareto).map { String($0.id) }))
        #expect(!rows.isEmpty)
        // Every strategy is in the legend with its own colour.
        for (index, strategy) in input.strategies.enumerated() {
            #expect(html.contains(">\(strategy.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;"))</text>"))
            #expect(html.contains("fill=\"\(HTMLReport.palette[index])\""))
        }
    }

    @Test func frontIsDrawnAsAStaircaseThroughTheParetoPoints() throws {
        let input = sampleInput()
        let html = try HTMLReport.render(input)
        let svg = String(html[html.range(of: "<svg id=\"objective-space\"")!.lowerBound...].prefix { $0 != "\u{0}" })
        let path = try #require(svg.range(of: "<path d=\"M").map { String(svg[$0.upperBound...].prefix { $0 != "\"" }) })
        // One M plus a V and an H per further Pareto point.
        let front = input.trials.filter(\.pareto).count
        #expect(path.filter { $0 == "V" }.count == front - 1)
        #expect(path.filter { $0 == "H" }.count == front - 1)
    }

    @Test func partitionWithoutProfileDrawsTheBlocks() throws {
        let html = try HTMLReport.render(sampleInput(profile: false))
        #expect(html.contains("blocks (no profile stored)"))
        #expect(html.contains("Partition: 3 blocks over 12 layers"))
        #expect(html.contains(">B3</text>"))
    }

    @Test func niceTicksCoverTheData() {
        let scale = SVGPlot.Scale(covering: [0.13, 0.87], pixels: (0, 100))
        #expect(scale.low <= 0.13 && scale.high >= 0.87)
        let step = scale.ticks[1] - scale.ticks[0]
        #expect([0.1, 0.2, 0.5].contains { abs($0 - step) < 1e-12 })
        #expect(abs(scale(scale.low)) < 1e-9 && abs(scale(scale.high) - 100) < 1e-9)
    }
}
