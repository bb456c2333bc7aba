import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `--parent-pid`: a coordinator and a worker started the way `bambo demo` starts them, by a parent
/// that is then killed with SIGKILL (so it cannot stop them): both notice, stop as on SIGTERM, and
/// the worker's evaluator process (standing in for an inference server) goes with them.
@Suite struct ParentWatchCLITests {
    @Test(.timeLimit(.minutes(10)))
    func childrenOfAParentKilledWithSIGKILLExit() async throws {
        let scratch = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let made = try BamboProcess.run(["synthesize", "--out", scratch.appendingPathComponent("ckpt").path, "--layers", "4", "--hidden", "64"])
        try #require(made.status == 0, "\(made.stderr)")
        // An exec evaluator that never finishes: the worker is mid-evaluation when its parent dies.
        let study = """
            study: parent-watch
            models:
              - {name: instruct, path: ckpt/instruct}
              - {name: thinking, path: ckpt/thinking}
            partition: {blocks: 2, lambda: 1.0, norm: l2, strategy: hybrid}
            merge: {method: linear, dtype: bfloat16}
            evaluator: {kind: exec, command: ["/bin/sh", "-c", "sleep 600"], timeout: 3600}
            objectives:
              - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
              - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
            optimizer: {initial: 3, iterations: 1, batch: 1, acquisition: sobol, seed: 0}
            """
        try study.write(to: scratch.appendingPathComponent("study.yaml"), atomically: true, encoding: .utf8)

        // The parent: a shell that starts both with its own pid, as the demo does, and waits. Every
        // process it starts (and those start) carries the marker in its environment.
        let bambo = BamboProcess.executable.path
        let endpoint = "ipc://\(scratch.path)/coordinator.sock"
        let script = """
            "$1" coordinator --study study.yaml --archive study.db --bind "$2" --events none --heartbeat 0.5 --parent-pid $$ 2> coordinator.log &
            "$1" worker --connect "$2" --name pw1 --scratch worker-scratch --heartbeat 0 --merge-threads 1 --parent-pid $$ 2> worker.log &
            wait
            """
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sh")
        parent.arguments = ["-c", script, "parent", bambo, endpoint]
        parent.currentDirectoryURL = scratch
        parent.environment = ProcessInfo.processInfo.environment.merging(["BAMBO_DEMO_OUT": scratch.standardizedFileURL.path]) { $1 }
        try parent.run()
        defer {
            // A failing test leaves nothing running.
            for pid in DemoProcess.processes(marking: scratch) { kill(pid, SIGKILL) }
        }
        func log(_ name: String) -> String { (try? String(contentsOf: scratch.appendingPathComponent(name), encoding: .utf8)) ?? "" }
        func logs() -> String { "coordinator:\n\(log("coordinator.log"))\nworker:\n\(log("worker.log"))" }

        // Wait (hang guard only) until the worker runs the evaluator.
        var evaluator: pid_t?
        let deadline = ContinuousClock.now + .seconds(240)
        while evaluator == nil && parent.isRunning && ContinuousClock.now < deadline {
            evaluator = DemoProcess.processes(marking: scratch).first { DemoProcess.commandLine($0).contains("sleep 600") }
            if evaluator == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        _ = try #require(evaluator, "the evaluator never started\n\(logs())")
        let started = DemoProcess.processes(marking: scratch).filter { $0 != parent.processIdentifier }
        let commands = started.map(DemoProcess.commandLine)
        #expect(commands.contains { $0.contains(" coordinator ") } && commands.contains { $0.contains(" worker ") }, "\(commands)")

        kill(parent.processIdentifier, SIGKILL)
        // Everything the parent started exits by itself; the wait is a hang guard, not a timing check.
        let gone = ContinuousClock.now + .seconds(180)
        while !DemoProcess.processes(marking: scratch).isEmpty && ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(200)) }
        let left = DemoProcess.processes(marking: scratch)
        #expect(left.isEmpty, "still running after the parent's SIGKILL: \(left.map(DemoProcess.commandLine))\n\(logs())")
        // They stopped as on SIGTERM, saying why: the coordinator exits 0 keeping its archive, the
        // worker abandons its trial.
        #expect(log("coordinator.log").contains("is gone (the parent is now"), "\(logs())")
        #expect(log("worker.log").contains("is gone (the parent is now"), "\(logs())")
        #expect(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("study.db").path))
    }

    @Test func aParentPIDOfOneOrLessIsRefused() throws {
        let run = try BamboProcess.run(["worker", "--connect", "tcp://127.0.0.1:5555", "--parent-pid", "1"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("--parent-pid must be the pid of the supervising process"), "\(run.stderr)")
    }
}
