import Archive
import BamboProtocol
import Foundation
import Testing

@testable import Coordinator

@Suite struct StudyReportTests {
    /// HV of 2-D points against the origin by coordinate compression: for each strip between
    /// consecutive distinct x values, the highest y of the points reaching past the strip.
    func bruteForceHypervolume(_ points: [[Double]]) -> Double {
        let xs = Array(Set([0] + points.map { max(0, $0[0]) })).sorted()
        var area = 0.0
        for (left, right) in zip(xs, xs.dropFirst()) {
            let height = points.filter { $0[0] >= right }.map { max(0, $0[1]) }.max() ?? 0
            area += (right - left) * height
        }
        return area
    }

    @Test func frontAndHypervolumeOfStoredObjectives() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Archive.open(at: directory.appendingPathComponent("s.sqlite"))
        defer { try? archive.close() }
        try archive.createStudy(name: "r", config: ["x": 1], at: Date())
        var rng = SeededRandom(seed: 7)
        let objectives: [[Double]] = (0..<25).map { _ in
            [Double(rng.next() % 1000) / 500 - 0.2, Double(rng.next() % 1000) / 500 - 0.2]
        }
        let ids = try archive.addTrials(objectives.map { _ in [0.5, 0.5] }, origin: .sobol, strategy: "bambo", at: Date())
        var values: [Int64: [String: Double]?] = [:]
        for (id, y) in zip(ids, objectives) {
            let attempt = try archive.recordDispatch(trial: id, worker: "w", leaseDeadline: Date(), at: Date())
            _ = try archive.recordResult(
                trial: id, attempt: attempt, worker: "w", metrics: Metrics(benchmarks: ["b": .init(accuracy: 0.5, tokens: 1)]),
                durations: .init(merge: 0, evaluate: 0), at: Date())
            values[id] = ["a": y[0], "b": y[1]]
        }
        try archive.setObjectives(values, at: Date())
        let report = try StudyReport.make(archive: archive, objectiveNames: ["a", "b"])
        #expect(report.trials.count == 25)
        #expect(abs(report.hypervolume - bruteForceHypervolume(objectives)) < 1e-9)
        // Pareto flags: a trial is on the front exactly when no other trial dominates it.
        for (index, trial) in report.trials.enumerated() {
            let y = objectives[index]
            let dominated = objectives.contains { $0[0] >= y[0] && $0[1] >= y[1] && ($0[0] > y[0] || $0[1] > y[1]) }
            #expect(trial.pareto == !dominated)
        }
        let csv = report.csv(objectiveNames: ["a", "b"])
        #expect(csv.hasPrefix("trial,strategy,method,pareto,w0,w1,a,b,b.accuracy,b.tokens\n"))
    }

    @Test func eventLinesForPeople() {
        let event = EventRecord(
            seq: 12, time: Date(timeIntervalSince1970: 0), kind: "trial.progress",
            data: ["trial": 3, "attempt": 1, "worker": "gpu-1", "phase": "merge", "done": 5, "total": 10])
        #expect(EventFormatter.line(event, color: false) == "00:00:00.000 #12 trial 3 merge 5/10 [##########..........] on gpu-1")
        #expect(EventFormatter.line(event, color: true).hasPrefix("\u{1B}[2m"))
        let unknown = EventRecord(seq: 1, time: Date(timeIntervalSince1970: 0), kind: "custom.kind", data: ["k": "v"])
        #expect(EventFormatter.line(unknown, color: false) == #"00:00:00.000 #1 custom.kind {"k":"v"}"#)
    }
}
