import ArgumentParser
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `--parent-pid PID` of `bambo coordinator` and `bambo worker`: a supervisor (`bambo demo`) that is
/// killed outright (SIGKILL) cannot stop its children, so each child watches for it. The watch polls
/// `getppid()`: once it is no longer PID the parent has died (the process was re-parented), and the
/// process sends itself SIGTERM, so it stops exactly as on SIGTERM (the coordinator persists and
/// exits, a worker abandons its trials and stops its inference server). Polling, not Linux's
/// PR_SET_PDEATHSIG, which fires when the parent *thread* that spawned the child ends.
enum ParentWatch {
    /// Starts watching `parent` every `interval` seconds (at once too: a parent already gone is seen
    /// immediately). `log` gets one line when it fires. Keep the returned timer alive.
    static func start(parent: pid_t, interval: Double = 0.5, log: @escaping @Sendable (String) -> Void) -> DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "bambo.parent-watch"))
        timer.schedule(deadline: .now(), repeating: interval)
        nonisolated(unsafe) var fired = false  // only touched on the timer's serial queue
        timer.setEventHandler {
            let current = getppid()
            guard current != parent, !fired else { return }
            fired = true
            log("parent process \(parent) is gone (the parent is now \(current)): stopping as on SIGTERM")
            kill(getpid(), SIGTERM)
        }
        timer.resume()
        return timer
    }

    /// Checks a `--parent-pid` value.
    static func validate(_ parent: Int32?) throws {
        if let parent, parent <= 1 {
            throw ValidationError("--parent-pid must be the pid of the supervising process, > 1 (got \(parent))")
        }
    }
}
