import BamboProtocol
import Foundation
import Testing

@testable import Coordinator

/// The issue's study file, exactly as written.
let issueStudyYAML = """
    study: synthetic-demo
    models:
      - {name: instruct, path: ckpt/instruct}
      - {name: thinking, path: ckpt/thinking}
    partition: {blocks: 4, lambda: 1.0, norm: l2, strategy: hybrid}
    merge: {method: linear, dtype: bfloat16}
    evaluator: {kind: exec, command: ["python3", "eval.py"], timeout: 600}
    objectives:
      - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
      - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
    optimizer: {initial: 8, iterations: 5, batch: 4, acquisition: qehvi, seed: 0}
    """

private func parse(_ yaml: String) throws -> StudyConfig {
    try StudyConfig.parse(yaml: yaml, fileName: "study.yaml", baseDirectory: URL(fileURLWithPath: "/data/run"))
}

/// The error message for `yaml`, or nil when it parses.
private func error(_ yaml: String) -> String? {
    do {
        _ = try parse(yaml)
        return nil
    } catch {
        return "\(error)"
    }
}

@Suite struct StudyConfigTests {
    @Test func parsesTheIssueFileAsWritten() throws {
        let config = try parse(issueStudyYAML)
        #expect(config.study == "synthetic-demo")
        #expect(config.models == [ModelRef(name: "instruct", path: "/data/run/ckpt/instruct"), ModelRef(name: "thinking", path: "/data/run/ckpt/thinking")])
        #expect(config.partition == .init(blocks: 4, lambda: 1, norm: .l2, strategy: .hybrid))
        #expect(config.merge == .init(method: "linear", dtype: .bfloat16, params: [:], seed: 0))
        #expect(config.evaluator == ["kind": "exec", "command": ["python3", "eval.py"], "timeout": 600])
        #expect(config.objectives.map(\.name) == ["reasoning", "efficiency"])
        #expect(config.objectives[1] == .init(name: "efficiency", metric: .tokens, expert: "instruct", base: "thinking"))
        #expect(config.optimizer == .init(initial: 8, iterations: 5, batch: 4, acquisition: "qehvi", seed: 0))
        #expect(config.budget == 28)
    }

    @Test func absolutePathsStayAndTheConfigRoundTripsAsJSON() throws {
        let config = try parse(issueStudyYAML.replacingOccurrences(of: "path: ckpt/thinking", with: "path: /models/t"))
        #expect(config.models[1].path == "/models/t")
        let data = try JSONEncoder().encode(config)
        #expect(try JSONDecoder().decode(StudyConfig.self, from: data) == config)
    }

