import Foundation
import Testing
@testable import Evaluation

/// Process lifecycle without a real inference server: FAKE commands (named as such) stand in for
/// vLLM and SGLang, which need a GPU.
struct ServerLifecycleTests {
    func modelDirectory(_ weights: String) throws -> URL {
        let url = TestEnvironment.scratchDirectory("model-\(weights)")
        try "{}".write(to: url.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try weights.write(to: url.appendingPathComponent("weights.txt"), atomically: true, encoding: .utf8)
        return url
    }

    @Test func vllmAndSGLangCommands() {
        let options = ServerOptions(extraArguments: ["--max-model-len", "32768", "--dtype", "bfloat16"], cudaVisibleDevices: "2",
                                    workDirectory: URL(fileURLWithPath: "/scratch/w"))
        let vllm = ManagedServerBackend(kind: .vllm, python: "/venv/bin/python", options: options)
        #expect(vllm.command(model: "/m/merge-1", port: 8100) == [
            "/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/scratch/w/served-model",
            "--served-model-name", "bambo-model", "--host", "127.0.0.1", "--port", "8100", "--enable-sleep-mode",
            "--max-model-len", "32768", "--dtype", "bfloat16",
        ])
        #expect(vllm.environment() == ["PYTHONUNBUFFERED": "1", "VLLM_SERVER_DEV_MODE": "1", "CUDA_VISIBLE_DEVICES": "2"])
        // vLLM's CPU build refuses sleep mode: a study saying --no-enable-sleep-mode gets no conflicting flag
        // (weights are still swapped: its endpoints work without sleep mode), and keeps VLLM_SERVER_DEV_MODE.
        let cpuOptions = ServerOptions(extraArguments: ["--no-enable-sleep-mode", "--dtype", "float32"], workDirectory: URL(fileURLWithPath: "/w"))
        let cpu = ManagedServerBackend(kind: .vllm, python: "python3", options: cpuOptions)
        #expect(!cpu.command(model: "/m/merge-1", port: 8100).contains("--enable-sleep-mode"))
        #expect(cpu.command(model: "/m/merge-1", port: 8100).suffix(3) == ["--no-enable-sleep-mode", "--dtype", "float32"])
        #expect(cpu.environment()["VLLM_SERVER_DEV_MODE"] == "1")
        let noSwap = ManagedServerBackend(kind: .vllm, python: "python3", options: options, swapWeights: false)
        #expect(noSwap.command(model: "/m/merge-1", port: 8100)[3...4] == ["--model", "/m/merge-1"])
        #expect(noSwap.environment()["VLLM_SERVER_DEV_MODE"] == nil)
        let sglang = ManagedServerBackend(kind: .sglang, python: "python3", options: options)
        #expect(sglang.command(model: "/m/merge-1", port: 30000) == [
            "python3", "-m", "sglang.launch_server", "--model-path", "/m/merge-1", "--served-model-name", "bambo-model",
            "--host", "127.0.0.1", "--port", "30000", "--max-model-len", "32768", "--dtype", "bfloat16",
        ])
        let transformers = TransformersServeBackend(python: "/venv/bin/python", options: ServerOptions(workDirectory: URL(fileURLWithPath: "/w")))
        #expect(transformers.command(port: 9000) == [
            "/venv/bin/python", "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1", "--port", "9000",
            "--continuous-batching", "--cb-num-blocks", "512", "--cb-block-size", "32",
        ])
        #expect(transformers.environment()["OMP_NUM_THREADS"] == "1")
        #expect(transformers.environment()["HF_HUB_OFFLINE"] == "1")
        #expect(transformers.environment()["HF_HUB_CACHE"] == "/w/hf-cache")
    }

    @Test("a fake vLLM that exits at start: failure with its log lines")
    func fakeServerExitsAtStart() async throws {
        let model = try modelDirectory("A")
        let backend = ManagedServerBackend(kind: .vllm, options: ServerOptions(startupTimeout: .seconds(30), workDirectory: TestEnvironment.scratchDirectory("exit")),
                                           launcher: ["/bin/sh", "-c", "echo 'fake-vllm: RuntimeError: no CUDA GPUs are available' >&2; exit 3", "fake-vllm"])
        do {
            _ = try await backend.prepare(model: model.path)
            Issue.record("the fake server was taken as healthy")
        } catch let error as EvaluationError {
            guard case .serverFailedToStart(let reason, let logTail) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("exited with status 3 before becoming healthy"))
            #expect(logTail == ["fake-vllm: RuntimeError: no CUDA GPUs are available"])
        }
    }

    @Test("a fake SGLang that never becomes healthy: timeout, process group stopped, log lines")
    func fakeServerNeverHealthy() async throws {
        let model = try modelDirectory("A")
        let marker = "fake-sglang-\(UUID().uuidString.prefix(8))"
        let backend = ManagedServerBackend(kind: .sglang, options: ServerOptions(startupTimeout: .milliseconds(1500), workDirectory: TestEnvironment.scratchDirectory("hang")),
                                           launcher: ["/bin/sh", "-c", "echo \"$0: loading weights forever\"; sleep 300 & wait", marker])
        let start = ContinuousClock.now
        do {
            _ = try await backend.prepare(model: model.path)
            Issue.record("the fake server was taken as healthy")
        } catch let error as EvaluationError {
            guard case .serverFailedToStart(let reason, let logTail) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("no healthy answer from http://127.0.0.1:"))
            #expect(logTail == ["\(marker): loading weights forever"])
        }
        #expect(ContinuousClock.now - start < .seconds(120), "hung: the fake server sleeps 300 s")
        // Neither the shell nor its child `sleep` survives.
        let survivors = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { entry in
            guard Int(entry) != nil, let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")) else { return false }
            return String(decoding: cmdline, as: UTF8.self).contains(marker)
        }
        #expect(survivors.isEmpty)
    }

    @Test("stop escalates to SIGKILL for a process group that ignores SIGTERM")
    func stopEscalates() async throws {
        let log = TestEnvironment.scratchDirectory("stop").appendingPathComponent("log")
        let process = try ServerProcess(command: ["/bin/sh", "-c", "trap '' TERM; echo started; sleep 300 & wait"], logFile: log)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await process.exitDescription() == nil)
        let start = ContinuousClock.now
        await process.stop(grace: .milliseconds(500))
        #expect(ContinuousClock.now - start < .seconds(60), "hung: the process sleeps 300 s")
        #expect(await process.exitDescription() == "killed by signal 9 (SIGKILL: out of memory?)")
        #expect(await liveGroupMembers(process.pid).isEmpty)  // the child `sleep` went too
        #expect(process.logTail() == ["started"])
    }

    @Test("asked after a failed request: a server that exited is reported with its log, a running one is not")
    func failureOfAnExitedServer() async throws {
        let directory = TestEnvironment.scratchDirectory("failure")
        let running = try ServerProcess(command: ["/bin/sh", "-c", "echo up; exec sleep 300"], logFile: directory.appendingPathComponent("running.log"))
        #expect(await running.failure() == nil)
        // It exits a moment after the question: the grace covers that (a killed server's sockets close before it can be reaped).
        let exiting = try ServerProcess(command: ["/bin/sh", "-c", "sleep 0.3; echo bye; exit 3"], logFile: directory.appendingPathComponent("exiting.log"))
        #expect(await exiting.failure(within: .seconds(120)) == .serverDied(status: "exited with status 3", logTail: ["bye"]))
        await running.stop(grace: .seconds(5))
        #expect(await running.failure() == .serverDied(status: "killed by signal 15", logTail: ["up"]))
    }

    @Test func missingExecutable() {
        #expect(throws: EvaluationError.serverFailedToStart(reason: "cannot run /nonexistent/fake-server: No such file or directory", logTail: [])) {
            _ = try ServerProcess(command: ["/nonexistent/fake-server"], logFile: TestEnvironment.scratchDirectory("x").appendingPathComponent("log"))
        }
    }

    @Test func unreachableEndpoint() async throws {
        let port = try LocalPort.free()  // nothing listens there
        let client = OpenAIClient(baseURL: URL(string: "http://127.0.0.1:\(port)")!, maxRetries: 0)
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.chatCompletion(["model": .string("m")])
            Issue.record("a request to a closed port succeeded")
        } catch let error as EvaluationError {
            guard case .unreachable(let endpoint, _) = error else { Issue.record("\(error)"); return }
            #expect(endpoint == "http://127.0.0.1:\(port)/v1/chat/completions")
        }
        await client.shutdown()
    }

    @Test func endpointNormalization() async throws {
        for text in ["http://host:8000/v1", "http://host:8000/v1/", "http://host:8000"] {
            let served = try await OpenAIEndpointBackend(endpoint: URL(string: text)!).prepare(model: "Qwen/Qwen3-8B")
            #expect(served.baseURL.absoluteString == "http://host:8000")
            #expect(served.requestModel == "Qwen/Qwen3-8B")
        }
    }

    @Test func swapVerification() {
        let a = Fingerprint(tokens: ["1", ","], logprobs: [-0.1, -0.2])
        let aNoisy = Fingerprint(tokens: ["1", ","], logprobs: [-0.1004, -0.2])
        let b = Fingerprint(tokens: ["1", ","], logprobs: [-0.1, -0.25])
        let c = Fingerprint(tokens: ["One"], logprobs: [-0.1])
        #expect(SwapVerification.accepts(after: b, previous: a, expected: nil))        // changed: new weights
        #expect(!SwapVerification.accepts(after: aNoisy, previous: a, expected: nil))  // unchanged: stale
        #expect(SwapVerification.accepts(after: aNoisy, previous: b, expected: a))     // matches a fresh load
        #expect(!SwapVerification.accepts(after: c, previous: b, expected: a))         // differs from a fresh load
        #expect(!SwapVerification.accepts(after: a, previous: nil, expected: nil))     // nothing to compare: restart
    }
}

