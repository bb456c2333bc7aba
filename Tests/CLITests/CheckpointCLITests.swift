import Foundation
import Testing

@Suite("bambo synthesize → profile → partition on real checkpoint files")
struct CheckpointCLITests {
    @Test("the picture and the JSON agree with an independent brute-force partition of the printed profile")
    func endToEnd() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let made = try BamboProcess.run(["synthesize", "--out", "fam", "--layers", "8", "--hidden", "128", "--shard-mb", "1"], in: dir)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("fam/thinking/model.safetensors.index.json").path))

        let profile = try BamboProcess.run(["profile", "--model", "fam/instruct", "--model", "fam/thinking", "--json"], in: dir)
        #expect(profile.status == 0, "\(profile.stderr)")
        let profileObject = try #require(try JSONSerialization.jsonObject(with: Data(profile.stdout.utf8)) as? [String: Any])
        let d = try #require(profileObject["layerDifferences"] as? [Double])
        #expect(d.count == 8)
        #expect(zip(d, d.dropFirst()).allSatisfy { $0 < $1 }, "synthetic deltas grow with depth: \(d)")
        #expect(profile.stderr.contains("profiling"), "progress goes to stderr")

        let partition = try BamboProcess.run(
            ["partition", "--model", "fam/instruct", "--model", "fam/thinking", "--base", "fam/base", "--blocks", "3", "--json"], in: dir)
        #expect(partition.status == 0, "\(partition.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(partition.stdout.utf8)) as? [String: Any])
        let blocks = try #require(object["blocks"] as? [[Int]])
        #expect(object["layerDifferences"] as? [Double] == d, "the base cancels out of Eq. 4")
        #expect(blocks == bestBlocks(d, k: 3))
    }

    @Test("a missing model directory is named in the error")
    func missingModel() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try BamboProcess.run(["partition", "--model", "nowhere/a", "--model", "nowhere/b", "--blocks", "2"], in: dir)
        #expect(run.status != 0)
        #expect(run.stderr.contains("nowhere/a"), "stderr: \(run.stderr)")
    }
}

/// Exhaustive hybrid (λ = 1) optimum, written independently of the library.
private func bestBlocks(_ d: [Double], k: Int) -> [[Int]] {
    let target = d.reduce(0, +) / Double(k)
    func cost(_ i: Int, _ j: Int) -> Double {
        let v = Array(d[i...j])
        let mean = v.reduce(0, +) / Double(v.count)
        let dev = v.reduce(0, +) - target
        return v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) + dev * dev
    }
    var best = (Double.infinity, [[Int]]())
    for a in 0..<(d.count - 2) {
        for b in (a + 1)..<(d.count - 1) {
            let total = cost(0, a) + cost(a + 1, b) + cost(b + 1, d.count - 1)
            if total < best.0 { best = (total, [[0, a], [a + 1, b], [b + 1, d.count - 1]]) }
        }
    }
    return best.1
}
