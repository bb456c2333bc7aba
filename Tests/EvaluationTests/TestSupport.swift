import Foundation
import Testing
@testable import Evaluation
#if canImport(Glibc)
import Glibc
#endif

/// Where the tests find things: the repository, the Python environment (BAMBO_PYTHON, set by
/// cluster/test.sh), scratch directories, and a tiny random Qwen3 model built once per run.
enum TestEnvironment {
    /// The venv's python from cluster/python-env.sh; nil when a developer runs `swift test` by hand.
    static let python: String? = ProcessInfo.processInfo.environment["BAMBO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
    static let skipMessage: Comment = "BAMBO_PYTHON is unset: real-server tests skipped. Run cluster/test.sh, or export BAMBO_PYTHON=$(bash cluster/python-env.sh)"

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func scratchDirectory(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-evaltests-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a command to completion; returns (status, stdout, stderr). The waiting happens on a
    /// thread of its own: blocking one of the few threads that run async code (two on a 2-core
    /// machine) stalls every other test of the process meanwhile.
    @discardableResult
    static func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) async throws -> (Int32, String, String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try runBlocking(arguments, stdin: stdin, environment: environment) }) }.start()
        }
    }

    private static func runBlocking(_ arguments: [String], stdin: String?, environment: [String: String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so neither fills up.
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(10_000) }
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    static func writeBenchmark(_ items: [BenchmarkItem], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let lines = try items.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }
}

/// Tiny random Qwen3 models made with cluster/demo/tiny_qwen3.py, once per seed per test run.
actor TinyModels {
    static let shared = TinyModels()
    private var built: [Int: Task<URL, Error>] = [:]
    private let root = TestEnvironment.scratchDirectory("models")

    func directory(seed: Int) async throws -> URL {
        // One build per seed, also when two tests ask at once (the actor is re-entered while one builds).
        if let task = built[seed] { return try await task.value }
        let root = root
        let task = Task<URL, Error> {
            guard let python = TestEnvironment.python else { throw EvaluationError.invalidOption("BAMBO_PYTHON is unset") }
            let out = root.appendingPathComponent("tiny-qwen3-seed\(seed)")
            let script = TestEnvironment.repositoryRoot.appendingPathComponent("cluster/demo/tiny_qwen3.py").path
            let (status, _, stderr) = try await TestEnvironment.run([python, script, "random", "--out", out.path, "--seed", String(seed)],
                                                                    environment: ["HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"])
            guard status == 0 else { throw EvaluationError.invalidOption("tiny_qwen3.py failed: \(stderr)") }
            return out
        }
        built[seed] = task
        return try await task.value
    }
}

/// A listening TCP socket on the loopback interface, held until closed (to make a port "in use").
final class PortHolder {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = LocalPort.loopback(port: 0)
        guard LocalPort.bindSocket(fd, &address) == 0, listen(fd, 4) == 0 else { throw EvaluationError.invalidOption("cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    private var closed = false
    func close() {
        if !closed { _ = Glibc.close(fd) }
        closed = true
    }
    deinit { close() }
}

/// Processes of process group `group` that are alive (not zombies), after up to 2 s for them to go.
func liveGroupMembers(_ group: pid_t) async -> [String] {
    var members: [String] = []
    for _ in 0..<20 {
        members = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            guard Int(entry) != nil, let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { return false }
            let fields = stat[close.upperBound...].split(separator: " ")  // state, ppid, pgrp, …
            return fields.count > 2 && fields[0] != "Z" && fields[2] == "\(group)"
        }
        if members.isEmpty { return [] }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return members
}

/// Whether a process id still names a live (not yet reaped or zombie-free) process.
func processExists(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0
}

/// Collects progress reports from concurrent callbacks.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [EvaluationProgress] = []
    func append(_ progress: EvaluationProgress) { lock.withLock { reports.append(progress) } }
    var all: [EvaluationProgress] { lock.withLock { reports } }
}
