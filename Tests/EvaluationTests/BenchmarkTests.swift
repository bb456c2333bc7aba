import Foundation
import Testing
@testable import Evaluation

struct BenchmarkTests {
    func write(_ text: String, _ name: String) throws -> URL {
        let url = TestEnvironment.scratchDirectory("bench").appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func normalizedJSONL() throws {
        let url = try write("""
        {"id": "a", "question": "2+2?", "answer": "4", "kind": "integer"}

        {"id": 7, "question": "Pick", "answer": "b", "kind": "multiple-choice", "choices": ["x", "y"]}
        {"id": "c", "question": "Capital?", "answer": "Paris", "kind": "exact"}
        """, "mixed.jsonl")
        let benchmark = try BenchmarkLoader.load(url)
        #expect(benchmark.name == "mixed")
        #expect(benchmark.items == [
            BenchmarkItem(id: "a", question: "2+2?", answer: "4", kind: .integer),
            BenchmarkItem(id: "7", question: "Pick", answer: "B", kind: .multipleChoice, choices: ["x", "y"]),
            BenchmarkItem(id: "c", question: "Capital?", answer: "Paris", kind: .exact),
        ])
    }

    @Test("bad input names the file, the line and what was expected", arguments: [
        (#"{"id": "a", "question": "q", "answer": "4", "kind": "number"}"#, "bad.jsonl:1: field \"kind\" is \"number\"; expected one of multiple-choice, integer, exact"),
        (#"{"id": "a", "question": "q", "answer": "E", "kind": "multiple-choice", "choices": ["1", "2"]}"#, "bad.jsonl:1: \"answer\" is \"E\"; expected the letter of a choice (A, B)"),
        (#"{"id": "a", "question": "q", "answer": "A", "kind": "multiple-choice"}"#, "bad.jsonl:1: a multiple-choice item needs \"choices\": an array of strings"),
        (#"{"id": "a", "question": "q", "answer": "four", "kind": "integer"}"#, "bad.jsonl:1: \"answer\" is \"four\"; an integer item needs an integer answer"),
        ("{\"id\": \"a\", \"question\": \"q\", \"answer\": \"4\", \"kind\": \"integer\"}\n{not json", "bad.jsonl:2: not valid JSON"),
        (#"{"id": "a", "answer": "4", "kind": "integer"}"#, "bad.jsonl:1: field \"question\" is missing or not a string"),
        (#"{"foo": 1}"#, "bad.jsonl:1: unrecognized record: expected BAMBO's fields (id, question, answer, kind), GPQA's (Question, Correct Answer, Incorrect Answer 1-3) or AIME's (problem, answer); found foo"),
        ("{\"id\": \"a\", \"question\": \"q\", \"answer\": \"4\", \"kind\": \"integer\"}\n{\"id\": \"a\", \"question\": \"q\", \"answer\": \"5\", \"kind\": \"integer\"}", "bad.jsonl: item id 'a' appears more than once"),
        ("", "bad.jsonl: no benchmark items"),
    ])
    func badInput(text: String, message: String) throws {
        let url = try write(text, "bad.jsonl")
        do {
            _ = try BenchmarkLoader.load(url)
            Issue.record("loaded bad input")
        } catch let error as EvaluationError {
            #expect(error.description == url.deletingLastPathComponent().path + "/" + message)
        }
    }

    static let gpqaCSV = """
    Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,Subdomain\r
    rec1,"What is 2+2, in base 10?",4,3,5,22,Math\r
    rec2,"A ""quoted"" question
    spanning two lines", right ,wrong1,wrong2,wrong3,Physics\r

    """

    @Test func gpqaCSVShuffledDeterministically() throws {
        let url = try write(Self.gpqaCSV, "gpqa_diamond.csv")
        let first = try BenchmarkLoader.load(url, seed: 0)
        let again = try BenchmarkLoader.load(url, seed: 0)
        #expect(first == again)
        #expect(first.items.map(\.id) == ["rec1", "rec2"])
        #expect(first.items[1].question == "A \"quoted\" question\nspanning two lines")
        for (item, (correct, wrong)) in zip(first.items, [("4", ["3", "5", "22"]), ("right", ["wrong1", "wrong2", "wrong3"])]) {
            let choices = try #require(item.choices)
            #expect(Set(choices) == Set([correct] + wrong))
            #expect(choices[Int(item.answer.unicodeScalars.first!.value) - 65] == correct)
            #expect(item.kind == .multipleChoice)
        }
        // Other seeds give other orders (for at least one of several seeds), each still pointing at the right choice.
        let orders = try (0..<8).map { try BenchmarkLoader.load(url, seed: UInt64($0)).items[0].choices! }
        #expect(Set(orders).count > 1)
        // The order depends on the item, not only on the seed.
        let shuffledA = BenchmarkLoader.shuffledChoices(["1", "2", "3", "4"], itemKey: "a", seed: 0)
        let shuffledB = (0..<8).map { BenchmarkLoader.shuffledChoices(["1", "2", "3", "4"], itemKey: "b\($0)", seed: 0) }
        #expect(shuffledB.contains { $0 != shuffledA })
    }

    @Test func gpqaJSONLAndErrors() throws {
        let url = try write(#"{"Question": "Q?", "Correct Answer": "yes", "Incorrect Answer 1": "n1", "Incorrect Answer 2": "n2", "Incorrect Answer 3": "n3"}"#, "gpqa.jsonl")
        let item = try #require(try BenchmarkLoader.load(url).items.first)
        #expect(item.id == "gpqa-1")
        #expect(item.choices?[Int(item.answer.unicodeScalars.first!.value) - 65] == "yes")

        let missing = try write("Question,Correct Answer\nq,a\n", "short.csv")
        #expect(throws: EvaluationError.badInput(file: missing.path, line: 1, message: "GPQA CSV header lacks the column \"Incorrect Answer 1\" (has: Question, Correct Answer)")) {
            try BenchmarkLoader.load(missing)
        }
        let unclosed = try write("Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n\"q,a,b,c,d\n", "open.csv")
        #expect(throws: EvaluationError.badInput(file: unclosed.path, line: 2, message: "a quoted field is never closed")) {
            try BenchmarkLoader.load(unclosed)
        }
    }

    @Test func aimeJSONL() throws {
        let url = try write("""
        {"id": "2025-I-1", "problem": "Find the sum.", "answer": "070", "solution": "...", "year": 2025}
        {"problem_idx": 2, "problem": "Find n.", "answer": 588}
        {"question": "How many?", "answer": "16"}
        """, "aime2025.jsonl")
        let items = try BenchmarkLoader.load(url).items
        #expect(items == [
            BenchmarkItem(id: "2025-I-1", question: "Find the sum.", answer: "070", kind: .integer),
            BenchmarkItem(id: "2", question: "Find n.", answer: "588", kind: .integer),
            BenchmarkItem(id: "aime-3", question: "How many?", answer: "16", kind: .integer),
        ])
        #expect(Grader.grade("\\boxed{70}", item: items[0]).correct)
        let bad = try write(#"{"problem": "p", "answer": "\\frac{1}{2}"}"#, "bad_aime.jsonl")
        #expect(throws: EvaluationError.badInput(file: bad.path, line: 1, message: "AIME \"answer\" is \"\\frac{1}{2}\"; expected an integer")) {
            try BenchmarkLoader.load(bad)
        }
    }

    @Test func csvParser() throws {
        #expect(try CSV.parse("a,b\r\n1,\"x,\"\"y\"\"\"\n,\n") == [["a", "b"], ["1", "x,\"y\""], ["", ""]])
        #expect(try CSV.parse("a") == [["a"]])
        #expect(throws: CSV.ParseError.self) { try CSV.parse("a,b\"c\n") }
    }
}

struct PromptAndRequestTests {
    @Test func promptsFillPlaceholders() {
        let item = BenchmarkItem(id: "q", question: "Which {choices} braces?", answer: "B", kind: .multipleChoice, choices: ["one", "two", "three"])
        let messages = PromptTemplates(system: "Be brief.", multipleChoice: "Q: {question}\n{choices}\nLetters: {letters} {unknown}").messages(for: item)
        #expect(messages == [
            ChatMessage(role: "system", content: "Be brief."),
            ChatMessage(role: "user", content: "Q: Which {choices} braces?\nA) one\nB) two\nC) three\nLetters: ABC {unknown}"),
        ])
        let integer = PromptTemplates.standard.messages(for: BenchmarkItem(id: "n", question: "Find n.", answer: "3", kind: .integer))
        #expect(integer == [ChatMessage(role: "user", content: "Find n.\nPlease reason step by step, and put your final answer within \\boxed{}.")])
        let standardMC = PromptTemplates.standard.messages(for: item)[0].content
        #expect(standardMC.contains("'Answer: $LETTER' (without quotes) where LETTER is one of ABC."))
        #expect(standardMC.hasSuffix("Which {choices} braces?\n\nA) one\nB) two\nC) three"))
    }

    @Test func requestDialects() throws {
        let messages = [ChatMessage(role: "user", content: "hi")]
        let sampling = SamplingParameters.qwen3Thinking
        let openAI = ChatRequestBuilder.body(model: "m", messages: messages, sampling: sampling, dialect: .openAICompatible,
                                             extraFields: ["chat_template_kwargs": .object(["enable_thinking": .bool(false)])])
        #expect(openAI == [
            "model": .string("m"), "messages": .array([.object(["role": .string("user"), "content": .string("hi")])]),
            "max_tokens": .number(32768), "temperature": .number(0.6), "top_p": .number(0.95), "top_k": .number(20),
            "min_p": .number(0), "stream": .bool(false), "chat_template_kwargs": .object(["enable_thinking": .bool(false)]),
        ])
        let base: [String: JSONValue] = ["eos_token_id": .number(2), "do_sample": .bool(false)]
        let transformers = ChatRequestBuilder.body(model: "/m", messages: messages, sampling: sampling, dialect: .transformersServe(baseGenerationConfig: base))
        #expect(transformers["top_k"] == nil && transformers["min_p"] == nil)
        let config = try JSONValue.parse(Data(try #require(transformers["generation_config"]?.textValue).utf8))
        #expect(config == .object(["eos_token_id": .number(2), "do_sample": .bool(true), "top_k": .number(20)]))
        let greedy = ChatRequestBuilder.body(model: "/m", messages: messages, sampling: .greedy(maxTokens: 5), dialect: .transformersServe(baseGenerationConfig: base))
        #expect(greedy["generation_config"] == nil)
        #expect(greedy["temperature"] == .number(0))
    }

    @Test func parseCompletions() throws {
        let thinking = try ChatCompletion.parse(Data(#"{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"\n\n42","reasoning_content":"6*7"}}],"usage":{"completion_tokens":9,"prompt_tokens":5,"completion_tokens_details":{"reasoning_tokens":4}}}"#.utf8))
        #expect(thinking == ChatCompletion(content: "\n\n42", reasoning: "6*7", finishReason: "stop", completionTokens: 9, promptTokens: 5, reasoningTokens: 4))
        // vLLM's qwen3 reasoning parser: `reasoning`, content null.
        let vllm = try ChatCompletion.parse(Data(#"{"choices":[{"finish_reason":"stop","message":{"content":null,"reasoning":"Answer: C"}}],"usage":{"completion_tokens":3,"prompt_tokens":5}}"#.utf8))
        #expect(vllm.content == nil && vllm.reasoning == "Answer: C" && vllm.reasoningTokens == nil)
        #expect(throws: EvaluationError.badResponse(detail: "no usage.completion_tokens (token counts are required): {\"choices\":[{\"message\":{\"content\":\"x\"}}]}")) {
            try ChatCompletion.parse(Data(#"{"choices":[{"message":{"content":"x"}}]}"#.utf8))
        }
        #expect(throws: EvaluationError.badResponse(detail: "not a JSON object: <html>oops</html>")) {
            try ChatCompletion.parse(Data("<html>oops</html>".utf8))
        }
        #expect(OpenAIClient.errorMessage(Data(#"{"object":"error","message":"The model `x` does not exist.","code":404}"#.utf8)) == "The model `x` does not exist.")
        #expect(OpenAIClient.errorMessage(Data(#"{"detail":"Unexpected fields in the request: {'top_k'}"}"#.utf8)) == "Unexpected fields in the request: {'top_k'}")
    }
}

struct MetricsTests {
    func record(_ id: String, _ sample: Int, correct: Bool, tokens: Int, finish: String = "stop", reasoning: Int? = nil) -> ItemRecord {
        ItemRecord(benchmark: "b", id: id, sample: sample, response: "", content: nil, reasoning: nil, extracted: nil,
                   correct: correct, tokens: tokens, promptTokens: 1, reasoningTokens: reasoning, finishReason: finish)
    }

    @Test func meansAndStandardErrorsOverItems() {
        // Per-item accuracy 1, 0.5, 0 → mean 0.5, sd 0.5, se 0.5/√3. Per-item tokens 10, 25, 40 → mean 25, sd 15, se 15/√3.
        let records = [
            record("a", 0, correct: true, tokens: 10), record("a", 1, correct: true, tokens: 10),
            record("b", 0, correct: true, tokens: 20), record("b", 1, correct: false, tokens: 30, finish: "length"),
            record("c", 0, correct: false, tokens: 40, finish: "length"), record("c", 1, correct: false, tokens: 40),
        ]
        let metrics = BenchmarkMetrics.compute(records)
        #expect(metrics.items == 3 && metrics.samples == 2 && metrics.truncated == 2)
        #expect(abs(metrics.accuracy - 0.5) < 1e-12)
        #expect(abs(metrics.accuracyStderr - 0.5 / 3.0.squareRoot()) < 1e-12)
        #expect(abs(metrics.tokens - 25) < 1e-12)
        #expect(abs(metrics.tokensStderr - 15 / 3.0.squareRoot()) < 1e-12)
        #expect(metrics.reasoningTokens == nil)
        let withReasoning = BenchmarkMetrics.compute([record("a", 0, correct: true, tokens: 10, reasoning: 6), record("b", 0, correct: true, tokens: 10, reasoning: 3)])
        #expect(withReasoning.reasoningTokens == 4.5)
    }

    @Test func metricsJSONKeys() throws {
        let metrics = BenchmarkMetrics.compute([record("a", 0, correct: true, tokens: 7)])
        let result = EvaluationResult(benchmarks: ["gpqa": BenchmarkEvaluation(metrics: metrics, records: [])])
        let json = try JSONValue.parse(try result.metricsJSON())
        #expect(json == .object(["benchmarks": .object(["gpqa": .object([
            "accuracy": .number(1), "tokens": .number(7), "items": .number(1), "samples": .number(1),
            "accuracy_stderr": .number(0), "tokens_stderr": .number(0), "truncated": .number(0),
        ])])]))
    }

    @Test func storedResponses() throws {
        let benchmark = Benchmark(name: "b", items: [
            BenchmarkItem(id: "1", question: "?", answer: "42", kind: .integer),
            BenchmarkItem(id: "2", question: "?", answer: "C", kind: .multipleChoice, choices: ["a", "b", "c"]),
        ])
        let text = """
        {"id": "1", "response": "\\\\boxed{42}"}
        {"id": "2", "response": "Answer: B"}
        {"benchmark": "other", "id": "zzz", "response": "skipped"}
        """
        let report = try StoredResponses.grade(benchmark, responsesText: text, file: "r.jsonl")
        #expect(report.accuracy == 0.5)
        #expect(report.items.map(\.extracted) == ["42", "B"])
        #expect(throws: EvaluationError.badInput(file: "r.jsonl", line: 1, message: "id \"9\" is not an item of benchmark b")) {
            try StoredResponses.grade(benchmark, responsesText: #"{"id": "9", "response": "x"}"#, file: "r.jsonl")
        }
    }
}
