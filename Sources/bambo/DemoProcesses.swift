import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process of `bambo demo`: its own process group, stdin from /dev/null, stdout and stderr
/// appended to a log file, default signal dispositions. Polled, never waited on blindly.
final class DemoChild {
    /// How a child ended.
    enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)
        var description: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    let name: String
    let pid: pid_t
    let logFile: URL
    /// The log's size before this child started: what it writes comes after (a resumed demo appends).
    let logStart: UInt64
    private(set) var termination: Termination?

    /// Starts `arguments[0]` (a path) with `environment`.
    init(name: String, arguments: [String], environment: [String: String], logFile: URL) throws {
        self.name = name
        self.logFile = logFile
        logStart = ((try? FileManager.default.attributesOfItem(atPath: logFile.path))?[.size] as? NSNumber)?.uint64Value ?? 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT] { sigaddset(&defaults, signal) }
        var noMask = sigset_t()
        sigemptyset(&noMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &noMask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw DemoError("cannot start \(name) (\(arguments[0])): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    /// How the child ended, reaping it; nil while it runs.
    @discardableResult
    func poll() -> Termination? {
        if termination != nil { return termination }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let signal = status & 0x7F
        termination = signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
        return termination
    }

    var isRunning: Bool { poll() == nil }

    /// Sends `signal` to the child (not its group: it stops what it started itself).
    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// What this child wrote to its log so far.
    func logText() -> String {
        guard let handle = FileHandle(forReadingAtPath: logFile.path) else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: logStart)
        return String(decoding: handle.availableData, as: UTF8.self)
    }

    /// The last `lines` lines this child wrote to its log.
    func logTail(lines: Int = 20) -> String {
        let text = logText()
        guard !text.isEmpty else { return "(nothing in \(logFile.path))" }
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Stops `children` and everything they started: SIGTERM to each running child (the coordinator
    /// persists and exits; a worker abandons its trials and stops its inference server), waits up to
    /// `grace` seconds, then SIGKILLs what remains, and finally every process whose environment carries
    /// `marker` (grandchildren such as an inference server whose worker did not stop it).
    static func stopAll(_ children: [DemoChild], grace: Double, marker: (key: String, value: String)) {
        for child in children { child.send(SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while children.contains(where: \.isRunning) && Date() < deadline { usleep(50_000) }
        for child in children where child.isRunning {
            Terminal.error("demo: \(child.name) (pid \(child.pid)) did not stop within \(Int(grace)) s: SIGKILL")
            kill(-child.pid, SIGKILL)
            kill(child.pid, SIGKILL)
            while child.isRunning { usleep(10_000) }
        }
        sweep(marker: marker, grace: 5)
    }

    /// Stops every process (but this one) whose environment holds `marker`: SIGTERM, then SIGKILL
    /// after `grace` seconds.
    static func sweep(marker: (key: String, value: String), grace: Double) {
        var leftovers = processes(withEnvironment: marker)
        guard !leftovers.isEmpty else { return }
        for pid in leftovers {
            Terminal.error("demo: stopping leftover process \(pid) (\(commandLine(of: pid)))")
            kill(pid, SIGTERM)
        }
        let deadline = Date().addingTimeInterval(grace)
        while !leftovers.isEmpty && Date() < deadline {
            usleep(100_000)
            leftovers = leftovers.filter { kill($0, 0) == 0 && !isZombie($0) }
        }
        for pid in leftovers { kill(pid, SIGKILL) }
    }

    /// Live processes (not zombies, not this one) whose environment holds `key=value` (from /proc).
    static func processes(withEnvironment marker: (key: String, value: String)) -> [pid_t] {
        let entry = Data("\(marker.key)=\(marker.value)".utf8)
        let me = getpid()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), pid != me,
                  let environment = FileManager.default.contents(atPath: "/proc/\(name)/environ"),
                  environment.split(separator: 0).contains(where: { Data($0) == entry }),
                  !isZombie(pid)
            else { return nil }
            return pid
        }
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    static func commandLine(of pid: pid_t) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "?" }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ").prefix(120).description
    }
}

/// A failure of the demo, printed as is.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
