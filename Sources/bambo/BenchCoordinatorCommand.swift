import Archive
import ArgumentParser
import BamboProtocol
import Coordinator
import Foundation
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// `bambo bench coordinator`: a real `bambo coordinator` process with N simulated workers (real
/// DEALER sockets on loopback, all driven by one thread of this process, evaluating in a fixed
/// time). Measures the coordinator's CPU (from /proc: user + system time over a window) and the
/// dispatch latency (from a worker becoming free — READY or RESULT sent — to its next TASK).
/// Baseline in the same run: the same coordinator with no workers connected.
struct BenchCoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinator CPU and dispatch latency with N simulated workers.")

    @Option(help: "Number of simulated workers.")
    var workers = 100

    @Option(help: ArgumentHelp("Mean seconds a simulated evaluation takes (each takes 0.5–1.5 × this).", valueName: "seconds"))
    var evaluation: Double = 10

    @Option(help: ArgumentHelp("Heartbeat interval in seconds.", valueName: "seconds"))
    var heartbeat: Double = 1

    @Option(help: ArgumentHelp("Measurement window in seconds (after the warm-up).", valueName: "seconds"))
    var seconds: Double = 20

    @Option(help: ArgumentHelp("Warm-up before measuring: all workers registered and busy.", valueName: "seconds"))
    var warmup: Double = 5

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be ≥ 1") }
        guard evaluation > 0, heartbeat > 0, seconds > 0, warmup >= 0 else { throw ValidationError("durations must be > 0") }
    }

    func run() throws {
        raiseFileLimit()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-bench-coordinator-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        guard runQuietly(me, ["synthesize", "--out", directory.appendingPathComponent("ckpt").path, "--layers", "4", "--hidden", "64"]) == 0 else {
            throw ValidationError("bambo synthesize failed")
        }
        // Budget: more trials than the run can evaluate, so the study never ends while measuring.
        let expected = Int(Double(workers) * (warmup + seconds + 30) / evaluation) + 2 * workers
        let batch = max(4, workers / 8)
        let iterations = expected / batch + 1
        let study = """
            study: bench
            models:
              - {name: instruct, path: ckpt/instruct}
              - {name: thinking, path: ckpt/thinking}
            partition: {blocks: 2}
            merge: {method: linear, dtype: bfloat16}
            evaluator: {kind: exec, command: ["true"], timeout: 600}
            objectives:
              - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
              - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
            optimizer: {initial: 8, iterations: \(iterations), batch: \(batch), acquisition: sobol, seed: 0}
            """
        let studyFile = directory.appendingPathComponent("study.yaml")
        try study.write(to: studyFile, atomically: true, encoding: .utf8)

        let logFile = directory.appendingPathComponent("coordinator.log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let coordinator = Process()
        coordinator.executableURL = me
        let archiveFile = directory.appendingPathComponent("study.sqlite")
        coordinator.arguments = ["coordinator", "--study", studyFile.path, "--archive", archiveFile.path, "--bind", "tcp://127.0.0.1:*", "--events", "none", "--heartbeat", "\(heartbeat)"]
        coordinator.standardError = try FileHandle(forWritingTo: logFile)
        coordinator.standardOutput = FileHandle.nullDevice
        try coordinator.run()
        defer {
            if coordinator.isRunning { kill(coordinator.processIdentifier, SIGKILL) }
        }
        var endpoint = ""
        let start = Date()
        while endpoint.isEmpty {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            if let range = log.range(of: #"listening on tcp://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                endpoint = String(log[range].dropFirst("listening on ".count))
            } else if !coordinator.isRunning || Date().timeIntervalSince(start) > 60 {
                throw ValidationError("the coordinator did not start: \(log)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let pid = coordinator.processIdentifier

        // Baseline: the coordinator alone.
        let baselineWindow = min(3.0, seconds)
        let idle = try cpuFraction(pid: pid, over: baselineWindow)

        let fleet = try Fleet(count: workers, endpoint: endpoint, evaluation: evaluation, heartbeat: heartbeat)
        fleet.drive(for: warmup)
        fleet.latencies.removeAll()
        fleet.tasks = 0
        let before = try cpuSeconds(pid: pid)
        let wallBefore = Date()
        fleet.drive(for: seconds)
        let wallAfter = Date()
        let cpu = (try cpuSeconds(pid: pid) - before) / wallAfter.timeIntervalSince(wallBefore)
        kill(pid, SIGTERM)
        coordinator.waitUntilExit()
        fleet.close()
        let inside = try coordinatorSideLatencies(archiveFile, from: wallBefore, to: wallAfter).sorted()

        let sorted = fleet.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)] * 1000
        }
        print("coordinator benchmark: \(workers) workers, heartbeat \(heartbeat) s, evaluation \(evaluation) s, window \(seconds) s (after \(warmup) s warm-up)")
        print(String(format: "  baseline (no workers):  CPU %.2f%% of one core", 100 * idle))
        print(String(format: "  with %d workers:        CPU %.2f%% of one core", workers, 100 * cpu))
        print(String(format: "  dispatches measured: %d (%.1f/s); latency p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     sorted.count, Double(sorted.count) / seconds, percentile(0.5), percentile(0.99), (sorted.last ?? .nan) * 1000))
        print(String(format: "  inside the coordinator (RESULT recorded → the worker's next TASK recorded, archive timestamps; %d): p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     inside.count, Self.percentile(inside, 0.5) * 1000, Self.percentile(inside, 0.99) * 1000, (inside.last ?? .nan) * 1000))
        print("  workers registered: \(fleet.welcomed)/\(workers); messages received by the workers: \(fleet.received); registered again after being declared lost: \(fleet.reregistered)")
    }

    /// The p-th quantile of ascending `values` (nearest rank); NaN when empty.
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        values.isEmpty ? .nan : values[min(values.count - 1, max(0, Int((p * Double(values.count)).rounded(.up)) - 1))]
    }

    /// The coordinator's own share of dispatch latency: for each result recorded in the window, the
    /// time until the same worker's next attempt was recorded (both stamped by the coordinator). It
    /// leaves out the sockets and the simulated fleet, whose one thread polls every worker socket and
    /// so adds its own delay to the end-to-end figure on a small machine.
    private func coordinatorSideLatencies(_ archiveFile: URL, from start: Date, to end: Date) throws -> [Double] {
        let archive = try Archive.open(at: archiveFile, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        var byWorker: [String: [AttemptRecord]] = [:]
        for trial in try archive.trials() {
            for attempt in try archive.attempts(ofTrial: trial.id) { byWorker[attempt.worker, default: []].append(attempt) }
        }
        var latencies: [Double] = []
        for attempts in byWorker.values {
            let ordered = attempts.sorted { $0.dispatched < $1.dispatched }
            for (done, next) in zip(ordered, ordered.dropFirst()) where done.state == .completed {
                guard let finished = done.finished, finished >= start, finished <= end else { continue }
                latencies.append(next.dispatched.timeIntervalSince(finished))
            }
        }
        return latencies
    }

    private func runQuietly(_ executable: URL, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Raises the open-file limit to its hard maximum (each worker socket and connection is a file).
    private func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// User + system CPU seconds of a process, from /proc/PID/stat.
    private func cpuSeconds(pid: Int32) throws -> Double {
        let text = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = text.lastIndex(of: ")") else { throw ValidationError("cannot parse /proc/\(pid)/stat") }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw ValidationError("cannot parse /proc/\(pid)/stat")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func cpuFraction(pid: Int32, over window: Double) throws -> Double {
        let before = try cpuSeconds(pid: pid)
        let start = Date()
        Thread.sleep(forTimeInterval: window)
        return (try cpuSeconds(pid: pid) - before) / Date().timeIntervalSince(start)
    }
}

/// N simulated workers on one thread: READY, heartbeats, a fixed evaluation time per TASK, RESULT.
private final class Fleet {
    struct Worker {
        let peer: WorkerPeer
        var freeSince: Double?
        var running: [(ref: AttemptRef, finish: Double)] = []
        var lastSent: Double = 0
    }

    let context: Context
    var workers: [Worker] = []
    let evaluation: Double
    let heartbeat: Double
    var latencies: [Double] = []
    var tasks = 0
    var received = 0
    var welcomed = 0
    /// READYs sent again after ERROR UNKNOWN_WORKER (workers the coordinator had declared lost).
    var reregistered = 0
    let clockStart = ContinuousClock.now

    init(count: Int, endpoint: String, evaluation: Double, heartbeat: Double) throws {
        context = try Context(ioThreads: 2, maxSockets: Int32(count + 64))
        self.evaluation = evaluation
        self.heartbeat = heartbeat
        for index in 0..<count {
            let peer = try WorkerPeer(context: context, name: "bench-\(index)", endpoint: endpoint)
            workers.append(Worker(peer: peer))
        }
        let now = self.now()
        for index in workers.indices {
            try workers[index].peer.send(.ready(ReadyBody(
                worker: workers[index].peer.name, pid: Int(getpid()) * 10_000 + index, host: "bench",
                capabilities: Capabilities(slots: 1, gpus: [], backends: [], evaluators: ["exec"], version: "bench"))))
            workers[index].freeSince = now
            workers[index].lastSent = now
        }
    }

    func now() -> Double {
        let elapsed = ContinuousClock.now - clockStart
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Runs the workers for `duration` seconds: reads only the sockets the poll reports ready (so a
    /// TASK's arrival time is taken promptly), and scans every worker for finished evaluations and
    /// due heartbeats every 5 ms.
    func drive(for duration: Double) {
        let end = now() + duration
        let poller = Poller(workers.map(\.peer.socket))
        let indexOf = Dictionary(uniqueKeysWithValues: workers.enumerated().map { (ObjectIdentifier($0.element.peer.socket), $0.offset) })
        var nextScan = 0.0
        while now() < end {
            let ready = (try? poller.poll(timeout: .milliseconds(2))) ?? []
            for socket in ready {
                guard let index = indexOf[ObjectIdentifier(socket)] else { continue }
                while let message = try? workers[index].peer.receive(timeout: .zero) {
                    let time = now()
                    received += 1
                    switch message {
                    case .welcome: welcomed += 1
                    case .error(let body) where body.code == .unknownWorker:
                        // Declared lost (the coordinator fell behind): register again, as `bambo worker` does.
                        workers[index].running = []
                        try? workers[index].peer.send(.ready(ReadyBody(
                            worker: workers[index].peer.name, pid: Int(getpid()) * 10_000 + index, host: "bench",
                            capabilities: Capabilities(slots: 1, gpus: [], backends: [], evaluators: ["exec"], version: "bench"))))
                        workers[index].freeSince = nil  // not a dispatch to measure
                        reregistered += 1
                    case .task(let body):
                        tasks += 1
                        if let since = workers[index].freeSince { latencies.append(time - since) }
                        workers[index].freeSince = nil
                        // Evaluation times spread over [0.5, 1.5] × --evaluation (deterministic per trial),
                        // so results do not arrive in synchronized waves.
                        let spread = 0.5 + Double((body.trial &* 2_654_435_761) % 1000) / 1000
                        workers[index].running.append((AttemptRef(trial: body.trial, attempt: body.attempt), time + evaluation * spread))
                    default: break
                    }
                }
            }
            let time = now()
            guard time >= nextScan else { continue }
            nextScan = time + 0.005
            for index in workers.indices {
                var worker = workers[index]
                while let done = worker.running.firstIndex(where: { $0.finish <= time }) {
                    let ref = worker.running.remove(at: done).ref
                    let m = Double(ref.trial % 100) / 100
                    try? worker.peer.send(.result(ResultBody(
                        trial: ref.trial, attempt: ref.attempt,
                        metrics: Metrics(benchmarks: ["b": .init(accuracy: 0.2 + 0.6 * m, tokens: 100 + 900 * m)]),
                        durations: Durations(merge: 0, evaluate: evaluation))))
                    worker.lastSent = time
                    worker.freeSince = now()
                }
                if time - worker.lastSent >= heartbeat {
                    try? worker.peer.send(.workerHeartbeat(WorkerHeartbeatBody(activeTrials: worker.running.map(\.ref))))
                    worker.lastSent = time
                }
                workers[index] = worker
            }
        }
    }

    func close() {
        for worker in workers { worker.peer.close() }
        context.close()
    }
}