/// Weight swaps and their verification against a FAKE server (Tests/EvaluationTests/FakeServers) that
/// imitates vLLM's development endpoints and SGLang's update endpoint; it needs Python (stdlib only).
@Suite(.serialized, .enabled(if: TestEnvironment.python != nil, TestEnvironment.skipMessage))
struct WeightSwapTests {
    static let fakeServer = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/EvaluationTests/FakeServers/fake_weight_swap_server.py").path

    func modelDirectory(_ weights: String) throws -> URL {
        try ServerLifecycleTests().modelDirectory(weights)
    }

    func servedWeights(_ served: ServedModel) async throws -> String? {
        let client = OpenAIClient(baseURL: served.baseURL)
        let reply = try await client.chatCompletion(ChatRequestBuilder.body(model: served.requestModel, messages: [ChatMessage(role: "user", content: "?")],
                                                                           sampling: .greedy(maxTokens: 2), dialect: served.dialect))
        await client.shutdown()
        return reply.content
    }

    @Test("swaps are verified; a stale reload falls back to a restart", arguments: [ManagedServerBackend.Kind.vllm, .sglang])
    func swaps(kind: ManagedServerBackend.Kind) async throws {
        let a = try modelDirectory("A"), b = try modelDirectory("B")
        for stale in [false, true] {
            let backend = ManagedServerBackend(
                kind: kind, options: ServerOptions(environment: stale ? ["FAKE_STALE_RELOAD": "1"] : [:], startupTimeout: .seconds(60),
                                                   workDirectory: TestEnvironment.scratchDirectory("swap")),
                launcher: [TestEnvironment.python!, Self.fakeServer])
            let first = try await backend.prepare(model: a.path)
            #expect(await backend.lastTransition == "start")
            #expect(try await servedWeights(first) == "weights A")
            #expect(first.requestModel == "bambo-model")

            let second = try await backend.prepare(model: b.path)
            #expect(await backend.lastTransition == (stale ? "restart" : "swap"), "stale: \(stale)")
            #expect(try await servedWeights(second) == "weights B")
            #expect(second.baseURL == first.baseURL || stale)

            let back = try await backend.prepare(model: a.path)
            #expect(await backend.lastTransition == (stale ? "restart" : "swap"))
            #expect(try await servedWeights(back) == "weights A")
            _ = try await backend.prepare(model: a.path)
            #expect(await backend.lastTransition == (stale ? "restart" : "swap"))  // unchanged: same model, nothing done
            await backend.shutdown()
        }
    }
}