    @Test func badValuesNameTheKeyAndWhatWasExpected() {
        #expect(error(issueStudyYAML.replacingOccurrences(of: "batch: 4", with: "batch: -1"))
            == "study.yaml: optimizer.batch: expected an integer ≥ 1, got -1")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "batch: 4", with: "batch: four"))
            == "study.yaml: optimizer.batch: expected an integer ≥ 1, got \"four\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "blocks: 4", with: "blocks: 2.5"))
            == "study.yaml: partition.blocks: expected an integer ≥ 1, got 2.5")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "norm: l2", with: "norm: l3"))
            == "study.yaml: partition.norm: expected one of l1, l2, got \"l3\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "timeout: 600", with: "timeout: 0"))
            == "study.yaml: evaluator.timeout: expected a number of seconds > 0, got 0")
        #expect(error(issueStudyYAML.replacingOccurrences(of: #"["python3", "eval.py"]"#, with: #"["python3", 3]"#))
            == "study.yaml: evaluator.command[1]: expected a non-empty string, got 3")
        #expect(error(issueStudyYAML.replacingOccurrences(of: #"command: ["python3", "eval.py"], "#, with: ""))
            == "study.yaml: evaluator.command: missing (expected a list of strings: the program and its arguments)")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "kind: exec", with: "kind: magic"))
            == "study.yaml: evaluator.kind: expected one of exec, harness, got \"magic\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "expert: thinking, base: instruct", with: "expert: thinker, base: instruct"))
            == "study.yaml: objectives[0].expert: expected one of the models (instruct, thinking), got \"thinker\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "expert: thinking, base: instruct", with: "expert: thinking, base: thinking"))
            == "study.yaml: objectives[0].base: expected a model other than the expert \"thinking\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "metric: tokens", with: "metric: speed"))
            == "study.yaml: objectives[1].metric: expected one of accuracy, tokens, got \"speed\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "acquisition: qehvi", with: "acquisition: ei"))
            == "study.yaml: optimizer.acquisition: expected one of qehvi, qnehvi, qlogehvi, qlognehvi, sobol, got \"ei\"")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "  - {name: thinking, path: ckpt/thinking}\n", with: ""))
            == "study.yaml: models: expected exactly 2 models (weight 0 and weight 1), got 1")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "study: synthetic-demo\n", with: ""))
            == "study.yaml: study: missing (required)")
        #expect(error("- just\n- a list\n") == "study.yaml: expected a mapping (key: value), got a list")
        #expect(error("") == "study.yaml: the file is empty")
        #expect(error("study: [unclosed\n")?.hasPrefix("study.yaml: not valid YAML") == true)
    }

    @Test func unknownKeysAreRejectedWithASuggestion() {
        #expect(error(issueStudyYAML.replacingOccurrences(of: "batch: 4", with: "bach: 4"))
            == "study.yaml: optimizer.bach: unknown key (did you mean 'batch'?); expected one of initial, iterations, batch, acquisition, seed")
        #expect(error(issueStudyYAML + "\nevaluater: {}\n")
            == "study.yaml: evaluater: unknown key (did you mean 'evaluator'?); expected one of study, models, base, partition, merge, evaluator, objectives, optimizer, strategy, strategies, grid")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "timeout: 600", with: "timeout: 600, timout: 3"))
            == "study.yaml: evaluator.timout: unknown key (did you mean 'timeout'?); expected one of kind, command, timeout")
        #expect(error(issueStudyYAML.replacingOccurrences(of: "batch: 4", with: "batch: 4, zzzzzzzz: 1"))
            == "study.yaml: optimizer.zzzzzzzz: unknown key; expected one of initial, iterations, batch, acquisition, seed")
    }

    @Test func defaultsAndPassThroughParameters() throws {
        let yaml = issueStudyYAML
            .replacingOccurrences(of: "partition: {blocks: 4, lambda: 1.0, norm: l2, strategy: hybrid}", with: "partition: {blocks: 3}")
            .replacingOccurrences(of: "merge: {method: linear, dtype: bfloat16}", with: "merge: {method: ties, params: {density: 0.5, flags: [a, true, null]}, seed: 7}")
            .replacingOccurrences(of: ", acquisition: qehvi, seed: 0", with: "")
        let config = try parse(yaml)
        #expect(config.partition == .init(blocks: 3, lambda: 1, norm: .l2, strategy: .hybrid))
        #expect(config.merge == .init(method: "ties", dtype: .bfloat16, params: ["density": 0.5, "flags": ["a", true, nil]], seed: 7))
        #expect(config.optimizer.acquisition == "qehvi")
        #expect(config.optimizer.seed == 0)
    }

    @Test func missingModelDirectoriesAreNamed() throws {
        let config = try parse(issueStudyYAML)
        #expect(throws: StudyConfigError(
            file: "study.yaml", key: "models[0].path",
            message: "expected a model directory, but /data/run/ckpt/instruct does not exist or is not a directory")) {
            try config.validateFiles(fileName: "study.yaml")
        }
    }
}

@Suite struct ObjectiveNormalizerTests {
    let settings: [StudyConfig.ObjectiveSettings] = [
        .init(name: "reasoning", metric: .accuracy, expert: "thinking", base: "instruct"),
        .init(name: "efficiency", metric: .tokens, expert: "instruct", base: "thinking"),
    ]
    let anchors: [String: Metrics] = [
        "instruct": Metrics(benchmarks: ["gsm": .init(accuracy: 0.5, tokens: 200), "math": .init(accuracy: 0.2, tokens: 400)]),
        "thinking": Metrics(benchmarks: ["gsm": .init(accuracy: 0.9, tokens: 1000), "math": .init(accuracy: 0.6, tokens: 3000)]),
    ]

