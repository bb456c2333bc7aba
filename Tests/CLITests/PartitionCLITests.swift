import Foundation
import Testing

/// Brute-force hybrid cost minimum over all contiguous partitions (independent of the library).
private func bruteForceBlocks(_ d: [Double], k: Int, lambda: Double) -> [[Int]] {
    let target = d.reduce(0, +) / Double(k)
    func cost(_ i: Int, _ j: Int) -> Double {
        let values = Array(d[i...j])
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
        let dev = values.reduce(0, +) - target
        return variance + lambda * dev * dev
    }
    var best = (Double.infinity, [[Int]]())
    func search(_ start: Int, _ remaining: Int, _ acc: [[Int]], _ total: Double) {
        if remaining == 0 {
            if start == d.count, total < best.0 { best = (total, acc) }
            return
        }
        guard start < d.count else { return }
        for end in start..<d.count { search(end + 1, remaining - 1, acc + [[start, end]], total + cost(start, end)) }
    }
    search(0, k, [], 0)
    return best.1
}

private func writeProfile(_ d: [Double], to url: URL) throws {
    let object: [String: Any] = ["layerDifferences": d, "embeddingDifference": 0.5, "headDifference": 0.25, "norm": "l2"]
    try JSONSerialization.data(withJSONObject: object).write(to: url)
}

@Suite("bambo partition (from a saved profile)")
struct PartitionCLITests {
    @Test("--json prints one object with the DP-optimal blocks and the documented fields; --out writes the same")
    func jsonOutput() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = [0.1, 0.12, 0.11, 0.3, 0.35, 0.9, 1.4, 2.2, 2.0, 3.1]
        try writeProfile(d, to: dir.appendingPathComponent("profile.json"))
        let run = try BamboProcess.run(
            ["partition", "--profile", "profile.json", "--blocks", "4", "--lambda", "0.5", "--json", "--out", "p.json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(object["layerDifferences"] as? [Double] == d)
        #expect(object["blocks"] as? [[Int]] == bruteForceBlocks(d, k: 4, lambda: 0.5))
        #expect(object["lambda"] as? Double == 0.5)
        #expect(object["norm"] as? String == "l2")
        #expect(object["strategy"] as? String == "hybrid")
        #expect(object["cost"] is Double)
        let written = try Data(contentsOf: dir.appendingPathComponent("p.json"))
        #expect(String(decoding: written, as: UTF8.self) == run.stdout)
    }

    @Test("the picture shows every layer, the block summaries and the extra rows")
    func picture() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeProfile([1, 1, 5, 5, 5, 9], to: dir.appendingPathComponent("profile.json"))
        let run = try BamboProcess.run(["partition", "--profile", "profile.json", "--blocks", "3", "--strategy", "variance"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("B1: layers 0–1 (2)"))
        #expect(run.stdout.contains("B2: layers 2–4 (3)"))
        #expect(run.stdout.contains("B3: layers 5–5 (1)"))
        #expect(run.stdout.contains("embedding") && run.stdout.contains("head"))
        #expect(run.stdout.contains("layer 5"))
    }

    @Test("bad input exits non-zero with a message naming the problem", arguments: [
        (["partition", "--profile", "profile.json", "--blocks", "9"], "cannot split 4 layer(s) into 9 block(s)"),
        (["partition", "--profile", "missing.json", "--blocks", "2"], "missing.json"),
        (["partition", "--profile", "broken.json", "--blocks", "2"], "layerDifferences"),
        (["partition", "--model", "only-one", "--blocks", "2"], "need at least two models"),
        (["partition", "--profile", "profile.json", "--blocks", "2", "--lambda", "-1"], "--lambda"),
        (["partition", "--profile", "profile.json", "--blocks", "2", "--strategy", "best"], "strategy"),
    ])
    func badInput(arguments: [String], expected: String) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeProfile([1, 2, 3, 4], to: dir.appendingPathComponent("profile.json"))
        try Data(#"{"norm": "l2", "embeddingDifference": 0, "headDifference": 0}"#.utf8).write(to: dir.appendingPathComponent("broken.json"))
        let run = try BamboProcess.run(arguments, in: dir)
        #expect(run.status != 0)
        #expect(run.stderr.contains(expected), "stderr: \(run.stderr)")
    }
}
