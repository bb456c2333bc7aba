import Foundation

/// How an item's answer is extracted from a reply and compared.
public enum AnswerKind: String, Sendable, Codable, CaseIterable {
    /// The answer is the letter of the correct choice (A, B, …).
    case multipleChoice = "multiple-choice"
    /// The answer is an integer, compared numerically ("042" = "42", "1,000" = "1000").
    case integer
    /// The answer is a string, compared after normalization (case, spaces, surrounding `$`, final period).
    case exact
}

/// One benchmark question in BAMBO's normalized form (one JSON object per line of a `.jsonl` file):
/// `{"id", "question", "answer", "kind", "choices"}`; `choices` only for multiple choice, where
/// `answer` is the letter of the correct choice.
public struct BenchmarkItem: Sendable, Equatable, Codable {
    public var id: String
    public var question: String
    public var answer: String
    public var kind: AnswerKind
    public var choices: [String]?

    public init(id: String, question: String, answer: String, kind: AnswerKind, choices: [String]? = nil) {
        self.id = id
        self.question = question
        self.answer = answer
        self.kind = kind
        self.choices = choices
    }

    /// The letters that name this item's choices (A, B, … one per choice); empty unless multiple choice.
    public var choiceLetters: [String] {
        (0..<(choices?.count ?? 0)).map { choiceLetter($0) }
    }
}

/// A named list of items: what one `--benchmark FILE` contributes.
public struct Benchmark: Sendable, Equatable {
    public var name: String
    public var items: [BenchmarkItem]

    public init(name: String, items: [BenchmarkItem]) {
        self.name = name
        self.items = items
    }
}

/// The letter naming choice `index` (0 → "A").
func choiceLetter(_ index: Int) -> String {
    String(UnicodeScalar(UInt8(65 + index)))
}

/// Reads benchmark files: BAMBO's normalized JSONL, GPQA (CSV or JSONL with "Question", "Correct
/// Answer", "Incorrect Answer 1…3") and AIME-style JSONL ("problem"/"question" and "answer"). The format
/// is recognized from the file's extension and the first record's fields.
public enum BenchmarkLoader {
    /// Loads `url`, naming the benchmark after the file (without extension). `seed` fixes the order
    /// of GPQA's shuffled choices (per item, reproducibly).
    public static func load(_ url: URL, seed: UInt64 = 0) throws -> Benchmark {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw EvaluationError.badInput(file: path, line: 0, message: "cannot read the file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EvaluationError.badInput(file: path, line: 0, message: "not UTF-8 text")
        }
        let name = url.deletingPathExtension().lastPathComponent
        let items: [BenchmarkItem]
        if url.pathExtension.lowercased() == "csv" {
            items = try loadGPQACSV(text, file: path, seed: seed)
        } else {
            items = try loadJSONL(text, file: path, seed: seed)
        }
        guard !items.isEmpty else { throw EvaluationError.badInput(file: path, line: 0, message: "no benchmark items") }
        var seen = Set<String>()
        for item in items where !seen.insert(item.id).inserted {
            throw EvaluationError.badInput(file: path, line: 0, message: "item id '\(item.id)' appears more than once")
        }
        return Benchmark(name: name, items: items)
    }

    /// Parses JSON Lines text into items; blank lines are skipped.
    public static func loadJSONL(_ text: String, file: String, seed: UInt64 = 0) throws -> [BenchmarkItem] {
        var items: [BenchmarkItem] = []
        for (number, record) in try jsonLines(text, file: file) {
            items.append(try item(from: record, line: number, file: file, seed: seed))
        }
        return items
    }

    /// Parses a GPQA CSV file (header row with "Question", "Correct Answer", "Incorrect Answer 1…3").
    public static func loadGPQACSV(_ text: String, file: String, seed: UInt64 = 0) throws -> [BenchmarkItem] {
        let rows: [[String]]
        do { rows = try CSV.parse(text) } catch let error as CSV.ParseError {
            throw EvaluationError.badInput(file: file, line: error.line, message: error.message)
        }
        guard let header = rows.first else { throw EvaluationError.badInput(file: file, line: 1, message: "empty CSV file") }
        for required in gpqaFields where !header.contains(required) {
            throw EvaluationError.badInput(file: file, line: 1, message: "GPQA CSV header lacks the column \"\(required)\" (has: \(header.joined(separator: ", ")))")
        }
        var items: [BenchmarkItem] = []
        for (offset, row) in rows.dropFirst().enumerated() where !(row.count == 1 && row[0].isEmpty) {
            var record: [String: JSONValue] = [:]
            for (column, value) in zip(header, row) { record[column] = .string(value) }
            let line = offset + 2
            guard row.count == header.count else {
                throw EvaluationError.badInput(file: file, line: line, message: "row has \(row.count) fields, the header \(header.count)")
            }
            items.append(try gpqaItem(record, index: items.count, line: line, file: file, seed: seed))
        }
        return items
    }

