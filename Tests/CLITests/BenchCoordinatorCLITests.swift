import Foundation
import Testing

/// `bambo bench coordinator` end to end on a small fleet: a real coordinator process, real sockets.
/// Only what it reports is checked (counts and the shape of its lines), never timings.
@Suite struct BenchCoordinatorCLITests {
    @Test("A small fleet registers, gets tasks, and the report names CPU, latencies and counts")
    func smallFleet() throws {
        let run = try BamboProcess.run(["bench", "coordinator", "--workers", "12", "--evaluation", "0.5", "--seconds", "3", "--warmup", "2"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("workers registered: 12/12"), "\(run.stdout)")
        #expect(run.stdout.contains("with 12 workers:") && run.stdout.contains("the simulated fleet"), "\(run.stdout)")
        // About 12 / 0.5 = 24 dispatches a second: the window must have seen some.
        let dispatches = run.stdout.firstMatch(of: /dispatches measured: ([0-9]+)/).flatMap { Int($0.1) } ?? 0
        #expect(dispatches >= 10, "\(run.stdout)")
        #expect(run.stdout.contains("inside the coordinator") && run.stdout.contains("RESULT sent → recorded"), "\(run.stdout)")
    }

    @Test("The warm-up defaults to 1.5 × the evaluation + 5 s, and bad durations are refused")
    func defaultsAndErrors() throws {
        let bad = try BamboProcess.run(["bench", "coordinator", "--evaluation", "0"])
        #expect(bad.status != 0 && bad.stderr.contains("durations must be > 0"), "\(bad.stderr)")
        let help = try BamboProcess.run(["bench", "coordinator", "--help"])
        let words = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")  // rewrapped
        #expect(words.contains("1.5 × --evaluation + 5"), "\(help.stdout)")
    }
}
