import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process run to completion with its wall time and peak resident memory (from `wait4`'s
/// rusage: the child's own high-water mark, not this process's).
struct MeasuredRun {
    var status: Int32
    var seconds: Double
    var peakRSSBytes: Int64
}

enum MeasuredProcess {
    /// Runs `executable arguments…` with inherited stdin/stdout/stderr (or stdout to /dev/null).
    static func run(_ executable: String, _ arguments: [String], quietStdout: Bool = false) throws -> MeasuredRun {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quietStdout { posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = Date()
        let rc = argv.withUnsafeBufferPointer { posix_spawn(&pid, executable, &actions, nil, UnsafeMutablePointer(mutating: $0.baseAddress!), environ) }
        guard rc == 0 else {
            throw ValidationError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw ValidationError("wait4 failed: \(String(cString: strerror(errno)))") }
        }
        let seconds = Date().timeIntervalSince(start)
        let exitCode: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return MeasuredRun(status: exitCode, seconds: seconds, peakRSSBytes: Int64(usage.ru_maxrss) * 1024)
    }

    /// This executable's path.
    static var selfExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
