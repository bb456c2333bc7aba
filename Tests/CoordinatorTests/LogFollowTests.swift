import BamboProtocol
import Coordinator
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `bambo log --follow --file F` as a process: prints the events already in the file, then each
/// line appended later (a line written in two pieces only once complete), and ends with status 0
/// on SIGINT or SIGTERM.
@Suite(.serialized) struct LogFollowTests {
    /// The follower's stdout, read on a background thread.
    final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        init(_ pipe: Pipe) {
            let handle = pipe.fileHandleForReading
            Thread {
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { return }
                    self.lock.withLock { self.data.append(chunk) }
                }
            }.start()
        }
        var lines: [String] { lock.withLock { String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init) } }
        /// Waits until at least `count` lines were printed (at most `timeout` seconds).
        func wait(for count: Int, timeout: Double = 30) -> [String] {
            let deadline = Date().addingTimeInterval(timeout)
            while lines.count < count && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            return lines
        }
    }

    func event(_ seq: Int64, _ kind: String, _ data: [String: JSONValue]) throws -> Data {
        try EventRecord(seq: seq, time: Date(timeIntervalSince1970: 1_700_000_000 + Double(seq)), kind: kind, data: data).jsonLine() + Data("\n".utf8)
    }

    @Test(arguments: [SIGINT, SIGTERM])
    func followPrintsAppendedEventsAndStopsCleanlyOnASignal(signal number: Int32) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("log-follow-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("study.events.jsonl")
        try event(1, "worker.joined", ["worker": "w1", "host": "node-1"]).write(to: file)

        let process = Process()
        process.executableURL = Bambo.executable
        process.arguments = ["log", "--follow", "--file", file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let output = Output(pipe)

        var lines = output.wait(for: 1)
        #expect(lines.count == 1 && lines[0].contains("worker w1 joined from node-1"), "got \(lines)")

        // Appended while it follows: a whole line, then one written in two pieces.
        let appender = try FileHandle(forWritingTo: file)
        defer { try? appender.close() }
        try appender.seekToEnd()
        try appender.write(contentsOf: try event(2, "trial.dispatched", ["trial": 7, "attempt": 1, "worker": "w1"]))
        lines = output.wait(for: 2)
        #expect(lines.count == 2 && lines[1].contains("trial 7 attempt 1 → w1"), "got \(lines)")
        let torn = try event(3, "trial.requeued", ["trial": 7])
        try appender.write(contentsOf: torn.prefix(20))
        Thread.sleep(forTimeInterval: 0.6)  // several polls with half a line in the file
        #expect(output.lines.count == 2, "a half-written line was printed: \(output.lines)")
        try appender.write(contentsOf: torn.dropFirst(20))
        lines = output.wait(for: 3)
        #expect(lines.count == 3 && lines[2].contains("trial 7 requeued"), "got \(lines)")
        #expect(!lines.joined().contains("\u{1B}["))  // plain: stdout is a pipe

        kill(process.processIdentifier, number)
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(!process.isRunning)
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        #expect(output.wait(for: 3).count == 3)
    }
}
