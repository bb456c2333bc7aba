import Foundation
import Testing
@testable import Evaluation

/// Against a real `transformers serve --continuous-batching` (PyTorch CPU, from the venv of
/// cluster/python-env.sh) serving tiny random Qwen3 models built by cluster/demo/tiny_qwen3.py.
/// Serialized: each test starts its own server, and the machine has few cores.
@Suite(.serialized, .enabled(if: TestEnvironment.python != nil, TestEnvironment.skipMessage))
struct TransformersServeTests {
    func backend(_ name: String, port: Int? = nil, extraArguments: [String] = []) -> TransformersServeBackend {
        TransformersServeBackend(python: TestEnvironment.python!, options: ServerOptions(
            port: port, extraArguments: extraArguments, startupTimeout: .seconds(180), workDirectory: TestEnvironment.scratchDirectory(name)))
    }

    /// Greedy replies computed offline by Hugging Face `generate` (an implementation independent of
    /// the server's continuous batching), with the same chat template: text and generated token count
    /// (end-of-sequence included, as servers count it).
    func offlineGreedyReplies(model: URL, conversations: [[ChatMessage]], maxTokens: Int) async throws -> [(text: String, tokens: Int)] {
        let script = """
        import json, sys, torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model_dir, max_tokens = sys.argv[1], int(sys.argv[2])
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        out = []
        for messages in json.load(sys.stdin):
            enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            with torch.no_grad():
                gen = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False)
            new = gen[0, enc["input_ids"].shape[1]:]
            out.append({"text": tok.decode(new, skip_special_tokens=True), "tokens": int(new.shape[0])})
        print(json.dumps(out))
        """
        let input = JSONValue.array(conversations.map { .array($0.map { .object(["role": .string($0.role), "content": .string($0.content)]) }) })
        let (status, stdout, stderr) = try await TestEnvironment.run([TestEnvironment.python!, "-c", script, model.path, String(maxTokens)],
                                                               stdin: input.jsonString(), environment: ["HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"])
        guard status == 0, case .array(let replies) = try JSONValue.parse(Data(stdout.utf8)) else {
            throw EvaluationError.invalidOption("offline generation failed: \(stderr)")
        }
        return replies.map { reply in
            guard case .object(let r) = reply, case .number(let tokens)? = r["tokens"] else { return ("", -1) }
            return (r["text"]?.textValue ?? "", Int(tokens))
        }
    }

