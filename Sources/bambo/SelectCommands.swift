import Archive
import ArgumentParser
import BamboProtocol
import Coordinator
import Foundation
import Merging
import Optimization

struct SelectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Pick a Pareto model for a preference over the objectives (paper §3.4).",
        discussion: """
        Over the study's Pareto set (normalized objectives, Eq. 2), the K \
        models whose objective vectors have the highest cosine similarity \
        to the preference are kept, and the one with the best overall \
        performance (largest sum of objectives) among them is chosen.
          bambo select --archive study.sqlite --preference 0.7,0.3 \\
              [--top-k 3] [--json]
        Without --preference, every Das–Dennis preference vector with \
        --divisions H (the simplex lattice k/H) gets its choice, followed by \
        the best model for each objective, as the paper builds its \
        selection.
        """)

    @Option(help: ArgumentHelp("The study's archive.", valueName: "file"))
    var archive: String

    @Option(help: ArgumentHelp("One non-negative weight per objective, in the study's order (not all zero).", valueName: "w1,w2,…"))
    var preference: String?

    @Option(name: .customLong("top-k"), help: "Candidates kept by cosine similarity before choosing the best overall.")
    var topK: Int = 3

    @Option(help: ArgumentHelp("Das–Dennis divisions H when no --preference is given.", valueName: "H"))
    var divisions: Int = 10

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be ≥ 1 (got \(topK))") }
        guard divisions >= 1 else { throw ValidationError("--divisions must be ≥ 1 (got \(divisions))") }
    }

    /// The preference vector from its text: one finite, non-negative number per objective, not all zero.
    static func parsePreference(_ text: String, objectives names: [String]) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let example = names.indices.map { _ in String(format: "%.2g", 1 / Double(max(names.count, 1))) }.joined(separator: ",")
        guard parts.count == names.count else {
            throw ValidationError("--preference \(text): \(parts.count) entr\(parts.count == 1 ? "y" : "ies") but the study has \(names.count) objectives (\(names.joined(separator: ", "))): give one weight per objective, e.g. \(example)")
        }
        let values = try zip(parts, names).map { part, name -> Double in
            guard let value = Double(part), value.isFinite else {
                throw ValidationError("--preference \(text): \"\(part)\" (for \(name)) is not a number")
            }
            guard value >= 0 else { throw ValidationError("--preference \(text): the weight of \(name) is negative (\(part)); weights must be ≥ 0") }
            return value
        }
        guard values.contains(where: { $0 > 0 }) else {
            throw ValidationError("--preference \(text): all weights are zero; give at least one positive weight")
        }
        return values
    }

    struct Candidate: Codable { var trial: Int64; var cosine: Double; var sum: Double }
    struct Choice: Codable {
        var trial: Int64
        var strategy: String
        var method: String?
        var weights: [Double]
        var objectives: [String: Double]
        var metrics: Metrics
        var preference: [Double]
        var topK: Int
        var candidates: [Candidate]
    }
    struct LatticeChoice: Codable { var preference: [Double]; var trial: Int64 }
    struct Lattice: Codable {
        var divisions: Int
        var topK: Int
        var choices: [LatticeChoice]
        var perObjectiveBests: [String: Int64]
        var selected: [Int64]
    }

    func run() throws {
        let study = try LoadedStudy.open(archive)
        defer { study.close() }
        let names = study.objectiveNames
        let preferenceVector = try preference.map { try Self.parsePreference($0, objectives: names) }
        let front = study.front
        guard !front.isEmpty else {
            throw ValidationError("\(archive) has no Pareto-optimal trial with objectives yet (\(study.report.trials.count) completed trials; objectives need both anchor trials x = 0 and x = 1): nothing to select from")
        }
        let points = front.map { study.objectiveVector($0)! }
        guard let preferenceVector else { return try runLattice(study, front: front, points: points) }

        let chosen = front[try Selection.bestForPreference(objectives: points, preference: preferenceVector, topK: topK)]
        let ranked = front.indices.map { index in
            Candidate(trial: front[index].trial, cosine: Selection.cosineSimilarity(points[index], preferenceVector), sum: points[index].reduce(0, +))
        }.sorted { $0.cosine > $1.cosine || ($0.cosine == $1.cosine && $0.trial < $1.trial) }
        let choice = Choice(
            trial: chosen.trial, strategy: chosen.strategy, method: chosen.method, weights: chosen.weights,
            objectives: chosen.objectives ?? [:], metrics: chosen.metrics, preference: preferenceVector, topK: topK,
            candidates: Array(ranked.prefix(topK)))
        if json { return try printJSON(choice) }
        let stated = zip(names, preferenceVector).map { "\($0) \(String(format: "%g", $1))" }.joined(separator: ", ")
        print("preference (\(stated)): top \(min(topK, front.count)) of \(front.count) Pareto models by cosine similarity")
        for candidate in choice.candidates {
            let mark = candidate.trial == chosen.trial ? "  ← best overall" : ""
            print(String(format: "  trial %-5lld cosine %.4f  sum of objectives %.4f", candidate.trial, candidate.cosine, candidate.sum) + mark)
        }
        print("chosen: trial \(chosen.trial) (strategy \(chosen.strategy), method \(chosen.method ?? "?"))")
        print("  weights: \(chosen.weights.map { String(format: "%.4f", $0) }.joined(separator: ", "))")
        print("  objectives: \(names.map { "\($0) \(String(format: "%.4f", chosen.objectives?[$0] ?? .nan))" }.joined(separator: ", "))")
        for (benchmark, metrics) in chosen.metrics.benchmarks.sorted(by: { $0.key < $1.key }) {
            print("  \(benchmark): accuracy \(String(format: "%.4f", metrics.accuracy)), tokens \(String(format: "%.1f", metrics.tokens))")
        }
        print("materialize it: bambo materialize --archive \(archive) --trial \(chosen.trial) --out DIR")
    }

    /// The paper's selection over Das–Dennis preference vectors, plus the per-objective bests.
    func runLattice(_ study: LoadedStudy, front: [StudyReport.Trial], points: [[Double]]) throws {
        let names = study.objectiveNames
        let selection = try Selection.select(objectives: points, divisions: divisions, topK: topK)
        let lattice = Lattice(
            divisions: divisions, topK: topK,
            choices: zip(selection.preferences, selection.choiceForPreference).map { LatticeChoice(preference: $0, trial: front[$1].trial) },
            perObjectiveBests: Dictionary(uniqueKeysWithValues: zip(names, selection.perObjectiveBests.map { front[$0].trial })),
            selected: selection.selectedIndices.map { front[$0].trial })
        if json { return try printJSON(lattice) }
        print("Das–Dennis preferences (H = \(divisions)), top \(topK) by cosine similarity, best overall among them:")
        for choice in lattice.choices {
            print("  (\(choice.preference.map { String(format: "%.2f", $0) }.joined(separator: ", ")))  →  trial \(choice.trial)")
        }
        for (name, trial) in zip(names, selection.perObjectiveBests.map { front[$0].trial }) { print("  best \(name)  →  trial \(trial)") }
        print("selected trials: \(lattice.selected.map(String.init).joined(separator: ", "))")
    }
}

