import BamboProtocol
import Foundation
import GRDB
import Testing

@testable import Archive

@Suite("Schema v2: a trial's own partition and merge spec")
struct MigrationTests {
    @Test("an archive written with schema v1 opens, keeps its trials, and takes trials with their own specs")
    func v1ArchiveOpensAndMigrates() throws {
        let dir = try TempDir()
        let url = dir.file("old.sqlite")
        // Exactly what a v1 BAMBO wrote: only migration v1, rows inserted with v1's columns.
        let queue = try DatabaseQueue(path: url.path)
        try Schema.migrator.migrate(queue, upTo: "v1")
        try queue.write { db in
            try db.execute(sql: "INSERT INTO study (id, name, config, created, state) VALUES (1, 'old', '{\"a\":1}', 1, 'running')")
            try db.execute(
                sql: "INSERT INTO trial (strategy, x, origin, batch, state, created) VALUES ('bambo', '[0,0,0]', 'warm-start', 1, 'pending', 2)")
        }
        let columnsBefore = try queue.read { db in try db.columns(in: "trial").map(\.name) }
        #expect(!columnsBefore.contains("merge"))
        try queue.close()

        let archive = try Archive.open(at: url, options: .init(role: .writer, mode: .existing))
        defer { try? archive.close() }
        let applied = try archive.read { db in try Schema.migrator.appliedIdentifiers(db) }
        #expect(applied == ["v1", "v2"])
        #expect(try archive.loadStudy()?.name == "old")
        let old = try #require(try archive.trial(1))
        #expect(old.x == [0, 0, 0] && old.strategy == "bambo" && old.partition == nil && old.merge == nil)

        // New trials with their own partition (layer-wise) and per-trial merge specs (grid).
        let layerwise = PartitionSpec(blocks: [[0, 0], [1, 1], [2, 2]], layers: 3)
        let ids = try archive.addTrials(
            [[0.1, 0.2, 0.3, 0.4, 0.5], [1, 1, 1, 1, 1]], origin: .sobol, strategy: "layerwise", partition: layerwise, at: t(1))
        let ties = MergeSpec(method: "ties", dtype: .bfloat16, params: ["density": 0.5], seed: 3)
        let grid = try archive.addTrials(
            [[0.3, 0.3, 0.3], [0.3, 0.3, 0.3]], origin: .grid, strategy: "grid", partition: PartitionSpec(blocks: [[0, 2]], layers: 3),
            merges: [ties, nil], at: t(2))
        try archive.close()

        let reopened = try Archive.open(at: url, options: .init(mode: .existing))
        defer { try? reopened.close() }
        #expect(try reopened.trial(ids[0])?.partition == layerwise && reopened.trial(ids[1])?.merge == nil)
        #expect(try reopened.trial(grid[0])?.merge == ties && reopened.trial(grid[0])?.partition?.blocks == [[0, 2]])
        #expect(try reopened.trial(grid[1])?.merge == nil)
        // The events say so too.
        let added = try reopened.events().filter { $0.kind == "trial.added" }
        #expect(added.count == 4)
        #expect(added[2].data["merge"]?.objectValue?["method"] == .string("ties") && added[3].data["merge"] == nil)
        #expect(added[0].data["partition"] != nil && added[0].data["strategy"] == .string("layerwise"))
    }

    @Test("a partition that does not fit x, or a merge list of another length, is refused")
    func specsAreChecked() throws {
        let dir = try TempDir()
        let archive = try Archive.open(at: dir.file("s.sqlite"))
        defer { try? archive.close() }
        #expect(throws: ArchiveError.self) {
            try archive.addTrials([[0.5, 0.5, 0.5]], origin: .sobol, strategy: "layerwise", partition: PartitionSpec(blocks: [[0, 0], [1, 1]], layers: 2), at: t(0))
        }
        #expect(throws: ArchiveError.self) {
            try archive.addTrials([[0.5, 0.5, 0.5]], origin: .grid, strategy: "grid", merges: [nil, nil], at: t(0))
        }
        #expect(try archive.trials().isEmpty)
    }
}
