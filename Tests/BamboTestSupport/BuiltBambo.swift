import Foundation

/// What a finished `bambo` run left behind.
public struct BamboRun: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// The built `bambo` executable, for the tests that run it as a user would. Shared by the test
/// targets so that every process test finds and runs the same binary the same way.
public enum BuiltBambo {
    /// `$BAMBO_BIN`, else the `bambo` binary next to the test bundle (SwiftPM builds both into one folder).
    public static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["BAMBO_BIN"] { return URL(fileURLWithPath: path) }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("bambo")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/bambo")
    }

    /// Runs `bambo arguments…` to completion. With `input`, writes it to the process's stdin and closes
    /// it. Both pipes are read concurrently, so a chatty process never blocks on a full pipe.
    public static func run(_ arguments: [String], in directory: URL? = nil, input: String? = nil) throws -> BamboRun {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let inputPipe = input.map { _ in Pipe() }
        if let inputPipe { process.standardInput = inputPipe }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let input, let inputPipe {
            DispatchQueue.global().async {
                inputPipe.fileHandleForWriting.write(Data(input.utf8))
                try? inputPipe.fileHandleForWriting.close()
            }
        }
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return BamboRun(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}
