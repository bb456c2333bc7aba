import BamboProtocol
import Foundation
import Testing

@testable import Coordinator

/// The `harness` evaluator in the study file: keys, types, benchmark files resolved and checked.
@Suite struct HarnessStudyConfigTests {
    /// A study directory with a benchmark file `bench/aime.jsonl`.
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-harness-study-\(getpid())")
        try? FileManager.default.createDirectory(at: url.appendingPathComponent("bench"), withIntermediateDirectories: true)
        try? Data(#"{"id": "1", "question": "1+1?", "answer": "2"}"#.utf8).write(to: url.appendingPathComponent("bench/aime.jsonl"))
        return url
    }()

    func study(_ evaluator: String) -> String {
        issueStudyYAML.replacingOccurrences(of: #"evaluator: {kind: exec, command: ["python3", "eval.py"], timeout: 600}"#, with: "evaluator: " + evaluator)
    }

    func parse(_ evaluator: String) throws -> StudyConfig {
        try StudyConfig.parse(yaml: study(evaluator), fileName: "study.yaml", baseDirectory: Self.directory)
    }

    func error(_ evaluator: String) -> String? {
        do { _ = try parse(evaluator); return nil } catch { return "\(error)" }
    }

    @Test func aFullHarnessEvaluatorParsesWithAbsoluteBenchmarkPaths() throws {
        let config = try parse("""
            {kind: harness, backend: vllm, benchmarks: [bench/aime.jsonl], sampling: {temperature: 0.6, top_p: 0.95, top_k: 20, min_p: 0, max_tokens: 32768, seed: 1},
             samples: 4, mode: thinking, python: /opt/venv/bin/python, server_args: ["--max-model-len", "32768"],
             chat_template_kwargs: {enable_thinking: true}, concurrency: 128, request_timeout: 1800, prompts: bare}
            """)
        let path = Self.directory.appendingPathComponent("bench/aime.jsonl").standardizedFileURL.path
        #expect(config.evaluatorKind == "harness")
        #expect(config.evaluator["benchmarks"] == .array([.string(path)]))
        #expect(config.evaluator["samples"] == 4 && config.evaluator["backend"] == "vllm")
        #expect(config.evaluator["chat_template_kwargs"] == .object(["enable_thinking": .bool(true)]))
        #expect(config.evaluator["prompts"] == "bare")
        // An absolute path stays as given.
        let absolute = try parse("{kind: harness, backend: transformers, benchmarks: [\"\(path)\"]}")
        #expect(absolute.evaluator["benchmarks"] == .array([.string(path)]))
    }

    @Test func badHarnessValuesNameTheKey() {
        let ok = "backend: transformers, benchmarks: [bench/aime.jsonl]"
        let cases: [(String, String)] = [
            ("{kind: harness, benchmarks: [bench/aime.jsonl]}", "evaluator.backend: missing"),
            ("{kind: harness, backend: llamacpp, benchmarks: [bench/aime.jsonl]}", "evaluator.backend: expected one of transformers, vllm, sglang, openai"),
            ("{kind: harness, backend: transformers}", "evaluator.benchmarks: missing"),
            ("{kind: harness, backend: transformers, benchmarks: []}", "evaluator.benchmarks: expected a non-empty list"),
            ("{kind: harness, backend: transformers, benchmarks: [bench/missing.jsonl]}", "evaluator.benchmarks[0]: expected a benchmark file"),
            ("{kind: harness, backend: transformers, benchmarks: [bench]}", "evaluator.benchmarks[0]: expected a benchmark file"),
            ("{kind: harness, \(ok), sampling: {temperature: -1}}", "evaluator.sampling.temperature: expected a number in [0, 100]"),
            ("{kind: harness, \(ok), sampling: {max_tokens: 0}}", "evaluator.sampling.max_tokens: expected an integer ≥ 1"),
            ("{kind: harness, \(ok), sampling: {temprature: 0}}", "evaluator.sampling.temprature"),
            ("{kind: harness, \(ok), sampling: 3}", "evaluator.sampling: expected a mapping"),
            ("{kind: harness, \(ok), samples: 1.5}", "evaluator.samples: expected an integer ≥ 1"),
            ("{kind: harness, \(ok), mode: fast}", "evaluator.mode: expected thinking or instruct"),
            ("{kind: harness, backend: openai, benchmarks: [bench/aime.jsonl]}", "evaluator.endpoint: missing"),
            ("{kind: harness, \(ok), server_args: [1]}", "evaluator.server_args[0]: expected a string"),
            ("{kind: harness, \(ok), chat_template_kwargs: [1]}", "evaluator.chat_template_kwargs: expected a mapping"),
            ("{kind: harness, \(ok), concurrency: 0}", "evaluator.concurrency: expected an integer ≥ 1"),
            ("{kind: harness, \(ok), request_timeout: 0}", "evaluator.request_timeout: expected a number"),
            ("{kind: harness, \(ok), command: [x]}", "evaluator.command"),
            ("{kind: harness, \(ok), prompts: terse}", "evaluator.prompts: expected standard or bare, got \"terse\""),
        ]
        for (evaluator, expected) in cases {
            let message = error(evaluator)
            #expect(message?.contains("study.yaml: " + expected) == true, "\(evaluator) → \(message ?? "parsed")")
        }
    }
}
