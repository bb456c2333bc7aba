import ArgumentParser
import BamboProtocol
import Foundation
import Worker
import ZeroMQ

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Take trials from a coordinator: merge, evaluate, report (BAMBO/1 over ZeroMQ).",
        discussion: """
        Connects a DEALER socket to the coordinator, announces itself (READY: \
        slots = 1 + prefetch, GPUs, evaluators), then for each TASK merges the \
        two models into SCRATCH/trial-T-attempt-A/model and runs the study's \
        evaluator on it, sending HEARTBEAT and PROGRESS throughout and RESULT or \
        FAILURE at the end (kept and re-sent until the coordinator ACKs it). \
        With --prefetch 1 the next task merges while the current one evaluates.

        The `exec` evaluator runs the study's command with BAMBO_MODEL_DIR, \
        BAMBO_TRIAL, BAMBO_ATTEMPT, BAMBO_WEIGHTS (JSON array) and BAMBO_WORK_DIR \
        set, in its own process group, and reads one JSON object from its stdout:
          {"benchmarks": {"NAME": {"accuracy": 0.71, "tokens": 812.5}, ...}}
        Non-zero exit, bad JSON, NaN or a timeout end the attempt with FAILURE \
        and the last lines of its stderr.

        The `harness` evaluator runs the study's benchmarks with the built-in \
        evaluation through one inference backend kept alive across trials \
        (transformers serve loads each merged directory by path; vllm/sglang \
        swap weights; openai uses the study's endpoint). Servers use --python \
        and are stopped when the worker exits.

        The worker reconnects with back-off (1, 2, 4 ... 30 s) when the \
        coordinator falls silent, and re-sends what it has not had ACKed. \
        SIGTERM/SIGINT abandon the current tasks (FAILURE ABANDONED), say BYE and \
        exit 0. SHUTDOWN from the coordinator exits 0 unless --persist.

        Examples:
          bambo worker --connect tcp://head:5555 --gpus 0 --prefetch 1
          bambo worker --connect tcp://head:5555 --name node7-gpu1 --gpus 1 \\
              --curve-server-key coordinator.pub --curve-secret node7.key
        """)

    @Option(help: ArgumentHelp("The coordinator's address, e.g. tcp://head:5555.", valueName: "endpoint"))
    var connect: String

    @Option(help: ArgumentHelp("Worker name and routing id; stable across restarts (default: host name, plus -gpuLIST with --gpus).", valueName: "name"))
    var name: String?

    @Option(help: ArgumentHelp("Scratch directory for merged models (default: $TMPDIR/bambo-worker-NAME). Stale trial-* entries are removed at start.", valueName: "dir"))
    var scratch: String?

    @Option(help: ArgumentHelp("Accelerators for the evaluator, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES).", valueName: "list"))
    var gpus: String?

    @Option(help: "Tasks merged ahead while one evaluates (slots = 1 + prefetch).")
    var prefetch: Int = 0

    @Option(name: .customLong("curve-server-key"), help: ArgumentHelp("The coordinator's CURVE public key file.", valueName: "file"))
    var curveServerKey: String?

    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("This worker's CURVE key pair file (bambo keygen; mode 0600).", valueName: "file"))
    var curveSecret: String?

    @Flag(help: "After SHUTDOWN, wait for the next study instead of exiting.")
    var persist = false

    @Option(help: ArgumentHelp("ZMTP heartbeat interval on the connection in seconds (0: off); the protocol's own heartbeats follow the coordinator's WELCOME.", valueName: "s"))
    var heartbeat: Double = 1

    @Option(name: .customLong("merge-threads"), help: ArgumentHelp("Threads per merge (default: all cores).", valueName: "n"))
    var mergeThreads: Int?

    @Option(help: ArgumentHelp("Python interpreter of the inference backend's environment for the harness evaluator (default: $BAMBO_PYTHON, else python3).", valueName: "path"))
    var python: String?

    @Option(name: .customLong("parent-pid"), help: ArgumentHelp("Stop as on SIGTERM once process PID is no longer this process's parent (a supervisor such as `bambo demo` passes its own pid).", valueName: "pid", visibility: .hidden))
    var parentPID: Int32?

    var gpuList: [String] {
        (gpus ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var workerName: String {
        if let name { return name }
        var host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "worker"
        host = String(host.map { $0.isLetter || $0.isNumber || "._:@-".contains($0) ? $0 : "-" })
        if host.isEmpty || !(host.first!.isLetter || host.first!.isNumber) { host = "worker" + host }
        let gpuSuffix = gpuList.isEmpty ? "" : "-gpu" + gpuList.joined(separator: "_")
        return String((host + gpuSuffix).prefix(128))
    }

    func validate() throws {
        guard ["tcp://", "ipc://", "inproc://"].contains(where: { connect.hasPrefix($0) }) else {
            throw ValidationError("--connect: expected an endpoint like tcp://HOST:5555 (got \"\(connect)\")")
        }
        guard workerName.range(of: #"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"#, options: .regularExpression) != nil else {
            throw ValidationError("--name: expected 1–128 characters of A–Z a–z 0–9 . _ : @ -, starting with a letter or digit (got \"\(workerName)\")")
        }
        guard (0...8).contains(prefetch) else { throw ValidationError("--prefetch must be between 0 and 8 (got \(prefetch))") }
        guard (curveServerKey == nil) == (curveSecret == nil) else {
            throw ValidationError("--curve-server-key and --curve-secret go together (CURVE needs the coordinator's public key and this worker's key pair)")
        }
        guard heartbeat.isFinite, heartbeat >= 0 else { throw ValidationError("--heartbeat must be a number of seconds ≥ 0 (got \(heartbeat))") }
        if let mergeThreads, mergeThreads < 1 { throw ValidationError("--merge-threads must be ≥ 1 (got \(mergeThreads))") }
        try ParentWatch.validate(parentPID)
    }

    func run() async throws {
        let name = workerName
        var curve: (serverKey: CurveKey, keyPair: CurveKeyPair)?
        if let curveServerKey, let curveSecret {
            do {
                curve = (try CurveKey(contentsOfFile: curveServerKey), try CurveKeyPair(contentsOfFile: curveSecret))
            } catch {
                throw ValidationError("\(error)")
            }
        } else if !Self.isLoopback(connect) {
            WorkerLog.write(name, "warning: connecting to \(connect) without CURVE: traffic is neither encrypted nor authenticated")
        }
        let scratchURL = URL(fileURLWithPath: scratch ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("bambo-worker-\(name)"))
        let capabilities = Capabilities(
            slots: 1 + prefetch, gpus: gpuList, backends: [], evaluators: ["exec", "harness"], version: BamboVersion.string)
        let configuration = WorkerConfiguration(
            name: name, host: ProcessInfo.processInfo.hostName, pid: Int(ProcessInfo.processInfo.processIdentifier),
            capabilities: capabilities, persist: persist)
        let options = WorkerOptions(
            endpoint: connect, scratch: scratchURL, gpus: gpuList, curve: curve, transportHeartbeat: heartbeat)
        let merger = EngineMerger(threads: mergeThreads ?? ProcessInfo.processInfo.activeProcessorCount)
        let interpreter = python ?? ProcessInfo.processInfo.environment["BAMBO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        let harness = HarnessEvaluator(python: interpreter, workDirectory: scratchURL.appendingPathComponent("backend"),
                                       log: { WorkerLog.write(name, $0) })
        let runtime = try WorkerRuntime(
            configuration: configuration, options: options, merger: merger, evaluators: [ExecEvaluator(), harness],
            log: { WorkerLog.write(name, $0) })
        WorkerLog.write(name, "connecting to \(connect) (slots \(capabilities.slots), scratch \(scratchURL.path)\(gpuList.isEmpty ? "" : ", GPUs \(gpuList.joined(separator: ","))"))")
        // Started after the runtime's SIGTERM handler exists (the runtime installs it when created or run).
        let parentWatch = parentPID.map { ParentWatch.start(parent: $0, log: { WorkerLog.write(name, $0) }) }
        let status = await runtime.run()
        parentWatch?.cancel()
        await harness.shutdown()
        if status != 0 { throw ExitCode(status) }
    }

    static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        let host = endpoint.dropFirst("tcp://".count).split(separator: ":").first.map(String.init) ?? ""
        return host == "localhost" || host.hasPrefix("127.") || endpoint.contains("[::1]")
    }
}

/// One log line on stderr: time, worker name, text.
enum WorkerLog {
    static func write(_ name: String, _ text: String) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        Terminal.error("\(formatter.string(from: Date())) worker \(name): \(text)")
    }
}
