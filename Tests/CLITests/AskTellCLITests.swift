import Foundation
import Testing

/// Drives `bambo ask-tell` through stdin/stdout like a user script, and `bambo bench optimizer`.
@Suite("CLI: ask-tell and bench optimizer")
struct AskTellCLITests {
    private func lines(_ run: BamboRun) -> [[String: Any]] {
        run.stdout.split(separator: "\n").map { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["unparsed": String(line)]
        }
    }

    private func points(_ answer: [String: Any]) -> [[Double]] {
        (answer["x"] as? [[Any]])?.map { $0.compactMap { ($0 as? NSNumber)?.doubleValue } } ?? []
    }

    @Test("A session: config, initial design, tells, model proposals with pending; malformed lines answered with errors")
    func session() throws {
        // The black box: two objectives on [0,1]^2, maximized.
        func f(_ x: [Double]) -> [Double] { [-(x[0] - 0.3) * (x[0] - 0.3) - x[1], -(x[0] - 0.7) * (x[0] - 0.7) - (1 - x[1])] }
        func tellLine(_ xs: [[Double]]) -> String {
            "{\"tell\": [" + xs.map { "{\"x\": \($0), \"y\": \(f($0))}" }.joined(separator: ", ") + "]}"
        }
        // First pass: get the initial design (the session is deterministic for its seed).
        let header = #"{"dim": 2, "objectives": 2, "seed": 3, "acquisition": "qehvi", "initial": 4, "restarts": 2, "rawSamples": 64, "mcSamples": 32}"#
        let first = try BamboProcess.run(["ask-tell"], input: header + "\n" + #"{"ask": 4}"# + "\n")
        #expect(first.status == 0, "\(first.stderr)")
        let firstAnswers = lines(first)
        #expect(firstAnswers.count == 2)
        let design = points(firstAnswers[1])
        #expect(design.count == 4)

        let input = [
            "not json",
            #"{"ask": 2}"#.replacingOccurrences(of: "ask", with: "dim"),  // before a valid header: a bad header
            header,
            #"{"ask": 4}"#,
            "",
            tellLine(design),
            #"{"ask": 0}"#,
            #"{"ask": 2, "pending": [[0.5]]}"#,
            #"{"tell": [{"x": [0.1, 0.2]}]}"#,
            #"{"tell": [{"x": [0.1, 0.2], "y": [1, 2, 3]}]}"#,
            #"{"frobnicate": 1}"#,
            "[1, 2]",
            #"{"ask": 2, "pending": [[0.5, 0.5]]}"#,
        ].joined(separator: "\n") + "\n"
        let run = try BamboProcess.run(["ask-tell"], input: input)
        #expect(run.status == 0, "\(run.stderr)")
        let answers = lines(run)
        #expect(answers.count == 12, "\(run.stdout)")  // the blank line gets no answer
        guard answers.count == 12 else { return }
        #expect(answers[0]["error"] != nil)
        #expect(answers[1]["error"] != nil)
        #expect(answers[2]["ok"] as? Bool == true)
        #expect(points(answers[3]) == design, "the initial design is deterministic for the seed")
        #expect(answers[4]["observations"] as? Int == 4)
        for i in 5...10 { #expect(answers[i]["error"] != nil, "line \(i): \(answers[i])") }
        #expect((answers[8]["error"] as? String)?.contains("tell[0].y") == true)
        let proposals = points(answers[11])
        #expect(proposals.count == 2)
        for p in proposals {
            #expect(p.count == 2 && p.allSatisfy { (0...1).contains($0) })
            #expect(!design.contains(p) && p != [0.5, 0.5])
        }
    }

    @Test("incumbentSamples is accepted in the header (0 switches it off) and checked")
    func incumbentSamples() throws {
        let bad = try BamboProcess.run(["ask-tell"], input: #"{"dim": 2, "objectives": 2, "seed": 0, "acquisition": "qehvi", "incumbentSamples": -1}"# + "\n")
        #expect(bad.status == 0)
        #expect(bad.stdout.contains("incumbentSamples"), "\(bad.stdout)")
        let off = try BamboProcess.run(["ask-tell"], input: #"{"dim": 2, "objectives": 2, "seed": 0, "acquisition": "qehvi", "incumbentSamples": 0}"# + "\n")
        #expect(off.stdout == "{\"ok\": true}\n", "\(off.stdout)")
    }

    @Test("EOF right after the header ends the session cleanly; empty input too")
    func eof() throws {
        let run = try BamboProcess.run(["ask-tell"], input: #"{"dim": 1, "objectives": 1, "seed": 0, "acquisition": "qnehvi"}"#)
        #expect(run.status == 0)
        #expect(run.stdout == "{\"ok\": true}\n")
        let empty = try BamboProcess.run(["ask-tell"], input: "")
        #expect(empty.status == 0 && empty.stdout.isEmpty)
    }

    @Test("bench optimizer --json reports one hypervolume per iteration plus the design, and timings")
    func benchOptimizer() throws {
        let run = try BamboProcess.run(["bench", "optimizer", "--problem", "branin-currin", "--iterations", "2", "--batch", "2",
                                        "--restarts", "2", "--raw-samples", "32", "--mc-samples", "16", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let hypervolumes = try #require(object["hypervolumes"] as? [Double])
        #expect(hypervolumes.count == 3)
        #expect(zip(hypervolumes, hypervolumes.dropFirst()).allSatisfy { $0 <= $1 })
        #expect((object["fitSeconds"] as? [Double])?.count == 2)
        #expect((object["acquisitionSeconds"] as? [Double])?.count == 2)
        #expect(object["finalHypervolume"] as? Double == hypervolumes.last)
        let bad = try BamboProcess.run(["bench", "optimizer", "--problem", "nope"])
        #expect(bad.status != 0 && bad.stderr.contains("--problem"))
        let badDim = try BamboProcess.run(["bench", "optimizer", "--problem", "branin-currin", "--dim", "3"])
        #expect(badDim.status != 0 && badDim.stderr.contains("branin-currin"))
    }
}
