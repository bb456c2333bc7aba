import Archive
import BamboProtocol
import Coordinator
import Foundation
import Merging
import Testing
import Yams

/// `bambo export` (json, csv, mergekit, html), `bambo select` and `bambo materialize`: on a real study
/// (coordinator + worker processes, real merges, an `exec` evaluator over two benchmarks), and on
/// archives written through the Archive API where a hand-made front or a failed trial is needed.
@Suite("study tools: export, select, materialize")
struct StudyToolsTests {
    // MARK: selection on a hand-made front

    /// Front (reasoning, efficiency): T1 (1, 0), T2 (0.9, 0.5), T3 (0.7, 0.8), T4 (0.4, 0.95), T5 (0, 1);
    /// T6 (0.5, 0.4) is dominated (by T2 and T3).
    /// Preference p = (0.7, 0.3), |p| = √0.58 = 0.761577. Cosine similarities by hand:
    ///   T1 0.7 / 0.761577 = 0.9191;            T2 (0.63 + 0.15) / (0.761577 · 1.029563) = 0.9948;
    ///   T3 (0.49 + 0.24) / (0.761577 · 1.063015) = 0.9017;  T4 (0.28 + 0.285) / (0.761577 · 1.030776) = 0.7197;
    ///   T5 0.3 / 0.761577 = 0.3939             (T6 would be 0.9638, but it is not on the front).
    /// Ranked: T2, T1, T3, T4, T5. Sums: T2 1.4, T1 1.0, T3 1.5.
    ///   K = 1 → T2;  K = 2 → {T2, T1} → T2 (1.4 > 1.0);  K = 3 → {T2, T1, T3} → T3 (1.5).
    /// Preference (0, 1): cosines T5 1, T4 0.9216, T3 0.7526 → K = 1 → T5; K = 3 → T3 (sum 1.5 > 1.35 > 1).
    @Test func selectionOnAHandMadeFront() throws {
        let study = try HandMadeStudy(points: ["bambo": [[1, 0], [0.9, 0.5], [0.7, 0.8], [0.4, 0.95], [0, 1], [0.5, 0.4]]])
        defer { study.remove() }
        let ids = study.ids["bambo"]!
        func choose(_ preference: String, _ k: Int) throws -> [String: Any] {
            let run = try Bambo.run(["select", "--archive", study.archive.path, "--preference", preference, "--top-k", "\(k)", "--json"], in: study.directory)
            #expect(run.status == 0, "\(run.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        }
        #expect(try choose("0.7,0.3", 1)["trial"] as? Int == Int(ids[1]))
        #expect(try choose("0.7,0.3", 2)["trial"] as? Int == Int(ids[1]))
        let three = try choose("0.7,0.3", 3)
        #expect(three["trial"] as? Int == Int(ids[2]))
        let candidates = try #require(three["candidates"] as? [[String: Any]])
        #expect(candidates.compactMap { $0["trial"] as? Int } == [ids[1], ids[0], ids[2]].map { Int($0) })
        #expect(abs((candidates[0]["cosine"] as? Double ?? 0) - 0.99477) < 1e-4)
        // Scale does not matter (cosine): 7,3 is 0.7,0.3.
        #expect(try choose("7,3", 3)["trial"] as? Int == Int(ids[2]))
        #expect(try choose("0,1", 1)["trial"] as? Int == Int(ids[4]))
        #expect(try choose("0,1", 3)["trial"] as? Int == Int(ids[2]))
        // Text output names the choice and how to materialize it.
        let text = try Bambo.run(["select", "--archive", study.archive.path, "--preference", "0.7,0.3"], in: study.directory)
        #expect(text.status == 0)
        #expect(text.stdout.contains("chosen: trial \(ids[2])") && text.stdout.contains("bambo materialize"), "\(text.stdout)")
        // Without a preference: the Das–Dennis lattice (H = 2: (1,0), (½,½), (0,1)) and the per-objective bests.
        let lattice = try Bambo.run(["select", "--archive", study.archive.path, "--divisions", "2", "--top-k", "1", "--json"], in: study.directory)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lattice.stdout.utf8)) as? [String: Any])
        let choices = try #require(object["choices"] as? [[String: Any]])
        // (1, 0) → T1 (cosine 1); (½, ½) → the smallest angle to the diagonal: T3 (0.9978) beats T2 (0.9615) and T4 (0.9261);
        // (0, 1) → T5.
        #expect(choices.compactMap { $0["trial"] as? Int } == [ids[0], ids[2], ids[4]].map { Int($0) })
        #expect((object["perObjectiveBests"] as? [String: Int]) == ["reasoning": Int(ids[0]), "efficiency": Int(ids[4])])
    }

    @Test func selectRefusesBadPreferencesAndAnEmptyFront() throws {
        let study = try HandMadeStudy(points: ["bambo": [[1, 0], [0.5, 0.5]]])
        defer { study.remove() }
        for (preference, phrase) in [("0.5,0.3,0.2", "3 entries but the study has 2 objectives"), ("-0.1,1", "negative"),
                                     ("0,0", "all weights are zero"), ("0.5,x", "\"x\" (for efficiency) is not a number")] {
            let run = try Bambo.run(["select", "--archive", study.archive.path, "--preference", preference], in: study.directory)
            #expect(run.status != 0)
            #expect(run.stderr.contains(phrase), "\(preference): \(run.stderr)")
        }
        let empty = try HandMadeStudy(points: ["bambo": [[1, 0]]], objectives: false)
        defer { empty.remove() }
        let run = try Bambo.run(["select", "--archive", empty.archive.path, "--preference", "1,1"], in: empty.directory)
        #expect(run.status != 0 && run.stderr.contains("no Pareto-optimal trial"), "\(run.stderr)")
        let missing = try Bambo.run(["select", "--archive", empty.directory.appendingPathComponent("nope.sqlite").path, "--preference", "1,1"], in: empty.directory)
        #expect(missing.status != 0 && missing.stderr.contains("nope.sqlite"), "\(missing.stderr)")
    }

    @Test func materializeRefusesUnknownFailedAndPendingTrialsAndANonEmptyOutput() throws {
        let study = try HandMadeStudy(points: ["bambo": [[1, 0]]], failedTrial: true, pendingTrial: true)
        defer { study.remove() }
        func materialize(_ trial: Int64, _ out: String = "m", force: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
            try Bambo.run(["materialize", "--archive", study.archive.path, "--trial", "\(trial)", "--out", out] + (force ? ["--force"] : []), in: study.directory)
        }
        let unknown = try materialize(999)
        #expect(unknown.status != 0 && unknown.stderr.contains("no trial 999"), "\(unknown.stderr)")
        let failed = try materialize(study.failed!)
        #expect(failed.status != 0 && failed.stderr.contains("trial \(study.failed!) failed") && failed.stderr.contains("MERGE_FAILED"), "\(failed.stderr)")
        let pending = try materialize(study.pending!)
        #expect(pending.status != 0 && pending.stderr.contains("pending, not evaluated yet"), "\(pending.stderr)")
        let full = study.directory.appendingPathComponent("full")
        try FileManager.default.createDirectory(at: full, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: full.appendingPathComponent("precious.txt"))
        let refused = try materialize(study.ids["bambo"]![0], "full")
        #expect(refused.status != 0 && refused.stderr.contains("not an empty directory") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(FileManager.default.fileExists(atPath: full.appendingPathComponent("precious.txt").path), "nothing lost")
    }

    // MARK: the real study

    @Test func exportFormatsParseBack() throws {
        let study = try RealStudy.shared.get()
        let dir = study.fixture.directory, archive = study.fixture.archive.path
        let json = try study.exportedJSON()
        let trials = try #require(json["trials"] as? [[String: Any]])
        #expect(trials.count == study.fixture.budget)
        // Current fields kept; strategy and method added.
        for trial in trials {
            for key in ["trial", "weights", "metrics", "objectives", "pareto", "strategy", "method"] { #expect(trial[key] != nil, "\(key)") }
            #expect(trial["strategy"] as? String == "bambo" && trial["method"] as? String == "ties")
            let benchmarks = try #require((trial["metrics"] as? [String: Any])?["benchmarks"] as? [String: Any])
            #expect(Set(benchmarks.keys) == ["arith", "mc"])
        }
        #expect((json["hypervolume"] as? Double ?? 0) > 0)

        // CSV: the same trials, weights and objectives.
        let csv = try Bambo.run(["export", "--archive", archive, "--format", "csv"], in: dir)
        #expect(csv.status == 0)
        let lines = csv.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = lines[0]
        #expect(Array(header.prefix(4)) == ["trial", "strategy", "method", "pareto"])
        #expect(header.suffix(6) == ["reasoning", "efficiency", "arith.accuracy", "arith.tokens", "mc.accuracy", "mc.tokens"])
        #expect(lines.count == trials.count + 1)
        for (row, trial) in zip(lines.dropFirst(), trials) {
            #expect(Int(row[0]) == trial["trial"] as? Int && row[1] == "bambo" && row[2] == "ties")
            #expect(row[3] == ((trial["pareto"] as? Bool) == true ? "true" : "false"))
            // JSONSerialization may round the last digit; both texts are shortest round-trip forms.
            let weights = trial["weights"] as! [Double]
            #expect(zip(weights.indices.map { Double(row[4 + $0])! }, weights).allSatisfy { abs($0 - $1) < 1e-12 })
            let objectives = trial["objectives"] as! [String: Double]
            #expect(abs(Double(row[header.firstIndex(of: "reasoning")!])! - objectives["reasoning"]!) < 1e-12)
        }

        // mergekit: one YAML per Pareto trial plus an index; each YAML is valid and says the same merge.
        let out = dir.appendingPathComponent("mergekit-\(UUID().uuidString.prefix(6))")
        let mergekit = try Bambo.run(["export", "--archive", archive, "--format", "mergekit", "--out", out.path], in: dir)
        #expect(mergekit.status == 0, "\(mergekit.stderr)")
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("index.json"))) as? [String: Any])
        let models = try #require(index["models"] as? [[String: Any]])
        let paretoIDs = trials.filter { $0["pareto"] as? Bool == true }.compactMap { $0["trial"] as? Int }
        #expect(models.compactMap { $0["trial"] as? Int } == paretoIDs)
        #expect(!paretoIDs.isEmpty)
        let partition = try study.partition()
        for model in models {
            let file = try #require(model["file"] as? String)
            #expect(file == "trial-\(model["trial"] as! Int).yaml")
            let text = try String(contentsOf: out.appendingPathComponent(file), encoding: .utf8)
            let yaml = try #require(try Yams.load(yaml: text) as? [String: Any])
            #expect(yaml["merge_method"] as? String == "ties")
            #expect((yaml["base_model"] as? String)?.hasSuffix("ckpt/base") == true)
            let slices = try #require(yaml["slices"] as? [[String: Any]])
            #expect(slices.count == partition.blocks.count)
            let weights = model["weights"] as! [Double]
            for (b, slice) in slices.enumerated() {
                let sources = try #require(slice["sources"] as? [[String: Any]])
                #expect(sources.count == 3, "instruct, thinking, base")
                #expect(sources[0]["layer_range"] as? [Int] == [partition.blocks[b][0], partition.blocks[b][1] + 1])
                // Two models: block weight β gives (1 − β, β); the last weight entry is the block's own.
                let thinking = try #require(number(((sources[1]["parameters"] as? [String: Any])?["weight"] as? [[String: Any]])?.last?["value"]))
                let instruct = try #require(number(((sources[0]["parameters"] as? [String: Any])?["weight"] as? [[String: Any]])?.last?["value"]))
                #expect(abs(thinking - weights[b + 1]) < 1e-12 && abs(instruct - (1 - weights[b + 1])) < 1e-12)
                #expect(number((sources[1]["parameters"] as? [String: Any])?["density"]) == 0.6)
            }
        }
    }

    @Test func materializeReproducesTheWorkersMergeBitForBit() throws {
        let study = try RealStudy.shared.get()
        let dir = study.fixture.directory
        let json = try study.exportedJSON()
        let trials = try #require(json["trials"] as? [[String: Any]])
        // A Pareto trial, and one off the front (materialize is not only for the front).
        let picks = [trials.first { $0["pareto"] as? Bool == true }, trials.last { $0["pareto"] as? Bool == false }].compactMap { $0 }
        #expect(!picks.isEmpty)
        let partitionFile = dir.appendingPathComponent("partition-\(UUID().uuidString.prefix(6)).json")
        try study.partition().jsonData().write(to: partitionFile)
        for trial in picks {
            let id = trial["trial"] as! Int
            let out = dir.appendingPathComponent("materialized-\(id)-\(UUID().uuidString.prefix(6))")
            let run = try Bambo.run(["materialize", "--archive", study.fixture.archive.path, "--trial", "\(id)", "--out", out.path, "--threads", "1"], in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("wrote \(out.path): trial \(id)"), "\(run.stdout)")
            for file in ["config.json", "bambo-merge.yaml"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file)")
            }
            // The same bytes the worker merged and evaluated (hashed by the evaluator during the study).
            let evaluated = try #require(study.workerHashes(trial: id), "the evaluator recorded trial \(id)")
            #expect(try sha256s(out) == evaluated)
            // And the same bytes as `bambo merge` with the archive's partition, the trial's weights and the study's method.
            // Exact weights (JSONDecoder; JSONSerialization may round the last digit).
            let weights = try study.exactWeights(trial: id).map { "\($0)" }.joined(separator: ",")
            let reference = dir.appendingPathComponent("reference-\(id)-\(UUID().uuidString.prefix(6))")
            let merged = try Bambo.run(
                ["merge", "--model", "ckpt/instruct", "--model", "ckpt/thinking", "--base", "ckpt/base", "--partition", partitionFile.path,
                 "--weights", weights, "--method", "ties", "--param", "density=0.6", "--dtype", "bfloat16", "--seed", "0", "--out", reference.path], in: dir)
            #expect(merged.status == 0, "\(merged.stderr)")
            #expect(try safetensors(out) == safetensors(reference))
            #expect(try !safetensors(out).isEmpty)
        }
        // An existing non-empty output is replaced only with --force.
        let id = picks[0]["trial"] as! Int
        let out = dir.appendingPathComponent("forced-\(UUID().uuidString.prefix(6))")
        #expect(try Bambo.run(["materialize", "--archive", study.fixture.archive.path, "--trial", "\(id)", "--out", out.path], in: dir).status == 0)
        let again = try Bambo.run(["materialize", "--archive", study.fixture.archive.path, "--trial", "\(id)", "--out", out.path], in: dir)
        #expect(again.status != 0 && again.stderr.contains("--force"))
        let forced = try Bambo.run(["materialize", "--archive", study.fixture.archive.path, "--trial", "\(id)", "--out", out.path, "--force"], in: dir)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try sha256s(out) == study.workerHashes(trial: id))
    }

    @Test func htmlReportRendersInHeadlessChromiumWithEveryPlotDrawn() throws {
        guard let chromium = Chromium.executable() else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("chromium is not installed, but CI must render the HTML report: install it (`apt-get install -y chromium`, listed in cluster/bootstrap.sh)")
            } else {
                print("skipping the headless-browser check of the HTML report: no chromium on PATH (apt-get install -y chromium)")
            }
            return
        }
        // The real study (one strategy) and a hand-made archive with three strategies.
        let real = try RealStudy.shared.get()
        let mixed = try HandMadeStudy(points: HandMadeStudy.threeStrategies)
        defer { mixed.remove() }
        for (name, archive, directory, strategies) in [("real", real.fixture.archive, real.fixture.directory, 1), ("mixed", mixed.archive, mixed.directory, 3)] {
            let html = directory.appendingPathComponent("report-\(name).html")
            let export = try Bambo.run(["export", "--archive", archive.path, "--format", "html", "--out", html.path], in: directory)
            #expect(export.status == 0, "\(export.stderr)")
            let text = try String(contentsOf: html, encoding: .utf8)
            let backgrounds = text.matches(of: /class="plot-area"[^>]*fill="(#[0-9a-f]{6})"/).map { String($0.output.1) }
            // Objective space, hypervolume, arith, mc, partition.
            #expect(backgrounds.count == 5, "\(backgrounds)")
            let png = directory.appendingPathComponent("report-\(name).png")
            try Chromium.screenshot(chromium, html: html, png: png, width: 1220, height: 2000)
            if let keep = ProcessInfo.processInfo.environment["BAMBO_REPORT_PNG_DIR"] {
                try? FileManager.default.removeItem(atPath: keep + "/report-\(name).png")
                try? FileManager.default.copyItem(atPath: png.path, toPath: keep + "/report-\(name).png")
            }
            let palette = ["#0072B2", "#D55E00", "#009E73"]
            let pixels = try PNGPlotCheck.run(png: png, backgrounds: backgrounds, marks: palette)
            for (index, background) in backgrounds.enumerated() {
                let plot = try #require(pixels.plots[background], "\(name): plot \(index) (\(background)) is not visible in the screenshot")
                // The whole plot area is on screen (480 × 288 CSS pixels) and data was drawn inside it.
                #expect(plot.box[2] - plot.box[0] >= 470 && plot.box[3] - plot.box[1] >= 280, "\(name) plot \(index): \(plot.box)")
                #expect(plot.saturated >= 60, "\(name) plot \(index) looks blank: \(plot.saturated) coloured pixels")
            }
            // In objective space every strategy's colour is drawn.
            let objective = try #require(pixels.plots[backgrounds[0]])
            for k in 0..<strategies { #expect(objective.marks[k] >= 30, "\(name): strategy \(k) (\(palette[k])) not drawn: \(objective.marks)") }
        }
    }
}

