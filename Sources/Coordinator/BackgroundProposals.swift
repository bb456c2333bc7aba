import Foundation
import ZeroMQ

/// Runs proposals (GP fit and acquisition optimization, which can take seconds) on background
/// threads, so that the coordinator's loop keeps serving heartbeats, results and registrations
/// meanwhile. Each job works on its own copy of the proposer and a snapshot of the observations;
/// the loop collects the outcome (with the advanced proposer) and stores the trials itself.
///
/// A finished job wakes the loop through an inproc PULL socket (`wakeSocket`, for the loop's
/// poller). After `close()` finished jobs are discarded: nothing they computed was stored, and a
/// resumed study simply proposes again. Used from the loop's thread, except by the jobs themselves.
final class BackgroundProposals: @unchecked Sendable {
    // @unchecked: `wakeSocket` is only touched by the loop's thread; jobs touch `state` (locked) and
    // the thread-safe `context`, and only while `state.open`, so never after the context closes.

    /// One proposal to make: `count` points from `proposer` given `observed` and `pending`.
    struct Job: @unchecked Sendable {
        // @unchecked: the proposer is a value owned by the job, used by one thread at a time.
        var strategy: StudyStrategy
        var proposer: any Proposer
        var count: Int
        var observed: [(x: [Double], y: [Double])]
        var pending: [[Double]]
    }

    /// A finished job: the points and the proposer after proposing them, or the error.
    struct Outcome: @unchecked Sendable {
        var strategy: StudyStrategy
        var result: Result<(points: [[Double]], proposer: any Proposer), any Error>
        /// Wall-clock seconds the proposal took.
        var seconds: Double
    }

    private struct State {
        var open = true
        var finished: [Outcome] = []
    }

    let wakeSocket: Socket
    private let context: Context
    private let endpoint = "inproc://bambo-proposals-\(UUID().uuidString)"
    private let state = Locked(State())

    init(context: Context) throws {
        self.context = context
        wakeSocket = try Socket(context, type: .pull)
        try wakeSocket.bind(endpoint)
    }

    /// Starts `job` on a new thread.
    func start(_ job: Job) {
        let thread = Thread { [self] in
            let start = ContinuousClock.now
            var proposer = job.proposer
            let result = Result { () throws -> (points: [[Double]], proposer: any Proposer) in
                let points = try proposer.propose(count: job.count, observed: job.observed, pending: job.pending)
                return (points, proposer)
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            deliver(Outcome(strategy: job.strategy, result: result, seconds: seconds))
        }
        thread.name = "bambo-proposal-\(job.strategy.rawValue)"
        thread.start()
    }

    /// The jobs finished since the last call, in the order they finished (drains the wake-ups).
    func takeFinished() -> [Outcome] {
        while (try? wakeSocket.receive(dontWait: true)) != nil {}
        return state.withLock { state in
            defer { state.finished = [] }
            return state.finished
        }
    }

    /// Discards running and finished jobs and closes the wake socket (before the context closes).
    func close() {
        state.withLock { $0.open = false }
        wakeSocket.close()
    }

    private func deliver(_ outcome: Outcome) {
        state.withLock { state in
            guard state.open else { return }
            state.finished.append(outcome)
            // Best effort: the loop also looks at least every tick.
            guard let push = try? Socket(context, type: .push) else { return }
            defer { push.close() }
            try? push.set(.linger, .milliseconds(100))  // let the wake-up reach the loop's socket
            try? push.connect(endpoint)
            _ = try? push.send([Data([1])], dontWait: true)
        }
    }
}