    static let gpqaFields = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]

    /// Recognizes one record's format by its fields and converts it.
    static func item(from record: [String: JSONValue], line: Int, file: String, seed: UInt64) throws -> BenchmarkItem {
        if record["kind"] != nil {
            return try normalizedItem(record, line: line, file: file)
        }
        if record["Correct Answer"] != nil {
            return try gpqaItem(record, index: line - 1, line: line, file: file, seed: seed)
        }
        if firstText(record, ["problem", "Problem", "question", "Question"]) != nil {
            return try aimeItem(record, line: line, file: file)
        }
        throw EvaluationError.badInput(file: file, line: line, message: "unrecognized record: expected BAMBO's fields (id, question, answer, kind), GPQA's (Question, Correct Answer, Incorrect Answer 1-3) or AIME's (problem, answer); found \(record.keys.sorted().joined(separator: ", "))")
    }

    static func normalizedItem(_ record: [String: JSONValue], line: Int, file: String) throws -> BenchmarkItem {
        func field(_ name: String) throws -> String {
            guard let value = record[name]?.textValue else {
                throw EvaluationError.badInput(file: file, line: line, message: "field \"\(name)\" is missing or not a string")
            }
            return value
        }
        let kindText = try field("kind")
        guard let kind = AnswerKind(rawValue: kindText) else {
            throw EvaluationError.badInput(file: file, line: line, message: "field \"kind\" is \"\(kindText)\"; expected one of \(AnswerKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var answer = try field("answer").trimmingCharacters(in: .whitespacesAndNewlines)
        var choices: [String]? = nil
        switch kind {
        case .multipleChoice:
            guard case .array(let values)? = record["choices"] else {
                throw EvaluationError.badInput(file: file, line: line, message: "a multiple-choice item needs \"choices\": an array of strings")
            }
            let texts = values.compactMap(\.textValue)
            guard texts.count == values.count, (2...26).contains(texts.count) else {
                throw EvaluationError.badInput(file: file, line: line, message: "\"choices\" must hold 2 to 26 strings")
            }
            choices = texts
            answer = answer.uppercased()
            let letters = (0..<texts.count).map(choiceLetter)
            guard letters.contains(answer) else {
                throw EvaluationError.badInput(file: file, line: line, message: "\"answer\" is \"\(answer)\"; expected the letter of a choice (\(letters.joined(separator: ", ")))")
            }
        case .integer:
            guard AnswerExtraction.canonicalInteger(answer) != nil else {
                throw EvaluationError.badInput(file: file, line: line, message: "\"answer\" is \"\(answer)\"; an integer item needs an integer answer")
            }
        case .exact:
            break
        }
        return BenchmarkItem(id: try field("id"), question: try field("question"), answer: answer, kind: kind, choices: choices)
    }

    static func gpqaItem(_ record: [String: JSONValue], index: Int, line: Int, file: String, seed: UInt64) throws -> BenchmarkItem {
        var texts: [String] = []
        for name in gpqaFields {
            guard let value = record[name]?.textValue else {
                throw EvaluationError.badInput(file: file, line: line, message: "GPQA field \"\(name)\" is missing or not a string")
            }
            texts.append(value.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let id = firstText(record, ["Record ID", "id", "ID"]) ?? "gpqa-\(index + 1)"
        let correct = texts[1]
        let choices = shuffledChoices([correct] + Array(texts[2...]), itemKey: id, seed: seed)
        let answerIndex = choices.firstIndex(of: correct)!
        return BenchmarkItem(id: id, question: texts[0], answer: choiceLetter(answerIndex), kind: .multipleChoice, choices: choices)
    }

    static func aimeItem(_ record: [String: JSONValue], line: Int, file: String) throws -> BenchmarkItem {
        let problem = firstText(record, ["problem", "Problem", "question", "Question"])!
        guard let answer = firstText(record, ["answer", "Answer", "expected_answer"]) else {
            throw EvaluationError.badInput(file: file, line: line, message: "AIME record lacks \"answer\"")
        }
        guard AnswerExtraction.canonicalInteger(answer) != nil else {
            throw EvaluationError.badInput(file: file, line: line, message: "AIME \"answer\" is \"\(answer)\"; expected an integer")
        }
        let id = firstText(record, ["id", "ID", "problem_idx", "problem_id"]) ?? "aime-\(line)"
        return BenchmarkItem(id: id, question: problem, answer: answer.trimmingCharacters(in: .whitespaces), kind: .integer)
    }

    /// The choices in an order drawn from (seed, item key): the same for every run with the same seed.
    static func shuffledChoices(_ choices: [String], itemKey: String, seed: UInt64) -> [String] {
        var generator = SplitMix64(seed: seed ^ fnv1a64(itemKey))
        var result = choices
        for i in stride(from: result.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            result.swapAt(i, j)
        }
        return result
    }

    static func firstText(_ record: [String: JSONValue], _ keys: [String]) -> String? {
        for key in keys { if let value = record[key]?.textValue { return value } }
        return nil
    }
}

/// Splits JSON Lines text into (1-based line number, object) pairs; blank lines are skipped.
func jsonLines(_ text: String, file: String) throws -> [(Int, [String: JSONValue])] {
    var result: [(Int, [String: JSONValue])] = []
    for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { continue }
        let value: JSONValue
        do { value = try JSONValue.parse(Data(trimmed.utf8)) } catch {
            throw EvaluationError.badInput(file: file, line: offset + 1, message: "not valid JSON")
        }
        guard case .object(let object) = value else {
            throw EvaluationError.badInput(file: file, line: offset + 1, message: "expected a JSON object")
        }
        result.append((offset + 1, object))
    }
    return result
}

/// 64-bit FNV-1a of a string's UTF-8 bytes: a hash that is the same in every process (unlike `Hasher`).
func fnv1a64(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small seeded generator with a fixed, documented sequence.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &+ 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
