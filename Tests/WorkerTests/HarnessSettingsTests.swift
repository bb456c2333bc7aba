import BamboProtocol
import Testing
import Worker

/// `HarnessEvaluator.settings`: a TASK's `harness` configuration read, defaults filled, bad values
/// refused with BAD_TASK naming the key (no server needed).
@Suite struct HarnessSettingsTests {
    let base: [String: JSONValue] = ["kind": "harness", "backend": "transformers", "benchmarks": ["/b/aime.jsonl"]]

    func with(_ extra: [String: JSONValue]) -> [String: JSONValue] { base.merging(extra) { $1 } }

    @Test func defaultsAreQwen3ThinkingOneSample() throws {
        let settings = try HarnessEvaluator.settings(of: base)
        #expect(settings.backend == "transformers" && settings.benchmarks == ["/b/aime.jsonl"])
        #expect(settings.sampling.temperature == 0.6 && settings.sampling.topP == 0.95 && settings.sampling.topK == 20)
        #expect(settings.sampling.maxTokens == 32768 && settings.samples == 1 && !settings.instruct)
        let instruct = try HarnessEvaluator.settings(of: with(["mode": "instruct", "sampling": ["max_tokens": 64, "seed": 3]]))
        #expect(instruct.instruct && instruct.sampling.temperature == 0.7 && instruct.sampling.topP == 0.8)
        #expect(instruct.sampling.maxTokens == 64 && instruct.sampling.seed == 3)
        let greedy = try HarnessEvaluator.settings(of: with(["sampling": ["temperature": 0], "samples": 4, "server_args": ["--dtype", "bfloat16"]]))
        #expect(greedy.sampling.temperature == 0 && greedy.samples == 4 && greedy.serverArguments == ["--dtype", "bfloat16"])
        #expect(settings.prompts == .standard)
        #expect(try HarnessEvaluator.settings(of: with(["prompts": "bare"])).prompts == .bare)
    }

    @Test func badValuesAreBadTaskNamingTheKey() {
        let cases: [([String: JSONValue], String)] = [
            (with(["backend": "llamacpp"]), "evaluator.backend:"),
            (with(["benchmarks": []]), "evaluator.benchmarks:"),
            (with(["benchmarks": [3]]), "evaluator.benchmarks[0]:"),
            (with(["sampling": ["max_tokens": 0]]), "evaluator.sampling.max_tokens:"),
            (with(["sampling": ["temp": 1]]), "evaluator.sampling.temp:"),
            (with(["samples": 0]), "evaluator.samples:"),
            (with(["mode": "fast"]), "evaluator.mode:"),
            (with(["backend": "openai"]), "evaluator.endpoint:"),
            (with(["server_args": [1]]), "evaluator.server_args[0]:"),
            (with(["chat_template_kwargs": "x"]), "evaluator.chat_template_kwargs:"),
            (with(["color": "red"]), "evaluator.color:"),
            (with(["prompts": "terse"]), "evaluator.prompts:"),
        ]
        for (configuration, prefix) in cases {
            do {
                _ = try HarnessEvaluator.settings(of: configuration)
                Issue.record("accepted \(configuration)")
            } catch {
                #expect(error.code == .badTask && error.reason.hasPrefix(prefix), "\(error.reason)")
            }
        }
    }
}