    @Test("evaluate: replies, usage and accuracy match an offline reference; records; one server for two models")
    func evaluateTinyModel() async throws {
        // Seed 3's random weights answer printable text ("UUUU…"); seed 1's only newlines.
        let model = try await TinyModels.shared.directory(seed: 3)
        let other = try await TinyModels.shared.directory(seed: 1)
        let maxTokens = 10
        let questions = ["1234*5=", "Name a color.", "7*8=", "2222*3=", "abc", "4321*2="]
        let prompts = PromptTemplates.bare
        let reference = try await offlineGreedyReplies(
            model: model, conversations: questions.map { prompts.messages(for: BenchmarkItem(id: "", question: $0, answer: "", kind: .exact)) },
            maxTokens: maxTokens)
        // Letters and digits only, so that the reply itself is a well-formed exact answer ("UUUU…", "BBBB…").
        try #require(reference.allSatisfy { !$0.text.isEmpty && $0.text.allSatisfy { $0.isLetter || $0.isNumber } }, "\(reference)")
        // Every other item's reference answer is the model's reply (correct), the rest are not; plus a
        // multiple-choice item that a reply of letters cannot answer.
        var items = zip(questions.indices, reference).map { index, reply in
            BenchmarkItem(id: "e\(index)", question: questions[index], answer: index % 2 == 0 ? reply.text : reply.text + " (not)", kind: .exact)
        }
        items.append(BenchmarkItem(id: "c1", question: "Which is largest?", answer: "B", kind: .multipleChoice, choices: ["1", "9", "3", "4"]))
        let benchmark = Benchmark(name: "tiny", items: items)

        let backend = backend("evaluate")
        let sampling = SamplingParameters.greedy(maxTokens: maxTokens)
        let options = EvaluationOptions(samples: 2, prompts: prompts)
        let progress = ProgressLog()
        let result = try await evaluate(model: model.path, benchmarks: [benchmark], backend: backend, sampling: sampling,
                                        options: options, progress: { progress.append($0) })
        let process = try #require(await backend.process)

        let evaluation = try #require(result.benchmarks["tiny"])
        #expect(evaluation.records.count == items.count * 2)
        #expect(evaluation.metrics.items == items.count)
        #expect(evaluation.metrics.samples == 2)
        #expect(progress.all.map(\.done) == Array(0...(items.count * 2)))
        #expect(progress.all.allSatisfy { $0.total == items.count * 2 })
        #expect(abs(evaluation.metrics.accuracy - 3.0 / 7.0) < 1e-12)
        for (index, expected) in reference.enumerated() {
            for record in evaluation.records where record.id == "e\(index)" {
                #expect(record.content?.trimmingCharacters(in: .whitespacesAndNewlines) == expected.text.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(record.tokens == expected.tokens)
                #expect(record.correct == (index % 2 == 0))
                #expect(record.finishReason == (expected.tokens == maxTokens ? "length" : "stop"))
            }
        }
        #expect(evaluation.metrics.truncated == evaluation.records.filter { $0.finishReason == "length" }.count)
        let meanTokens = Double(evaluation.records.map(\.tokens).reduce(0, +)) / Double(evaluation.records.count)
        #expect(abs(evaluation.metrics.tokens - meanTokens) < 1e-9)

        // The same request sent by an independent client (Python's urllib): the usage we recorded is the server's.
        let served = try await backend.prepare(model: model.path)
        let body = ChatRequestBuilder.body(model: served.requestModel, messages: prompts.messages(for: items[0]), sampling: sampling, dialect: served.dialect)
        let script = """
        import json, sys, urllib.request
        req = urllib.request.Request(sys.argv[1] + "/v1/chat/completions", data=sys.stdin.read().encode(), headers={"Content-Type": "application/json"})
        reply = json.load(urllib.request.urlopen(req))
        print(json.dumps({"tokens": reply["usage"]["completion_tokens"], "content": reply["choices"][0]["message"]["content"]}))
        """
        let (status, stdout, stderr) = try await TestEnvironment.run([TestEnvironment.python!, "-c", script, served.baseURL.absoluteString],
                                                               stdin: JSONValue.object(body).jsonString())
        #expect(status == 0, "\(stderr)")
        let first = try #require(evaluation.records.first { $0.id == "e0" })
        #expect(try JSONValue.parse(Data(stdout.utf8)) == .object(["tokens": .number(Double(first.tokens)), "content": .string(first.content ?? "")]))

        // Regrading the stored replies gives the same accuracy.
        let regraded = try StoredResponses.grade(benchmark, responsesText: String(decoding: try result.recordsJSONL(), as: UTF8.self), file: "records")
        #expect(regraded.accuracy == evaluation.metrics.accuracy)

        // A second model directory: loaded on demand by the same server process.
        let second = try await evaluate(model: other.path, benchmarks: [benchmark], backend: backend, sampling: sampling, options: EvaluationOptions(prompts: prompts))
        #expect(second.benchmarks["tiny"]?.records.count == items.count)
        #expect(second.benchmarks["tiny"]?.metrics.accuracy == 0)
        #expect(await backend.process?.pid == process.pid)

        await backend.shutdown()
        #expect(!processExists(process.pid))
    }

