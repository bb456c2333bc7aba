import BamboProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `exec` evaluator (issue 5 item 6): runs the study's command
/// (`{"kind": "exec", "command": ["python3", "eval.py"], "timeout": 600}`) with
/// `BAMBO_MODEL_DIR`, `BAMBO_TRIAL`, `BAMBO_ATTEMPT`, `BAMBO_WEIGHTS` (JSON array) and
/// `BAMBO_WORK_DIR` added to the worker's environment, in its own process group, and reads one
/// JSON object from its stdout (see `EvaluationOutputParser`).
///
/// Non-zero exit → `EVAL_FAILED`; bad JSON, NaN, missing numbers → `BAD_OUTPUT`; past `timeout`
/// seconds → `EVAL_TIMEOUT` (the group gets SIGTERM, then SIGKILL after `killGrace`). Every
/// failure carries the last lines of the command's stderr.
public struct ExecEvaluator: Evaluator {
    public let kind = "exec"
    /// Timeout when the configuration gives none, in seconds.
    public var defaultTimeout: Double
    /// Seconds between SIGTERM and SIGKILL when stopping the command.
    public var killGrace: Double
    /// How many stderr lines a failure carries.
    public var tailLines: Int

    public init(defaultTimeout: Double = 3600, killGrace: Double = 5, tailLines: Int = 40) {
        self.defaultTimeout = defaultTimeout
        self.killGrace = killGrace
        self.tailLines = tailLines
    }

    /// The command and timeout of an `exec` configuration, or `BAD_TASK` naming the field.
    public func settings(of configuration: [String: JSONValue]) throws(AttemptFailure) -> (command: [String], timeout: Double) {
        func bad(_ reason: String) -> AttemptFailure { AttemptFailure(code: .badTask, reason: "evaluator." + reason) }
        guard case .array(let parts)? = configuration["command"], !parts.isEmpty else {
            throw bad("command: expected a non-empty array of strings, e.g. [\"python3\", \"eval.py\"]")
        }
        var command: [String] = []
        for (index, part) in parts.enumerated() {
            guard let text = part.stringValue, !text.contains("\0") else { throw bad("command[\(index)]: expected a string") }
            command.append(text)
        }
        guard !command[0].isEmpty else { throw bad("command[0]: expected the program to run, got an empty string") }
        var timeout = defaultTimeout
        if let value = configuration["timeout"], value != .null {
            guard let seconds = value.numberValue, seconds.isFinite, seconds > 0 else {
                throw bad("timeout: expected a number of seconds > 0")
            }
            timeout = seconds
        }
        return (command, timeout)
    }

    /// The environment the command runs with.
    public func environment(for job: EvaluationJob) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        let weights = (try? JSONEncoder().encode(job.weights)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        environment["BAMBO_MODEL_DIR"] = job.modelDirectory.path
        environment["BAMBO_TRIAL"] = String(job.attempt.trial)
        environment["BAMBO_ATTEMPT"] = String(job.attempt.attempt)
        environment["BAMBO_WEIGHTS"] = weights
        environment["BAMBO_WORK_DIR"] = job.workDirectory.path
        for (key, value) in job.environment { environment[key] = value }
        return environment
    }

    public func evaluate(_ job: EvaluationJob, progress: @escaping @Sendable (EvaluationProgress) -> Void) async throws(AttemptFailure) -> EvaluationOutput {
        let (command, timeout) = try settings(of: job.configuration)
        let child: ChildProcess
        do {
            child = try ChildProcess(arguments: command, environment: environment(for: job))
        } catch {
            throw AttemptFailure(code: .evalFailed, reason: "cannot start \(command[0]): \(error)")
        }
        let timedOut = Flag()
        let finished = Flag()
        let grace = killGrace
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
            guard !finished.isSet else { return }
            timedOut.set()
            child.terminate(grace: grace)
        }
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                Thread {
                    let outcome = child.collect(stdoutLimit: WireFormat.maxResultBodyBytes, stderrTail: 65_536)
                    finished.set()
                    continuation.resume(returning: outcome)
                }.start()
            }
        } onCancel: {
            child.terminate(grace: grace)
        }
        let tail = Self.lastLines(String(decoding: outcome.stderr, as: UTF8.self), count: tailLines)
        if Task.isCancelled {
            throw AttemptFailure(code: .cancelled, reason: "evaluation stopped", logTail: tail)
        }
        if timedOut.isSet {
            throw AttemptFailure(code: .evalTimeout, reason: "\(command[0]) did not finish within its timeout of \(Self.seconds(timeout)) s (killed)", logTail: tail)
        }
        switch outcome.termination {
        case .exited(0): break
        case .exited(let status):
            throw AttemptFailure(code: .evalFailed, reason: "\(command[0]) exited with status \(status)", logTail: tail)
        case .signalled(let signal):
            throw AttemptFailure(code: .evalFailed, reason: "\(command[0]) was killed by signal \(signal)", logTail: tail)
        }
        if outcome.stdoutTruncated {
            throw AttemptFailure(code: .badOutput, reason: "evaluator output: more than \(WireFormat.maxResultBodyBytes) bytes on stdout", logTail: tail)
        }
        do {
            return try EvaluationOutputParser.parse(String(decoding: outcome.stdout, as: UTF8.self))
        } catch {
            throw AttemptFailure(code: error.code, reason: error.reason, logTail: tail)
        }
    }

    /// The last `count` lines of `text`.
    static func lastLines(_ text: String, count: Int) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let trimmed = lines.last == "" ? lines.dropLast() : lines[...]
        return trimmed.suffix(count).joined(separator: "\n")
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// A thread-safe one-way flag.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
