import Archive
import ArgumentParser
import Coordinator
import Dispatch
import Foundation
import ZeroMQ

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run a study: hand trials to workers, record their results, propose new trials until the budget is spent.",
        discussion: """
        On first start it profiles the two models, partitions the layers, stores both in the archive \
        and proposes the warm start (x = 0, x = 1, x = ½, then Sobol points up to `initial`). Restarted \
        on the same archive it resumes from the archive alone. Workers connect with \
        `bambo worker --connect tcp://HOST:5555`; watch with `bambo log --follow`.

        SIGINT/SIGTERM stop dispatching and exit 0 (restart to resume). At the budget the workers get \
        SHUTDOWN, the study is marked finished and the command exits 0.

        Binding anything but loopback needs CURVE (--curve-secret, --allow-keys; keys from \
        `bambo keygen`) or an explicit --insecure.
        """)

    @Option(help: ArgumentHelp("The study file (YAML). Optional when --archive already holds the study.", valueName: "file"))
    var study: String?

    @Option(help: ArgumentHelp("The SQLite archive (default: beside the study file, STUDY.sqlite).", valueName: "file"))
    var archive: String?

    @Option(help: ArgumentHelp("ROUTER endpoint for workers.", valueName: "endpoint"))
    var bind = "tcp://*:5555"

    @Option(help: ArgumentHelp("PUB endpoint for the event stream (`none` for no socket).", valueName: "endpoint"))
    var events = "tcp://*:5556"

    @Option(name: .customLong("curve-secret"), help: ArgumentHelp("The coordinator's CURVE secret key file (from `bambo keygen`).", valueName: "file"))
    var curveSecret: String?

    @Option(name: .customLong("allow-keys"), help: ArgumentHelp("Directory of the workers' public key files (*.pub) allowed to connect.", valueName: "dir"))
    var allowKeys: String?

    @Flag(help: "Allow binding a non-loopback address without CURVE (anyone who can connect can take tasks).")
    var insecure = false

    @Option(help: ArgumentHelp("Heartbeat interval in seconds (workers are lost after --lease-beats silent intervals).", valueName: "seconds"))
    var heartbeat: Double = 1

    @Option(name: .customLong("lease-beats"), help: ArgumentHelp(
        "Heartbeat intervals of silence after which a worker is lost and its trials requeued (at least 2). Sent to workers in WELCOME: they give up on a silent coordinator after as many.",
        valueName: "n"))
    var leaseBeats = 3

    @Option(name: .customLong("parent-pid"), help: ArgumentHelp("Stop as on SIGTERM once process PID is no longer this process's parent (a supervisor such as `bambo demo` passes its own pid).", valueName: "pid", visibility: .hidden))
    var parentPID: Int32?

    func validate() throws {
        guard study != nil || archive != nil else { throw ValidationError("pass --study FILE (and/or --archive FILE to resume)") }
        guard (curveSecret == nil) == (allowKeys == nil) else { throw ValidationError("--curve-secret and --allow-keys go together") }
        guard heartbeat.isFinite, heartbeat > 0 else { throw ValidationError("--heartbeat must be a number of seconds > 0 (got \(heartbeat))") }
        guard leaseBeats >= 2 else {
            throw ValidationError("--lease-beats must be an integer ≥ 2 (got \(leaseBeats)): with fewer, one late heartbeat loses a healthy worker")
        }
        try ParentWatch.validate(parentPID)
    }

    func run() throws {
        let log: @Sendable (String) -> Void = { Terminal.error("[\(EventRecordTime.now())] \($0)") }
        var config: StudyConfig?
        if let study {
            do { config = try StudyConfig.load(from: URL(fileURLWithPath: study)) } catch let error as StudyConfigError {
                throw ValidationError(error.description)
            }
        }
        let archiveURL = archive.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: study!).deletingPathExtension().appendingPathExtension("sqlite")
        var options = CoordinatorService.Options()
        options.bind = bind
        options.events = events == "none" ? nil : events
        options.insecure = insecure
        options.heartbeatInterval = heartbeat
        options.leaseBeats = leaseBeats
        if let curveSecret, let allowKeys {
            let pair = try CurveKeyPair(contentsOfFile: curveSecret)
            let allowed = try CurveKey.allowList(directory: allowKeys)
            log("CURVE on: \(allowed.count) worker key(s) allowed from \(allowKeys)")
            options.curve = (pair.secretKey, allowed)
        }
        let sink = CoordinatorEventSink()
        let store = try Archive.open(at: archiveURL, options: CoordinatorService.archiveOptions(sink))
        defer { try? store.close() }
        let service: CoordinatorService
        do {
            service = try CoordinatorService(config: config, archive: store, options: options, log: log)
        } catch let error as StudyConfigError {
            throw ValidationError(error.description)
        }
        log("archive \(archiveURL.path), events \(EventLog.url(besideArchive: archiveURL).path)")
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { service.requestStop() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        let parentWatch = parentPID.map { ParentWatch.start(parent: $0, log: log) }
        defer { parentWatch?.cancel() }
        _ = try service.run(sink: sink)
    }
}

/// Wall-clock time for log lines.
enum EventRecordTime {
    /// One formatter for every line (making one costs far more than formatting), used under `lock`.
    nonisolated(unsafe) private static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        return formatter
    }()
    private static let lock = NSLock()

    static func now() -> String {
        lock.withLock { formatter.string(from: Date()) }
    }
}