struct MaterializeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "materialize",
        abstract: "Merge one trial's model for deployment, exactly as the worker merged it.",
        discussion: """
        Uses the archive's partition, the trial's weights, the study's \
        models, base and merge spec, through the worker's own merge path, \
        so the shards are byte-identical to what was evaluated. The output \
        is a Hugging Face model directory (shards, the first model's config, \
        tokenizer and generation files, and bambo-merge.yaml, the recipe).
          bambo materialize --archive study.sqlite --trial 12 --out merged-12
        """)

    @Option(help: ArgumentHelp("The study's archive.", valueName: "file"))
    var archive: String

    @Option(help: ArgumentHelp("The trial to merge (a completed one; see `bambo select`).", valueName: "id"))
    var trial: Int64

    @Option(help: ArgumentHelp("Output directory (must be new or empty, unless --force).", valueName: "dir"))
    var out: String

    @Option(help: "Merge threads (default: all cores). The result does not depend on it.")
    var threads: Int?

    @Flag(help: "Replace a non-empty output directory.")
    var force = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1 (got \(threads))") }
    }

    func run() throws {
        let study = try LoadedStudy.open(archive)
        defer { study.close() }
        guard let record = try study.store.trial(trial) else {
            let ids = try study.store.trials().map(\.id)
            let known = ids.isEmpty ? "it has no trials" : "its trials are \(ids.first!)…\(ids.last!)"
            throw ValidationError("\(archive) has no trial \(trial) (\(known))")
        }
        switch record.state {
        case .completed: break
        case .failed:
            let reasons = record.failureReasons.map { "\($0.worker): \($0.code) \($0.reason)" }.joined(separator: "; ")
            throw ValidationError("trial \(trial) failed\(reasons.isEmpty ? "" : " (\(reasons))"): there is no evaluated model to materialize")
        case .pending, .dispatched:
            throw ValidationError("trial \(trial) is \(record.state.rawValue), not evaluated yet: materialize a completed trial (see `bambo select`)")
        }
        let output = URL(fileURLWithPath: out).standardizedFileURL
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        var replace = false
        if fm.fileExists(atPath: output.path, isDirectory: &isDirectory) {
            let empty = isDirectory.boolValue && ((try? fm.contentsOfDirectory(atPath: output.path))?.isEmpty ?? false)
            guard empty || force else {
                throw ValidationError("\(out) already exists and is not an empty directory: choose a new one, or pass --force to replace it")
            }
            replace = true
        }
        var request = try study.mergeRequest(trial: record, output: output, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        request.durable = true
        request.replaceExisting = replace
        let summary = try mergeShowingProgress(request)
        print("wrote \(summary.output.path): trial \(trial) (strategy \(record.strategy), \(request.method.rawValue), weights \(record.x.map { String(format: "%.4f", $0) }.joined(separator: ", "))), \(summary.tensorCount) tensors in \(summary.shards.count) shard\(summary.shards.count == 1 ? "" : "s")")
    }
}
