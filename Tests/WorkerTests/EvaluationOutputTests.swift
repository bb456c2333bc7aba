import BamboProtocol
import Foundation
import Testing
@testable import Worker

@Suite struct EvaluationOutputTests {
    @Test func parsesMetricsKeepingExtraFieldsAndItems() throws {
        let text = """
          {"benchmarks": {"gsm8k": {"accuracy": 0.75, "tokens": 812.5, "items": 4, "latency": 1.5},
                          "aime": {"accuracy": 0, "tokens": 0}},
           "items": [{"benchmark": "gsm8k", "id": "q1", "response": "42", "extracted": "42", "correct": true, "tokens": 3}]}
        """
        let output = try EvaluationOutputParser.parse(text)
        #expect(output.metrics.benchmarks["gsm8k"] == BenchmarkMetrics(accuracy: 0.75, tokens: 812.5, items: 4, extra: ["latency": 1.5]))
        #expect(output.metrics.benchmarks["aime"]?.accuracy == 0)
        #expect(output.items?.first?.id == "q1")
    }

    @Test(arguments: [
        ("", "got nothing"),
        ("accuracy 0.5", "not valid JSON"),
        (#"{"benchmarks": {"m": {"accuracy": NaN, "tokens": 1}}}"#, "NaN"),
        ("[1]", "expected a JSON object"),
        (#"{"scores": {}}"#, "missing \"benchmarks\""),
        (#"{"benchmarks": {}}"#, "empty"),
        (#"{"benchmarks": {"m": 1}}"#, "benchmarks.m: expected an object"),
        (#"{"benchmarks": {"m": {"tokens": 1}}}"#, "benchmarks.m.accuracy: missing"),
        (#"{"benchmarks": {"m": {"accuracy": null, "tokens": 1}}}"#, "benchmarks.m.accuracy: expected a number, got null"),
        (#"{"benchmarks": {"m": {"accuracy": 1.5, "tokens": 1}}}"#, "in [0, 1]"),
        (#"{"benchmarks": {"m": {"accuracy": 0.5, "tokens": -1}}}"#, "tokens: expected a number ≥ 0"),
        (#"{"benchmarks": {"m": {"accuracy": 0.5, "tokens": "many"}}}"#, "tokens: expected a number"),
        (#"{"benchmarks": {"m": {"accuracy": 0.5, "tokens": 1, "items": 2.5}}}"#, "items: expected an integer"),
        (#"{"benchmarks": {"m": {"accuracy": 0.5, "tokens": 1}}, "items": [{"benchmark": "x", "id": "1", "response": "", "extracted": null, "correct": false, "tokens": 0}]}"#, "benchmark \"x\""),
        (#"{"benchmarks": {"m": {"accuracy": 0.5, "tokens": 1}}, "items": [{"id": 1}]}"#, "\"items\": expected an array"),
    ])
    func rejectsBadOutputNamingTheField(text: String, needle: String) {
        do {
            _ = try EvaluationOutputParser.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .badOutput)
            #expect(error.reason.contains(needle), "\(error.reason)")
        }
    }

    @Test func execSettingsAreCheckedAsABadTask() {
        let evaluator = ExecEvaluator()
        for (configuration, needle) in [
            (["kind": "exec"] as [String: JSONValue], "command: expected a non-empty array"),
            (["kind": "exec", "command": []], "command: expected a non-empty array"),
            (["kind": "exec", "command": ["python3", 3]], "command[1]"),
            (["kind": "exec", "command": ["true"], "timeout": 0], "timeout"),
            (["kind": "exec", "command": ["true"], "timeout": "long"], "timeout"),
        ] {
            #expect(throws: AttemptFailure.self) { try evaluator.settings(of: configuration) }
            do { _ = try evaluator.settings(of: configuration) } catch {
                #expect(error.code == .badTask && error.reason.contains(needle), "\(error.reason)")
            }
        }
        #expect((try? evaluator.settings(of: ["command": ["sh", "-c", "x"], "timeout": 2.5]))?.timeout == 2.5)
    }

    @Test func theEnvironmentCarriesTheAttempt() {
        let job = EvaluationJob(
            attempt: AttemptRef(trial: 12, attempt: 3), weights: [0, 0.25, 1], modelDirectory: URL(fileURLWithPath: "/m"),
            workDirectory: URL(fileURLWithPath: "/w"), configuration: [:], environment: ["CUDA_VISIBLE_DEVICES": "1"])
        let environment = ExecEvaluator().environment(for: job)
        #expect(environment["BAMBO_MODEL_DIR"] == "/m" && environment["BAMBO_WORK_DIR"] == "/w")
        #expect(environment["BAMBO_TRIAL"] == "12" && environment["BAMBO_ATTEMPT"] == "3")
        #expect(environment["CUDA_VISIBLE_DEVICES"] == "1")
        let weights = try? JSONDecoder().decode([Double].self, from: Data((environment["BAMBO_WEIGHTS"] ?? "").utf8))
        #expect(weights == [0, 0.25, 1])
        #expect(environment["PATH"] != nil)  // the worker's environment is inherited
    }
}
