import ArgumentParser
import Evaluation
import Foundation

/// `bambo grade`: grades stored responses against a benchmark (no server involved).
struct GradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grade",
        abstract: "Grade stored responses ({\"id\", \"response\"} per line) against a benchmark.",
        discussion: "`bambo eval --records FILE` output can be regraded directly (lines of other benchmarks are skipped)."
    )

    @Option(help: "Benchmark file (BAMBO JSONL, GPQA CSV/JSONL or AIME JSONL).")
    var benchmark: String
    @Option(help: "Responses JSONL: {\"id\", \"response\"} per line.")
    var responses: String
    @Option(help: "Seed for GPQA's choice order (must match the one used when evaluating).")
    var shuffleSeed: UInt64 = 0
    @Flag(help: "Print {\"accuracy\": a, \"items\": [{\"id\", \"extracted\", \"correct\"}]} on stdout.")
    var json = false

    func run() async throws {
        let loaded = try BenchmarkLoader.load(URL(fileURLWithPath: benchmark), seed: shuffleSeed)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: responses)) } catch {
            throw ValidationError("cannot read \(responses): \(error.localizedDescription)")
        }
        let report = try StoredResponses.grade(loaded, responsesText: String(decoding: data, as: UTF8.self), file: responses)
        if json {
            let items: [JSONValue] = report.items.map { item in
                .object(["id": .string(item.id), "extracted": item.extracted.map(JSONValue.string) ?? .null, "correct": .bool(item.correct)])
            }
            print(JSONValue.object(["accuracy": .number(report.accuracy), "items": .array(items)]).jsonString())
        } else {
            print("\(loaded.name): accuracy \(String(format: "%.4f", report.accuracy)) (\(report.items.filter(\.correct).count)/\(report.items.count))")
        }
    }
}
