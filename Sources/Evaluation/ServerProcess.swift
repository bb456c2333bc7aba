import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One inference-server process: spawned in its own process group (so stopping it stops the
/// workers it forks), its stdout and stderr appended to a log file whose last lines go into every
/// failure, health-checked over HTTP, and stopped with SIGTERM then SIGKILL.
public actor ServerProcess {
    public nonisolated let pid: pid_t
    public nonisolated let logFile: URL
    public nonisolated let commandLine: [String]
    private var exitStatus: Int32? = nil
    /// Set when the process is gone but was reaped by someone else (its status is lost).
    private var reapedElsewhere = false

    /// Spawns `command` (looked up on PATH when it has no slash) with `environment` added to this
    /// process's environment.
    public init(command: [String], environment: [String: String] = [:], logFile: URL) throws {
        guard let executable = command.first, !executable.isEmpty else {
            throw EvaluationError.serverFailedToStart(reason: "empty server command", logTail: [])
        }
        try? FileManager.default.createDirectory(at: logFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        self.logFile = logFile
        self.commandLine = command
        var mergedEnvironment = ProcessInfo.processInfo.environment
        for (key, value) in environment { mergedEnvironment[key] = value }

        var fileActions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&fileActions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&fileActions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, logFile.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        // Own process group (pgid = pid); default signal dispositions and an empty mask in the child.
        var defaultSignals = sigset_t()
        sigfillset(&defaultSignals)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = mergedEnvironment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var childPID: pid_t = 0
        let result = posix_spawnp(&childPID, executable, &fileActions, &attributes, argv, envp)
        guard result == 0 else {
            throw EvaluationError.serverFailedToStart(
                reason: "cannot run \(executable): \(String(cString: strerror(result)))", logTail: [])
        }
        self.pid = childPID
    }

    /// Whether the process has exited (reaping it if so); a description of how, or nil while running.
    public func exitDescription() -> String? {
        if exitStatus == nil && !reapedElsewhere {
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                exitStatus = status
            } else if reaped == -1 && errno == ECHILD && kill(pid, 0) == -1 && errno == ESRCH {
                // Not our child any more and not running: another waiter in this process reaped it.
                reapedElsewhere = true
            }
        }
        if reapedElsewhere { return "exited (status unknown: reaped elsewhere in this process)" }
        guard let status = exitStatus else { return nil }
        return Self.describe(status)
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL: out of memory?)" : "")"
    }

    /// The last `count` lines of the server's log.
    public nonisolated func logTail(_ count: Int = 30) -> [String] {
        // Only the end of the file: server logs grow with every request.
        guard let handle = try? FileHandle(forReadingFrom: logFile) else { return [] }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 65_536 ? size - 65_536 : 0)
        guard let data = try? handle.readToEnd() else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        // Progress bars redraw with carriage returns: keep what a terminal would show last.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { line -> String in
            String(line.split(separator: "\r", omittingEmptySubsequences: true).last ?? "")
        }
        return Array(lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.suffix(count))
    }

    /// Polls `healthURL` until it answers 200. Fails (stopping the process) when the process exits
    /// first or `timeout` passes, with the log's last lines.
    public func waitUntilHealthy(_ healthURL: URL, timeout: Duration, http: HTTPGetter) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let exit = exitDescription() {
                throw EvaluationError.serverFailedToStart(reason: "\(commandLine.joined(separator: " ")) \(exit) before becoming healthy", logTail: logTail())
            }
            if let status = try? await http.status(of: healthURL, timeout: .seconds(2)), status == 200 {
                // Something answered; make sure it is still our process (not another server on the port).
                if let exit = exitDescription() {
                    throw EvaluationError.serverFailedToStart(reason: "\(commandLine.joined(separator: " ")) \(exit); another process answers on \(healthURL)", logTail: logTail())
                }
                return
            }
            if ContinuousClock.now >= deadline {
                // A slow health probe (a loaded machine) may have outlasted the deadline while the
                // process exited: say that, not a timeout.
                if let exit = exitDescription() {
                    throw EvaluationError.serverFailedToStart(reason: "\(commandLine.joined(separator: " ")) \(exit) before becoming healthy", logTail: logTail())
                }
                await stop()
                throw EvaluationError.serverFailedToStart(
                    reason: "no healthy answer from \(healthURL) within \(timeout) (\(commandLine.joined(separator: " ")))", logTail: logTail())
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Returns by throwing `serverDied` when the process exits; returns normally when cancelled.
    public func monitor() async throws {
        while !Task.isCancelled {
            if let exit = exitDescription() {
                throw EvaluationError.serverDied(status: exit, logTail: logTail())
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The `serverDied` error (with the log's last lines) if the process has exited or exits within
    /// `grace`; nil if it still runs then. A process killed by a signal closes its sockets a moment
    /// before it can be reaped, so a request that just failed may need a short grace to see why.
    public func failure(within grace: Duration = .zero) async -> EvaluationError? {
        let deadline = ContinuousClock.now + grace
        while true {
            if let exit = exitDescription() { return .serverDied(status: exit, logTail: logTail()) }
            if ContinuousClock.now >= deadline { return nil }
            // Not `try?`: a cancelled task must not spin here (Task.sleep throws at once when cancelled).
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return exitDescription().map { .serverDied(status: $0, logTail: logTail()) } }
        }
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace`; reaps the process. Never
    /// blocks its thread (a blocking `waitpid` would hold one of the few threads async code runs on).
    public func stop(grace: Duration = .seconds(10)) async {
        guard exitDescription() == nil else { return }
        kill(-pid, SIGTERM)
        await waitForExit(until: ContinuousClock.now + grace)
        if exitDescription() == nil {
            kill(-pid, SIGKILL)
            // SIGKILL cannot be ignored: the process goes as soon as the kernel lets it (uninterruptible I/O).
            await waitForExit(until: ContinuousClock.now + .seconds(60))
        }
        kill(-pid, SIGKILL)  // stray children of the group, if any
    }

    /// Polls until the process has exited or `deadline` passes, even when the task is cancelled
    /// (a cancelled `Task.sleep` returns at once, so this sleeps on a plain timer instead).
    private func waitForExit(until deadline: ContinuousClock.Instant) async {
        while exitDescription() == nil, ContinuousClock.now < deadline {
            await Self.pause(.milliseconds(50))
        }
    }

    /// Sleeps `duration` without blocking a thread, cancelled or not.
    static func pause(_ duration: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(duration.nanoseconds))) { continuation.resume() }
        }
    }
}

/// TCP ports on the loopback interface.
public enum LocalPort {
    /// A port that was free a moment ago (the kernel's choice).
    public static func free() throws -> Int {
        try withSocket { fd in
            var address = loopback(port: 0)
            guard bindSocket(fd, &address) == 0 else { throw EvaluationError.invalidOption("cannot bind a loopback socket: \(String(cString: strerror(errno)))") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            return Int(UInt16(bigEndian: address.sin_port))
        }
    }

    /// Whether a server could listen on `port` now (another listener makes it unavailable).
    public static func isAvailable(_ port: Int) -> Bool {
        (try? withSocket { fd -> Bool in
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            var address = loopback(port: port)
            return bindSocket(fd, &address) == 0 && listen(fd, 1) == 0
        }) ?? false
    }

    static func withSocket<T>(_ body: (Int32) throws -> T) throws -> T {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw EvaluationError.invalidOption("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        return try body(fd)
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    static func bindSocket(_ fd: Int32, _ address: inout sockaddr_in) -> Int32 {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