// MARK: support

/// A real study run once for the suite: `bambo synthesize`, a coordinator proposing with qEHVI, one
/// `bambo worker` merging with TIES over a base model, and an `exec` evaluator scoring two benchmarks
/// from the weights that also records the SHA-256 of every shard it was given.
final class RealStudy: @unchecked Sendable {
    static let shared = Result { try RealStudy() }
    let fixture: StudyFixture

    init() throws {
        fixture = try StudyFixture(initial: 5, iterations: 2, batch: 2, acquisition: "qehvi")
        let hashes = fixture.directory.appendingPathComponent("hashes")
        try FileManager.default.createDirectory(at: hashes, withIntermediateDirectories: true)
        let script = """
            import glob, hashlib, json, os
            w = json.loads(os.environ["BAMBO_WEIGHTS"])
            d = os.environ["BAMBO_MODEL_DIR"]
            shards = sorted(glob.glob(os.path.join(d, "*.safetensors")))
            digests = {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in shards}
            json.dump(digests, open(os.path.join(\(pythonString(hashes.path)), "trial-%s.json" % os.environ["BAMBO_TRIAL"]), "w"))
            late = sum(w[len(w) // 2:]) / len(w[len(w) // 2:])
            early = sum(w[:len(w) // 2]) / len(w[:len(w) // 2])
            m = sum(w) / len(w)
            print(json.dumps({"benchmarks": {
                "arith": {"accuracy": 0.3 + 0.6 * late ** 0.5, "tokens": 10 + 80 * m * m},
                "mc": {"accuracy": 0.5 + 0.3 * early ** 0.7, "tokens": 4 + 20 * early}}}))
            """
        try script.write(to: fixture.directory.appendingPathComponent("eval.py"), atomically: true, encoding: .utf8)
        let yaml = """
            study: tools-test
            models:
              - {name: instruct, path: ckpt/instruct}
              - {name: thinking, path: ckpt/thinking}
            base: {name: base, path: ckpt/base}
            partition: {blocks: 2, lambda: 1.0, norm: l2, strategy: hybrid}
            merge: {method: ties, dtype: bfloat16, params: {density: 0.6}}
            evaluator: {kind: exec, command: ["python3", "eval.py"], timeout: 600}
            objectives:
              - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
              - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
            optimizer: {initial: \(fixture.initial), iterations: \(fixture.iterations), batch: \(fixture.batch), acquisition: qehvi, seed: 0}
            """
        try yaml.write(to: fixture.studyFile, atomically: true, encoding: .utf8)
        let coordinator = try CoordinatorProcess(fixture: fixture)
        let worker = try WorkerProcess(name: "w1", endpoint: coordinator.endpoint, directory: fixture.directory)
        guard coordinator.waitForExit(timeout: 300) == 0 else { throw CoordinatorError("the study did not finish: \(coordinator.log)") }
        _ = worker.waitForExit(timeout: 30)
    }

