import Foundation
import SafeTensors
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("bambo merge and bambo bench merge on real checkpoint files")
struct MergeCLITests {
    /// A synthesized family and a 3-block partition in a fresh directory.
    private func family() throws -> URL {
        let dir = try makeTemporaryDirectory()
        let made = try BamboProcess.run(["synthesize", "--out", "fam", "--layers", "6", "--hidden", "128", "--shard-mb", "1"], in: dir)
        #expect(made.status == 0, "\(made.stderr)")
        let partition = try BamboProcess.run(["partition", "--model", "fam/instruct", "--model", "fam/thinking", "--blocks", "3", "--out", "p.json", "--json"], in: dir)
        #expect(partition.status == 0, "\(partition.stderr)")
        return dir
    }

    private func shards(_ dir: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".safetensors") {
            result[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return result
    }

    @Test("merge writes a model directory; its recipe merges the same bytes again; β = 0 and 1 give the inputs")
    func mergeAndReplay() throws {
        let dir = try family()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try BamboProcess.run(
            ["merge", "--model", "fam/instruct", "--model", "fam/thinking", "--partition", "p.json",
             "--weights", "0,0.25,0.5,0.75,1", "--out", "merged", "--shard-mb", "1", "--emit-mergekit", "merged.mergekit.yaml"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("wrote"), "\(run.stdout)")
        #expect(run.stderr.contains("merging"), "progress on stderr")
        let merged = dir.appendingPathComponent("merged")
        for file in ["config.json", "bambo-merge.yaml", "model.safetensors.index.json"] {
            #expect(FileManager.default.fileExists(atPath: merged.appendingPathComponent(file).path), "\(file)")
        }
        let mergekit = try String(contentsOf: dir.appendingPathComponent("merged.mergekit.yaml"), encoding: .utf8)
        #expect(mergekit.contains("merge_method: linear") && mergekit.contains("layer_range: [0, "), "\(mergekit)")

        let replay = try BamboProcess.run(["merge", "--config", "merged/bambo-merge.yaml", "--out", "again", "--shard-mb", "1"], in: dir)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(try shards(merged) == shards(dir.appendingPathComponent("again")))

        // All weights 0: the first model's tensors, bit for bit.
        let first = try BamboProcess.run(
            ["merge", "--model", "fam/instruct", "--model", "fam/thinking", "--partition", "p.json",
             "--weights", "0,0,0,0,0", "--out", "first", "--threads", "1"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let a = try Checkpoint(directory: dir.appendingPathComponent("fam/instruct"))
        let b = try Checkpoint(directory: dir.appendingPathComponent("first"))
        #expect(a.tensors.map(\.name) == b.tensors.map(\.name))
        for t in a.tensors {
            let x = try a.withRawBytes(of: t.name) { Data($0) }, y = try b.withRawBytes(of: t.name) { Data($0) }
            #expect(x == y, "\(t.name)")
        }
    }

    @Test("task-vector methods run from the command line with parameters")
    func tiesFromCommandLine() throws {
        let dir = try family()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try BamboProcess.run(
            ["merge", "--model", "fam/instruct", "--model", "fam/thinking", "--base", "fam/base", "--partition", "p.json",
             "--weights", "0.5,0.5,0.5,0.5,0.5", "--method", "della", "--param", "density=0.5", "--param", "epsilon=0.1",
             "--dtype", "float32", "--seed", "9", "--out", "della"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let recipe = try String(contentsOf: dir.appendingPathComponent("della/bambo-merge.yaml"), encoding: .utf8)
        #expect(recipe.contains("merge_method: della") && recipe.contains("epsilon: 0.1") && recipe.contains("seed: 9"), "\(recipe)")
        let checkpoint = try Checkpoint(directory: dir.appendingPathComponent("della"))
        #expect(checkpoint.tensors.allSatisfy { $0.dtype == .f32 })
    }

    @Test("An empty or missing recipe or study file is named as such (not as a permission problem)")
    func emptyFiles() throws {
        let cases: [([String], String)] = [
            (["merge", "--config", "/dev/null", "--out", "/tmp/bambo-never-written"], "the file is empty"),
            (["merge", "--config", "/nonexistent/recipe.yaml", "--out", "/tmp/bambo-never-written"], "exist"),
            (["coordinator", "--study", "/dev/null"], "the file is empty"),
            (["coordinator", "--study", "/nonexistent/study.yaml"], "exist"),
        ]
        for (arguments, message) in cases {
            let run = try BamboProcess.run(arguments)
            #expect(run.status != 0)
            #expect(run.stderr.contains(message) && !run.stderr.contains("permission"), "\(arguments): \(run.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/bambo-never-written"))
    }

    @Test("bad input: a clear message, a non-zero exit, no output directory")
    func errors() throws {
        let dir = try family()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [([String], String)] = [
            (["--weights", "0,0.5,1"], "got 3 block weights; expected 5"),
            (["--weights", "0,0.5,1,2,1"], "outside [0, 1]"),
            (["--weights", "0,0.5,1,1,1", "--method", "ties"], "--base"),
            (["--weights", "0,0.5,1,1,1", "--param", "density"], "expected name=value"),
        ]
        for (extra, message) in cases {
            let run = try BamboProcess.run(["merge", "--model", "fam/instruct", "--model", "fam/thinking", "--partition", "p.json", "--out", "bad"] + extra, in: dir)
            #expect(run.status != 0)
            #expect(run.stderr.contains(message), "stderr: \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path))
        }
        let other = try BamboProcess.run(["synthesize", "--out", "other", "--layers", "4", "--hidden", "64"], in: dir)
        #expect(other.status == 0)
        let mismatch = try BamboProcess.run(["merge", "--model", "fam/instruct", "--model", "other/thinking", "--partition", "p.json", "--weights", "0,0,0,0,0", "--out", "bad"], in: dir)
        #expect(mismatch.status != 0)
        #expect(mismatch.stderr.contains("shape"), "stderr: \(mismatch.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path))
    }

    @Test("Ctrl-C stops a merge in progress: a clear message, a non-zero exit, nothing left behind", arguments: [SIGINT, SIGTERM])
    func interrupted(signal number: Int32) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Large enough (3 × ~64 MB, a TIES merge with one thread) to take seconds.
        #expect(try BamboProcess.run(["synthesize", "--out", "fam", "--layers", "4", "--size-mb", "64"], in: dir).status == 0)
        let partition = try BamboProcess.run(["partition", "--model", "fam/instruct", "--model", "fam/thinking", "--blocks", "2", "--out", "p.json", "--json"], in: dir)
        #expect(partition.status == 0, "\(partition.stderr)")
        let process = Process()
        process.executableURL = BamboProcess.executable
        process.arguments = ["merge", "--model", "fam/instruct", "--model", "fam/thinking", "--base", "fam/base", "--partition", "p.json",
                             "--weights", "0.2,0.4,0.6,0.8", "--method", "ties", "--param", "density=0.5", "--threads", "1", "--out", "merged"]
        process.currentDirectoryURL = dir
        let errFile = dir.appendingPathComponent("stderr.txt")
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errFile)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func partials() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains("bambo-partial") }
        }
        // Interrupt once the merge is writing its hidden partial directory.
        let started = Date()
        while partials().isEmpty, process.isRunning, Date().timeIntervalSince(started) < 120 { Thread.sleep(forTimeInterval: 0.02) }
        try #require(process.isRunning && !partials().isEmpty, "the merge ended before it could be interrupted")
        kill(process.processIdentifier, number)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(!process.isRunning)
        let stderr = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
        #expect(process.terminationReason == .exit && process.terminationStatus != 0, "stderr: \(stderr)")
        #expect(stderr.contains("cancelled"), "stderr: \(stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("merged").path))
        #expect(partials().isEmpty, "left behind: \(partials())")
    }

    @Test("bench merge measures the bound and the merge in one run")
    func benchMerge() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try BamboProcess.run(["bench", "merge", "--size-gb", "0.01", "--layers", "3", "--blocks", "2", "--cache", dir.appendingPathComponent("cache").path], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        for text in ["bound", "merge", "ratio bound / merge", "peak RSS"] { #expect(run.stdout.contains(text), "\(run.stdout)") }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cache/merged").path), "the merged output is removed")
    }
}