    @Test("bambo eval --json and bambo grade agree")
    func commandLine() async throws {
        let model = try await TinyModels.shared.directory(seed: 3)
        let questions = ["1234*5=", "Name a color.", "7*8=", "2222*3="]
        let reference = try await offlineGreedyReplies(
            model: model, conversations: questions.map { [ChatMessage(role: "user", content: $0)] }, maxTokens: 8)
        let items = questions.indices.map { index in
            BenchmarkItem(id: "e\(index)", question: questions[index], answer: index % 2 == 0 ? reference[index].text : "no", kind: .exact)
        }
        let bambo = TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/bambo").path
        try #require(FileManager.default.isExecutableFile(atPath: bambo), "build the executable first (swift build)")
        let work = TestEnvironment.scratchDirectory("cli")
        let benchmarkFile = work.appendingPathComponent("tiny.jsonl")
        try TestEnvironment.writeBenchmark(items, to: benchmarkFile)
        let records = work.appendingPathComponent("records.jsonl")
        let (status, stdout, stderr) = try await TestEnvironment.run([
            bambo, "eval", "--model", model.path, "--benchmark", benchmarkFile.path, "--backend", "transformers",
            "--python", TestEnvironment.python!, "--max-tokens", "8", "--temperature", "0", "--prompts", "bare",
            "--work-dir", work.appendingPathComponent("server").path, "--records", records.path, "--json",
        ])
        try #require(status == 0, "bambo eval failed: \(stderr)")
        #expect(stderr.contains("eval: 4/4 replies"))
        guard case .object(let root) = try JSONValue.parse(Data(stdout.utf8)), case .object(let benchmarks)? = root["benchmarks"],
              case .object(let tiny)? = benchmarks["tiny"] else {
            Issue.record("unexpected JSON: \(stdout)")
            return
        }
        #expect(tiny["items"] == .number(4))
        guard case .number(let accuracy)? = tiny["accuracy"], case .number(let tokens)? = tiny["tokens"] else {
            Issue.record("accuracy/tokens missing: \(stdout)")
            return
        }
        #expect(accuracy == 0.5)
        #expect(tokens == Double(reference.map(\.tokens).reduce(0, +)) / 4)

        let (gradeStatus, gradeOut, gradeErr) = try await TestEnvironment.run([bambo, "grade", "--benchmark", benchmarkFile.path, "--responses", records.path, "--json"])
        try #require(gradeStatus == 0, "bambo grade failed: \(gradeErr)")
        guard case .object(let graded) = try JSONValue.parse(Data(gradeOut.utf8)), case .array(let gradedItems)? = graded["items"] else {
            Issue.record("unexpected JSON: \(gradeOut)")
            return
        }
        #expect(graded["accuracy"] == .number(accuracy))
        #expect(gradedItems.count == 4)
    }

    /// The progress callback SIGKILLs the server (the python process itself: `transformers serve` runs
    /// in one process) after the first reply. The failed requests ask the backend why, so the error
    /// is `serverDied` with the log, whichever notices first: a request or the monitor.
    @Test("a server killed mid-run fails the evaluation with its last log lines", .timeLimit(.minutes(10)))
    func serverCrashMidRun() async throws {
        let model = try await TinyModels.shared.directory(seed: 1)
        let backend = backend("crash")
        _ = try await backend.prepare(model: model.path)
        let pid = try #require(await backend.process?.pid)
        let items = (0..<40).map { BenchmarkItem(id: "q\($0)", question: "\($0 * 37)*7=", answer: "\($0 * 259)", kind: .integer) }
        do {
            _ = try await evaluate(model: model.path, benchmarks: [Benchmark(name: "long", items: items)], backend: backend,
                                   sampling: .greedy(maxTokens: 64), options: EvaluationOptions(concurrency: 2, requestTimeout: .seconds(120), prompts: .bare),
                                   progress: { if $0.done == 1 { kill(pid, SIGKILL) } })
            Issue.record("the evaluation succeeded although its server was killed")
        } catch let error as EvaluationError {
            guard case .serverDied(let status, let logTail) = error else {
                Issue.record("expected serverDied, got \(error)")
                return
            }
            #expect(status.contains("signal 9"))
            #expect(logTail.contains { $0.contains("POST /v1/chat/completions") })
            #expect(error.description.contains("last lines of its log"))
        }
        await backend.shutdown()
    }

    @Test("a port already in use is refused before starting")
    func portInUse() async throws {
        let model = try await TinyModels.shared.directory(seed: 1)
        let holder = try PortHolder()
        defer { holder.close() }
        let backend = backend("port", port: holder.port)
        await #expect(throws: EvaluationError.serverFailedToStart(
            reason: "port \(holder.port) on 127.0.0.1 is already in use; choose another port or leave it unset to pick a free one", logTail: [])) {
            _ = try await backend.prepare(model: model.path)
        }
    }

    @Test("a server that cannot bind its port, or gets a bogus flag, fails with its log lines")
    func serverFailsToStart() async throws {
        let model = try await TinyModels.shared.directory(seed: 1)
        let holder = try PortHolder()
        defer { holder.close() }
        for (arguments, expected) in [(["--port", String(holder.port)], "address already in use"), (["--no-such-flag"], "no such option")] {
            let backend = backend("bogus", extraArguments: arguments)
            do {
                _ = try await backend.prepare(model: model.path)
                Issue.record("the server started with \(arguments)")
            } catch let error as EvaluationError {
                guard case .serverFailedToStart(let reason, let logTail) = error else {
                    Issue.record("expected serverFailedToStart, got \(error)")
                    continue
                }
                #expect(reason.contains("before becoming healthy"), "\(reason)")
                #expect(logTail.joined(separator: "\n").lowercased().contains(expected), "\(logTail)")
            }
            await backend.shutdown()
        }
    }
}