    func exportedJSON() throws -> [String: Any] {
        let run = try Bambo.run(["export", "--archive", fixture.archive.path, "--format", "json"], in: fixture.directory)
        guard run.status == 0, let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any] else {
            throw CoordinatorError("export failed: \(run.stderr)")
        }
        return object
    }

    func partition() throws -> PartitionDocument {
        let archive = try Archive.open(at: fixture.archive, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        guard let document = try archive.loadPartition(as: PartitionDocument.self) else { throw CoordinatorError("no partition stored") }
        return document
    }

    /// The weights of `trial` from the JSON export, decoded exactly.
    func exactWeights(trial: Int) throws -> [Double] {
        struct Export: Decodable { struct Trial: Decodable { var trial: Int; var weights: [Double] }; var trials: [Trial] }
        let run = try Bambo.run(["export", "--archive", fixture.archive.path, "--format", "json"], in: fixture.directory)
        guard let found = try JSONDecoder().decode(Export.self, from: Data(run.stdout.utf8)).trials.first(where: { $0.trial == trial }) else {
            throw CoordinatorError("trial \(trial) is not in the export")
        }
        return found.weights
    }

    /// The shard digests the evaluator recorded for `trial`.
    func workerHashes(trial: Int) -> [String: String]? {
        let url = fixture.directory.appendingPathComponent("hashes/trial-\(trial).json")
        return (try? Data(contentsOf: url)).flatMap { try? JSONDecoder().decode([String: String].self, from: $0) }
    }
}

