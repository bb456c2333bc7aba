import BamboProtocol
import Foundation
import GRDB
import Testing

@testable import Archive

/// A fresh temporary directory, removed when the value is deinitialized.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-archive-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// Test times: `t(0)` is a fixed instant, `t(s)` s seconds later.
func t(_ seconds: Double) -> Date { Date(timeIntervalSince1970: 1_795_000_000 + seconds) }

struct DemoConfig: Codable, Equatable {
    var study: String
    var blocks: Int
    var objectives: [String]
}

struct DemoPartition: Codable, Equatable {
    var blocks: [[Int]]
    var layers: Int
}

func metrics(_ accuracy: Double, _ tokens: Double) -> Metrics {
    Metrics(benchmarks: ["mult": BenchmarkMetrics(accuracy: accuracy, tokens: tokens, items: 100, extra: ["note": "x"])])
}

let someDurations = Durations(merge: 1.5, evaluate: 20.25)

/// An archive in `dir` with a study, a partition and `trials` pending trials of dimension 3.
func makeArchive(in dir: TempDir, trials: Int = 0, options: Archive.Options = .init()) throws -> (Archive, [Int64]) {
    let archive = try Archive.open(at: dir.file("study.sqlite"), options: options)
    try archive.createStudy(name: "demo", config: DemoConfig(study: "demo", blocks: 1, objectives: ["reasoning", "efficiency"]), at: t(0))
    try archive.savePartition(DemoPartition(blocks: [[0, 5]], layers: 6), at: t(0))
    let ids = trials > 0
        ? try archive.addTrials((0..<trials).map { i in [0, Double(i) / Double(trials), 1] }, origin: .sobol, strategy: "hybrid", at: t(1))
        : []
    return (archive, ids)
}

/// Every row of every table, as text: compares whole archives.
func dump(_ url: URL) throws -> [String: [String]] {
    var configuration = Configuration()
    configuration.readonly = true
    let queue = try DatabaseQueue(path: url.path, configuration: configuration)
    defer { try? queue.close() }
    return try queue.read { db in
        var tables: [String: [String]] = [:]
        for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
            tables[table] = try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\" ORDER BY rowid").map(\.description)
        }
        return tables
    }
}
