import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process in its own process group, with stdout captured and the tail of stderr kept.
///
/// Started with `posix_spawnp` (PATH search), stdin from /dev/null, SIGTERM/SIGINT/SIGPIPE reset
/// to their defaults (the worker itself ignores them to handle them through dispatch sources),
/// and `setpgid(0, 0)`, so that `terminate` reaches every process the command started.
final class ChildProcess: @unchecked Sendable {
    /// How the process ended.
    enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    let pid: pid_t
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private let lock = NSLock()
    private var reaped = false

    /// Starts `arguments[0]` with `arguments[1...]` and exactly `environment`.
    init(arguments: [String], environment: [String: String]) throws {
        precondition(!arguments.isEmpty)
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        guard pipe(&err) == 0 else {
            close(out[0]); close(out[1])
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        // Not inherited by other children (dup2 in the child clears the flag on 1 and 2).
        for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var noMask = sigset_t()
        sigemptyset(&noMask)
        posix_spawnattr_setsigmask(&attributes, &noMask)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let status = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, envp)
        close(out[1])
        close(err[1])
        guard status == 0 else {
            close(out[0]); close(err[0])
            throw POSIXError(.init(rawValue: status) ?? .EIO)
        }
        pid = child
        stdoutFD = out[0]
        stderrFD = err[0]
    }

    /// Reads stdout (up to `stdoutLimit` bytes; the rest is drained and dropped) and the last
    /// `stderrTail` bytes of stderr until both close, and waits for the process. Blocking.
    func collect(stdoutLimit: Int, stderrTail: Int) -> (termination: Termination, stdout: Data, stdoutTruncated: Bool, stderr: Data) {
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        Thread {
            errData = Self.drain(self.stderrFD, keep: stderrTail, fromEnd: true).data
            group.leave()
        }.start()
        let (outData, truncated) = Self.drain(stdoutFD, keep: stdoutLimit, fromEnd: false)
        let termination = waitForExit()
        // Whatever the command left running in its group goes too (and releases the pipes).
        signalGroup(SIGKILL)
        group.wait()
        close(stdoutFD)
        close(stderrFD)
        return (termination, outData, truncated, errData)
    }

    /// SIGTERM to the group, then SIGKILL after `grace` seconds if the leader has not exited.
    func terminate(grace: Double) {
        signalGroup(SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in
            if !hasBeenReaped { signalGroup(SIGKILL) }
        }
    }

    func signalGroup(_ signal: Int32) {
        _ = kill(-pid, signal)
    }

    private var hasBeenReaped: Bool { lock.lock(); defer { lock.unlock() }; return reaped }

    private func waitForExit() -> Termination {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        lock.lock(); reaped = true; lock.unlock()
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }

    private static func drain(_ fd: Int32, keep limit: Int, fromEnd: Bool) -> (data: Data, truncated: Bool) {
        var data = Data()
        var truncated = false
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if fromEnd {
                data.append(contentsOf: buffer[0..<count])
                if data.count > 2 * limit { data = data.suffix(limit); truncated = true }
            } else if data.count < limit {
                data.append(contentsOf: buffer[0..<min(count, limit - data.count)])
                if data.count == limit { truncated = true }
            } else {
                truncated = true
            }
        }
        if fromEnd, data.count > limit { data = data.suffix(limit); truncated = true }
        return (data, truncated)
    }
}