    @Test func anchorsScoreOneAndZeroPerBenchmark() {
        let thinking = ObjectiveNormalizer.objectives(of: anchors["thinking"]!, anchors: anchors, settings: settings)
        #expect(thinking.values == ["reasoning": 2, "efficiency": 0])
        let instruct = ObjectiveNormalizer.objectives(of: anchors["instruct"]!, anchors: anchors, settings: settings)
        #expect(instruct.values == ["reasoning": 0, "efficiency": 2])
        #expect(thinking.problems.isEmpty && instruct.problems.isEmpty)
    }

    @Test func inBetweenMatchesEquationTwoByHand() throws {
        // gsm: acc (0.7−0.5)/(0.9−0.5) = 0.5, tokens (600−1000)/(200−1000) = 0.5
        // math: acc (0.5−0.2)/(0.6−0.2) = 0.75, tokens (1000−3000)/(400−3000) = 2000/2600
        let mixed = Metrics(benchmarks: ["gsm": .init(accuracy: 0.7, tokens: 600), "math": .init(accuracy: 0.5, tokens: 1000)])
        let result = ObjectiveNormalizer.objectives(of: mixed, anchors: anchors, settings: settings)
        #expect(abs(result.values["reasoning"]! - 1.25) < 1e-12)
        #expect(abs(result.values["efficiency"]! - (0.5 + 2000.0 / 2600.0)) < 1e-12)
    }

    @Test func anObjectiveSumsOnlyItsListedBenchmarks() throws {
        // reasoning over gsm alone: (0.7−0.5)/(0.9−0.5) = 0.5; efficiency over both as before.
        var only = settings
        only[0].benchmarks = ["gsm"]
        let mixed = Metrics(benchmarks: ["gsm": .init(accuracy: 0.7, tokens: 600), "math": .init(accuracy: 0.5, tokens: 1000)])
        let result = ObjectiveNormalizer.objectives(of: mixed, anchors: anchors, settings: only)
        #expect(abs(result.values["reasoning"]! - 0.5) < 1e-12)
        #expect(abs(result.values["efficiency"]! - (0.5 + 2000.0 / 2600.0)) < 1e-12)
        #expect(result.problems.isEmpty)
    }

    @Test func zeroDenominatorIsReportedAndLeftOut() {
        var flat = anchors
        flat["thinking"]!.benchmarks["math"]!.accuracy = 0.2  // same as instruct
        let mixed = Metrics(benchmarks: ["gsm": .init(accuracy: 0.7, tokens: 600), "math": .init(accuracy: 0.5, tokens: 1000)])
        let result = ObjectiveNormalizer.objectives(of: mixed, anchors: flat, settings: settings)
        #expect(abs(result.values["reasoning"]! - 0.5) < 1e-12)
        #expect(result.problems.count == 1)
        #expect(result.problems.first?.objective == "reasoning" && result.problems.first?.benchmark == "math")
        #expect(result.problems.first?.reason.contains("zero denominator") == true)
    }
}

@Suite struct ProposalTests {
    @Test func warmStartIsCornersBalancedThenSobol() throws {
        var fill = try SobolProposer(dimension: 3, seed: 0)
        let design = try WarmStart.points(count: 8, dimension: 3, fill: &fill)
        #expect(design.anchors == [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]])
        var reference = try SobolProposer(dimension: 3, seed: 0)
        #expect(design.sobol == (try reference.propose(count: 5, observed: [], pending: [])))
        var small = try SobolProposer(dimension: 3, seed: 0)
        #expect(try WarmStart.points(count: 2, dimension: 3, fill: &small).anchors == [[0, 0, 0], [1, 1, 1]])
    }

    @Test func skippingContinuesTheSequence() throws {
        var whole = try SobolProposer(dimension: 4, seed: 3)
        let all = try whole.propose(count: 10, observed: [], pending: [])
        var resumed = try SobolProposer(dimension: 4, seed: 3, skip: 6)
        #expect(try resumed.propose(count: 4, observed: [], pending: []) == Array(all[6...]))
        #expect(all.allSatisfy { $0.allSatisfy { $0 >= 0 && $0 <= 1 } })
    }
}