/// A YAML scalar as a number (Yams loads `0` as an Int and `0.5` as a Double).
private func number(_ value: Any?) -> Double? {
    switch value {
    case let int as Int: Double(int)
    case let double as Double: double
    default: nil
    }
}

/// A Python string literal.
private func pythonString(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// The `.safetensors` files of a directory, by name.
private func safetensors(_ directory: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".safetensors") {
        files[name] = try Data(contentsOf: directory.appendingPathComponent(name))
    }
    return files
}

/// SHA-256 of each `.safetensors` file, by name (`sha256sum`, as the evaluator's hashlib).
private func sha256s(_ directory: URL) throws -> [String: String] {
    var digests: [String: String] = [:]
    for name in try safetensors(directory).keys {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", directory.appendingPathComponent(name).path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        digests[name] = String(output.prefix { $0 != " " })
    }
    return digests
}

/// An archive written through the Archive API: a study config, a stored partition with its profile,
/// and completed trials per strategy with hand-picked objectives (metrics derived from them).
final class HandMadeStudy {
    let directory: URL
    var archive: URL { directory.appendingPathComponent("hand.sqlite") }
    private(set) var ids: [String: [Int64]] = [:]
    private(set) var failed: Int64?
    private(set) var pending: Int64?

    /// Three strategies over the same trade-off, BAMBO's reaching furthest.
    static let threeStrategies: [String: [[Double]]] = [
        "bambo": (0...8).map { k in let t = Double(k) / 8; return [t, 1 - t * t * 0.9 + 0.05 * sin(Double(k))] },
        "grid": (0...8).map { k in let t = Double(k) / 8; return [t * 0.95, 1 - t * 0.95] },
        "layerwise": (0...8).map { k in let t = Double(k) / 8; return [t * 0.9 + 0.02, 0.95 - t * t * 0.95] },
    ]

