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
/// dispatch latency (from a worker becoming free — READY or RESULT sent — to its next TASK), and
/// the CPU the simulated fleet itself takes (this process), which shares the machine.
/// Baseline in the same run: the same coordinator with no workers connected.
struct BenchCoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinator CPU and dispatch latency with N simulated workers.",
        discussion: """
        A real coordinator process; the workers are simulated in this process on real DEALER \
        sockets: they register, send heartbeats, and answer each TASK with a RESULT after a \
        simulated evaluation. The default evaluation (60 s mean) is a short real trial (a merge and \
        a benchmark run on a GPU take minutes); --evaluation 10 is a stress case with six times \
        the results per second. The warm-up defaults to 1.5 × the evaluation + 5 s, so every \
        worker has returned a result before measuring (steady state).

        Examples:
          bambo bench coordinator --workers 1000
          bambo bench coordinator --workers 1000 --evaluation 10 --seconds 30
        """)

    @Option(help: "Number of simulated workers.")
    var workers = 100

    @Option(help: ArgumentHelp("Mean seconds a simulated evaluation takes (each takes 0.5–1.5 × this).", valueName: "seconds"))
    var evaluation: Double = 60

    @Option(help: ArgumentHelp("Heartbeat interval in seconds.", valueName: "seconds"))
    var heartbeat: Double = 1

    @Option(help: ArgumentHelp("Measurement window in seconds (after the warm-up).", valueName: "seconds"))
    var seconds: Double = 60

    @Option(name: .customLong("warmup"), help: ArgumentHelp("Warm-up before measuring (default: 1.5 × --evaluation + 5).", valueName: "seconds"))
    var warmupOption: Double?

    /// The warm-up: every worker has finished an evaluation before the window opens.
    var warmup: Double { warmupOption ?? 1.5 * evaluation + 5 }

    @Option(help: ArgumentHelp("How the simulated fleet waits for its sockets: epoll or zmq (zmq_poll over all, to compare).", visibility: .hidden))
    var fleetPoll: FleetPolling = .epoll

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be ≥ 1") }
        for (name, value) in [("--evaluation", evaluation), ("--heartbeat", heartbeat), ("--seconds", seconds)] where !(value > 0) {
            throw ValidationError("durations must be > 0: \(name) \(value)")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be ≥ 0 seconds (got \(warmup))") }
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

        let fleet = try Fleet(count: workers, endpoint: endpoint, evaluation: evaluation, heartbeat: heartbeat, polling: fleetPoll)
        try fleet.drive(for: warmup)
        fleet.latencies.removeAll()
        fleet.tasks = 0
        let before = try cpuSeconds(stat: "/proc/\(pid)/stat")
        // The fleet runs on this thread; its context's two ZeroMQ I/O threads make up the rest of this process.
        let fleetBefore = (process: try cpuSeconds(stat: "/proc/self/stat"), thread: try cpuSeconds(stat: "/proc/thread-self/stat"))
        let wallBefore = Date()
        try fleet.drive(for: seconds)
        let wallAfter = Date()
        let window = wallAfter.timeIntervalSince(wallBefore)
        let cpu = (try cpuSeconds(stat: "/proc/\(pid)/stat") - before) / window
        let fleetCPU = (try cpuSeconds(stat: "/proc/self/stat") - fleetBefore.process) / window
        let fleetThreadCPU = (try cpuSeconds(stat: "/proc/thread-self/stat") - fleetBefore.thread) / window
        kill(pid, SIGTERM)
        coordinator.waitUntilExit()
        fleet.close()
        let split = try coordinatorSideLatencies(archiveFile, from: wallBefore, to: wallAfter, fleet: fleet)
        let inside = split.inside.sorted(), arrival = split.arrival.sorted(), delivery = split.delivery.sorted()

        let sorted = fleet.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)] * 1000
        }
        print("coordinator benchmark: \(workers) workers, heartbeat \(heartbeat) s, evaluation \(evaluation) s, window \(seconds) s (after \(warmup) s warm-up)")
        print(String(format: "  baseline (no workers):  CPU %.2f%% of one core", 100 * idle))
        print(String(format: "  with %d workers:        CPU %.2f%% of one core", workers, 100 * cpu))
        let polling = fleetPoll == .epoll ? "epoll over ZMQ_FD" : "zmq_poll over all sockets"
        print("  the simulated fleet (this process, \(polling)):"
              + String(format: " CPU %.2f%% of one core (its event loop %.2f%%, the rest its 2 ZeroMQ I/O threads)", 100 * fleetCPU, 100 * fleetThreadCPU))
        print(String(format: "  dispatches measured: %d (%.1f/s); latency p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     sorted.count, Double(sorted.count) / seconds, percentile(0.5), percentile(0.99), (sorted.last ?? .nan) * 1000))
        print(String(format: "  inside the coordinator (RESULT recorded → the worker's next TASK recorded, archive timestamps; %d): p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     inside.count, Self.percentile(inside, 0.5) * 1000, Self.percentile(inside, 0.99) * 1000, (inside.last ?? .nan) * 1000))
        print(String(format: "    its parts: RESULT sent → recorded p50 %.2f ms, p99 %.2f ms; TASK recorded → received p50 %.2f ms, p99 %.2f ms",
                     Self.percentile(arrival, 0.5) * 1000, Self.percentile(arrival, 0.99) * 1000,
                     Self.percentile(delivery, 0.5) * 1000, Self.percentile(delivery, 0.99) * 1000))
        print("  workers registered: \(fleet.welcomed)/\(workers); messages received by the workers: \(fleet.received); registered again after being declared lost: \(fleet.reregistered)")
    }

    /// The p-th quantile of ascending `values` (nearest rank); NaN when empty.
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        values.isEmpty ? .nan : values[min(values.count - 1, max(0, Int((p * Double(values.count)).rounded(.up)) - 1))]
    }

    /// The end-to-end latency split at the coordinator's own timestamps (archive): for each result
    /// recorded in the window, `inside` = until the same worker's next attempt was recorded; `arrival` =
    /// from the simulated worker sending that RESULT until it was recorded; `delivery` = from the next
    /// attempt recorded until its TASK reached the worker (commit, send, the fleet's own event loop).
    private func coordinatorSideLatencies(_ archiveFile: URL, from start: Date, to end: Date, fleet: Fleet) throws
        -> (inside: [Double], arrival: [Double], delivery: [Double])
    {
        let archive = try Archive.open(at: archiveFile, options: .init(role: .shared, mode: .existing))
        defer { try? archive.close() }
        var byWorker: [String: [AttemptRecord]] = [:]
        for trial in try archive.trials() {
            for attempt in try archive.attempts(ofTrial: trial.id) { byWorker[attempt.worker, default: []].append(attempt) }
        }
        var inside: [Double] = [], arrival: [Double] = [], delivery: [Double] = []
        for attempts in byWorker.values {
            let ordered = attempts.sorted { $0.dispatched < $1.dispatched }
            for (done, next) in zip(ordered, ordered.dropFirst()) where done.state == .completed {
                guard let finished = done.finished, finished >= start, finished <= end else { continue }
                inside.append(next.dispatched.timeIntervalSince(finished))
                if let sent = fleet.resultSent[AttemptRef(trial: done.trial, attempt: done.number)] {
                    arrival.append(finished.timeIntervalSince(sent))
                }
                if let received = fleet.taskReceived[AttemptRef(trial: next.trial, attempt: next.number)] {
                    delivery.append(received.timeIntervalSince(next.dispatched))
                }
            }
        }
        return (inside, arrival, delivery)
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

    /// User + system CPU seconds of a process or thread, from its stat file (/proc/PID/stat,
    /// /proc/self/stat, /proc/thread-self/stat).
    private func cpuSeconds(stat path: String) throws -> Double {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let close = text.lastIndex(of: ")") else { throw ValidationError("cannot parse \(path)") }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw ValidationError("cannot parse \(path)")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func cpuFraction(pid: Int32, over window: Double) throws -> Double {
        let before = try cpuSeconds(stat: "/proc/\(pid)/stat")
        let start = Date()
        Thread.sleep(forTimeInterval: window)
        return (try cpuSeconds(stat: "/proc/\(pid)/stat") - before) / Date().timeIntervalSince(start)
    }
}

/// How the fleet waits for its sockets: an epoll set over each socket's ZMQ_FD (cost per wake-up
/// grows with the sockets that have news), or `zmq_poll` over all of them (the previous way, kept
/// to compare: each wake-up walks every socket).
enum FleetPolling: String, ExpressibleByArgument, CaseIterable {
    case epoll, zmq
}

/// N simulated workers on one thread: READY, heartbeats, a fixed evaluation time per TASK, RESULT.
/// Event-driven: it sleeps until a socket has a message or the next timer (an evaluation finishing,
/// a heartbeat due) is due, so its cost follows the messages, not the number of workers.
private final class Fleet {
    struct Worker {
        let peer: WorkerPeer
        var freeSince: Double?
        var running: [AttemptRef] = []
        var lastSent: Double = 0
    }

    /// Something a worker does at a set time.
    struct Timer: Comparable {
        enum Action { case finish(AttemptRef), heartbeat }
        let time: Double
        let worker: Int
        let action: Action
        static func < (a: Timer, b: Timer) -> Bool { a.time < b.time }
        static func == (a: Timer, b: Timer) -> Bool { a.time == b.time }
    }

    let context: Context
    var workers: [Worker] = []
    let evaluation: Double
    let heartbeat: Double
    var latencies: [Double] = []
    /// Wall-clock times (the archive's clock) of each RESULT sent and each TASK received, to split the
    /// end-to-end latency at the coordinator's own timestamps.
    var resultSent: [AttemptRef: Date] = [:]
    var taskReceived: [AttemptRef: Date] = [:]
    var tasks = 0
    var received = 0
    var welcomed = 0
    /// READYs sent again after ERROR UNKNOWN_WORKER (workers the coordinator had declared lost).
    var reregistered = 0
    let clockStart = ContinuousClock.now
    private var timers = MinHeap<Timer>()
    private let indexOf: [ObjectIdentifier: Int]
    #if os(Linux)
    private let epoll: EpollPoller?
    #endif
    private let poller: Poller?

    init(count: Int, endpoint: String, evaluation: Double, heartbeat: Double, polling: FleetPolling) throws {
        context = try Context(ioThreads: 2, maxSockets: Int32(count + 64))
        self.evaluation = evaluation
        self.heartbeat = heartbeat
        for index in 0..<count {
            let peer = try WorkerPeer(context: context, name: "bench-\(index)", endpoint: endpoint)
            workers.append(Worker(peer: peer))
        }
        indexOf = Dictionary(uniqueKeysWithValues: workers.enumerated().map { (ObjectIdentifier($0.element.peer.socket), $0.offset) })
        #if os(Linux)
        if polling == .epoll {
            let set = try EpollPoller()
            for worker in workers { try set.add(worker.peer.socket) }
            epoll = set
            poller = nil
        } else {
            epoll = nil
            poller = Poller(workers.map(\.peer.socket))
        }
        #else
        poller = Poller(workers.map(\.peer.socket))
        #endif
        let now = self.now()
        for index in workers.indices {
            sendReady(index)
            workers[index].freeSince = now
            timers.push(Timer(time: now + heartbeat, worker: index, action: .heartbeat))
        }
    }

    func now() -> Double {
        let elapsed = ContinuousClock.now - clockStart
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Runs the workers for `duration` seconds: fires the timers that are due, then waits for a
    /// socket with a message (reading every message at once, so a TASK's arrival time is taken
    /// promptly) or the next timer.
    func drive(for duration: Double) throws {
        let end = now() + duration
        while true {
            var time = now()
            guard time < end else { return }
            while let timer = timers.top, timer.time <= time {
                timers.pop()
                fire(timer, at: time)
            }
            time = now()
            let wake = min(end, timers.top?.time ?? end)
            for socket in try readySockets(timeout: .nanoseconds(Int64(max(0, wake - time) * 1e9))) {
                guard let index = indexOf[ObjectIdentifier(socket)] else { continue }
                drain(index)
            }
        }
    }

    private func readySockets(timeout: Duration) throws -> [Socket] {
        #if os(Linux)
        if let epoll { return try epoll.wait(timeout: timeout) }
        #endif
        return try poller!.poll(timeout: timeout)
    }

    /// Sends on a worker's socket (a failure is counted by the coordinator as silence, as for a real
    /// worker whose messages are lost), then lets the epoll set look at the socket again: a send can
    /// take the notification of a message that arrived meanwhile.
    private func send(_ index: Int, _ message: Message) {
        try? workers[index].peer.send(message)
        workers[index].lastSent = now()
        #if os(Linux)
        epoll?.recheck(workers[index].peer.socket)
        #endif
    }

    private func sendReady(_ index: Int) {
        send(index, .ready(ReadyBody(
            worker: workers[index].peer.name, pid: Int(getpid()) * 10_000 + index, host: "bench",
            capabilities: Capabilities(slots: 1, gpus: [], backends: [], evaluators: ["exec"], version: "bench"))))
    }

    private func fire(_ timer: Timer, at time: Double) {
        let index = timer.worker
        switch timer.action {
        case .finish(let ref):
            // Gone if the coordinator declared the worker lost meanwhile.
            guard let position = workers[index].running.firstIndex(of: ref) else { return }
            workers[index].running.remove(at: position)
            let m = Double(ref.trial % 100) / 100
            send(index, .result(ResultBody(
                trial: ref.trial, attempt: ref.attempt,
                metrics: Metrics(benchmarks: ["b": .init(accuracy: 0.2 + 0.6 * m, tokens: 100 + 900 * m)]),
                durations: Durations(merge: 0, evaluate: evaluation))))
            resultSent[ref] = Date()
            workers[index].freeSince = workers[index].lastSent
        case .heartbeat:
            if time - workers[index].lastSent >= heartbeat {
                send(index, .workerHeartbeat(WorkerHeartbeatBody(activeTrials: workers[index].running)))
            }
            timers.push(Timer(time: workers[index].lastSent + heartbeat, worker: index, action: .heartbeat))
        }
    }

    /// Reads every message waiting on a worker's socket.
    private func drain(_ index: Int) {
        while let message = try? workers[index].peer.receive(timeout: .zero) {
            let time = now()
            received += 1
            switch message {
            case .welcome: welcomed += 1
            case .error(let body) where body.code == .unknownWorker:
                // Declared lost (the coordinator fell behind): register again, as `bambo worker` does.
                workers[index].running = []
                sendReady(index)
                workers[index].freeSince = nil  // not a dispatch to measure
                reregistered += 1
            case .task(let body):
                tasks += 1
                taskReceived[AttemptRef(trial: body.trial, attempt: body.attempt)] = Date()
                if let since = workers[index].freeSince { latencies.append(time - since) }
                workers[index].freeSince = nil
                // Evaluation times spread over [0.5, 1.5] × --evaluation (deterministic per trial),
                // so results do not arrive in synchronized waves.
                let spread = 0.5 + Double((body.trial &* 2_654_435_761) % 1000) / 1000
                let ref = AttemptRef(trial: body.trial, attempt: body.attempt)
                workers[index].running.append(ref)
                timers.push(Timer(time: time + evaluation * spread, worker: index, action: .finish(ref)))
            default: break
            }
        }
    }

    func close() {
        #if os(Linux)
        for worker in workers { epoll?.remove(worker.peer.socket) }
        #endif
        for worker in workers { worker.peer.close() }
        context.close()
    }
}

/// A binary min-heap (the fleet's timers: push and pop in O(log n)).
private struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var top: Element? { items.first }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let smallest = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var least = parent
            if left < items.count, items[left] < items[least] { least = left }
            if right < items.count, items[right] < items[least] { least = right }
            guard least != parent else { return smallest }
            items.swapAt(parent, least)
            parent = least
        }
    }
}