    init(points: [String: [[Double]]], objectives: Bool = true, failedTrial: Bool = false, pendingTrial: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("study-tools-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = try StudyConfig.parse(
            yaml: """
                study: hand-made
                models:
                  - {name: instruct, path: ckpt/instruct}
                  - {name: thinking, path: ckpt/thinking}
                partition: {blocks: 3, lambda: 1.0, norm: l2, strategy: hybrid}
                merge: {method: linear, dtype: bfloat16}
                evaluator: {kind: exec, command: ["python3", "eval.py"], timeout: 600}
                objectives:
                  - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
                  - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
                optimizer: {initial: 4, iterations: 2, batch: 2, acquisition: qehvi, seed: 0}
                """, fileName: "study.yaml", baseDirectory: directory)
        let store = try Archive.open(at: archive)
        defer { try? store.close() }
        let now = Date()
        try store.createStudy(name: config.study, config: config, at: now)
        let differences = (0..<10).map { 0.02 + 0.01 * Double($0 * $0) }
        let partition = try JSONDecoder().decode(PartitionDocument.self, from: Data("""
            {"layerDifferences": \(differences), "blocks": [[0, 3], [4, 7], [8, 9]], "cost": 1, "lambda": 1, "norm": "l2",
             "strategy": "hybrid", "embeddingDifference": 0.4, "headDifference": 0.6}
            """.utf8))
        try store.savePartition(partition, at: now)
        var values: [Int64: [String: Double]?] = [:]
        for strategy in points.keys.sorted() {
            let ys = points[strategy]!
            let xs = ys.map { y in [y[0], y[0], 1 - y[1], y[0], y[1]].map { min(1, max(0, $0)) } }
            let added = try store.addTrials(xs, origin: .manual, strategy: strategy, at: now)
            ids[strategy] = added
            for (id, y) in zip(added, ys) {
                let attempt = try store.recordDispatch(trial: id, worker: "w", leaseDeadline: now.addingTimeInterval(60), at: now)
                // Metrics consistent with the objectives: reasoning from accuracy, efficiency from tokens.
                let metrics = Metrics(benchmarks: [
                    "arith": .init(accuracy: 0.2 + 0.6 * y[0], tokens: 100 - 80 * y[1]),
                    "mc": .init(accuracy: 0.4 + 0.3 * y[0], tokens: 30 - 20 * y[1]),
                ])
                _ = try store.recordResult(trial: id, attempt: attempt, worker: "w", metrics: metrics, durations: .init(merge: 0, evaluate: 0), at: now)
                values[id] = objectives ? ["reasoning": y[0], "efficiency": y[1]] : nil
            }
        }
        if objectives { try store.setObjectives(values, at: now) }
        if failedTrial {
            let id = try store.addTrials([[0.5, 0.5, 0.5, 0.5, 0.5]], origin: .manual, strategy: "bambo", at: now)[0]
            for worker in ["w1", "w2"] {
                let attempt = try store.recordDispatch(trial: id, worker: worker, leaseDeadline: now.addingTimeInterval(60), at: now)
                _ = try store.recordFailure(trial: id, attempt: attempt, worker: worker, code: .mergeFailed, reason: "disk on fire", at: now)
            }
            failed = id
        }
        if pendingTrial { pending = try store.addTrials([[0.1, 0.1, 0.1, 0.1, 0.1]], origin: .manual, strategy: "bambo", at: now)[0] }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Headless Chromium: a page to a PNG screenshot.
enum Chromium {
    /// `chromium` (Debian) or another name on PATH, or nil.
    static func executable() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }

    static func screenshot(_ executable: String, html: URL, png: URL, width: Int, height: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        let profile = png.deletingLastPathComponent().appendingPathComponent("chromium-profile-\(UUID().uuidString.prefix(6))")
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-color-profile=srgb", "--force-device-scale-factor=1",
            "--user-data-dir=\(profile.path)", "--screenshot=\(png.path)", "--window-size=\(width),\(height)", html.absoluteString,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(180)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning {
            process.terminate()
            throw CoordinatorError("chromium did not finish the screenshot within 180 s")
        }
        guard FileManager.default.fileExists(atPath: png.path) else {
            throw CoordinatorError("chromium exited \(process.terminationStatus) without writing \(png.path)")
        }
    }
}

/// Decodes a PNG (Python's zlib; no image library) and, for each plot-area background colour, finds
/// its bounding box and counts the saturated pixels inside (data marks, lines and bars; grid lines,
/// labels and the background are grey or near-white) and the pixels near each mark colour.
enum PNGPlotCheck {
    struct Plot: Decodable { var box: [Int]; var background: Int; var saturated: Int; var marks: [Int] }
    struct Output: Decodable { var width: Int; var height: Int; var plots: [String: Plot] }

    static func run(png: URL, backgrounds: [String], marks: [String]) throws -> Output {
        let script = png.deletingLastPathComponent().appendingPathComponent("pngcheck-\(UUID().uuidString.prefix(6)).py")
        try source.write(to: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, png.path, backgrounds.joined(separator: ","), marks.joined(separator: ",")]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CoordinatorError("PNG check failed on \(png.path)") }
        return try JSONDecoder().decode(Output.self, from: data)
    }

    static let source = """
        import json, struct, sys, zlib

        def decode(path):
            data = open(path, "rb").read()
            assert data[:8] == b"\\x89PNG\\r\\n\\x1a\\n", "not a PNG"
            pos, idat = 8, b""
            while pos < len(data):
                length, kind = struct.unpack(">I4s", data[pos:pos + 8])
                body = data[pos + 8:pos + 8 + length]
                if kind == b"IHDR":
                    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
                    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
                    channels = 3 if ctype == 2 else 4
                elif kind == b"IDAT":
                    idat += body
                pos += 12 + length
            raw, stride = zlib.decompress(idat), width * channels
            rows, prev, i = [], bytearray(stride), 0
            for _ in range(height):
                kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
                i += 1 + stride
                for x in range(stride):
                    a = line[x - channels] if x >= channels else 0
                    b, c = prev[x], (prev[x - channels] if x >= channels else 0)
                    if kind == 1: line[x] = (line[x] + a) & 255
                    elif kind == 2: line[x] = (line[x] + b) & 255
                    elif kind == 3: line[x] = (line[x] + (a + b) // 2) & 255
                    elif kind == 4:
                        p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                        line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
                rows.append(bytes(line)); prev = line
            return width, height, channels, rows

        width, height, channels, rows = decode(sys.argv[1])
        wanted = {tuple(int(h[k:k + 2], 16) for k in (1, 3, 5)): h for h in sys.argv[2].split(",")}
        marks = [tuple(int(h[k:k + 2], 16) for k in (1, 3, 5)) for h in sys.argv[3].split(",") if h]
        boxes = {}
        for y, row in enumerate(rows):
            for x in range(width):
                p = tuple(row[x * channels:x * channels + 3])
                if p in wanted:
                    b = boxes.setdefault(wanted[p], [x, y, x, y, 0])
                    b[0] = min(b[0], x); b[1] = min(b[1], y); b[2] = max(b[2], x); b[3] = max(b[3], y); b[4] += 1
        result = {"width": width, "height": height, "plots": {}}
        for name, (x0, y0, x1, y1, background) in boxes.items():
            saturated, per_mark = 0, [0] * len(marks)
            for y in range(y0, y1 + 1):
                row = rows[y]
                for x in range(x0, x1 + 1):
                    p = row[x * channels:x * channels + 3]
                    if max(p) - min(p) > 60: saturated += 1
                    for k, m in enumerate(marks):
                        if abs(p[0] - m[0]) + abs(p[1] - m[1]) + abs(p[2] - m[2]) <= 24: per_mark[k] += 1
            result["plots"][name] = {"box": [x0, y0, x1, y1], "background": background, "saturated": saturated, "marks": per_mark}
        print(json.dumps(result))
        """
}
