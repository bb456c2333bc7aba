import Foundation
import Testing
@testable import Evaluation

/// The demo family's committed benchmarks (cluster/demo/bench, written by cluster/demo/train_family.py)
/// read through the harness exactly as `bambo demo` reads them: the loader accepts them, the bare prompt
/// is the text the family was trained on, every answer is the product recomputed here, and the replies
/// the models were trained to write grade as right (and a wrong letter as wrong).
struct DemoBenchmarkTests {
    static var bench: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("cluster/demo/bench")
    }

    /// (a, b) from "4821*7" or "What is the thousands digit of 4821*7?".
    static func factors(_ question: String) throws -> (Int, Int) {
        let digits = question.split(whereSeparator: { !$0.isNumber })
        let a = try #require(digits.count == 2 ? Int(digits[0]) : nil, "\(question)")
        return (a, try #require(Int(digits[1])))
    }

    /// The thinking reply's scratchpad (family_tasks.scratchpad_lines), rebuilt here.
    static func scratchpad(_ a: Int, _ b: Int) -> String {
        var carry = 0
        return String(a).reversed().map { d -> String in
            let p = Int(String(d))! * b + carry
            defer { carry = p / 10 }
            return "\(d)*\(b)+\(carry)=\(p < 10 ? "0" : "")\(p)"
        }.joined(separator: "\n")
    }

    @Test func choiceIsTheThousandsDigitAmongFixedOrderChoices() throws {
        let benchmark = try BenchmarkLoader.load(Self.bench.appendingPathComponent("choice.jsonl"))
        #expect(benchmark.items.count == 100)
        let digits = (0...9).map(String.init)
        for item in benchmark.items {
            #expect(item.kind == .multipleChoice && item.choices == digits, "\(item)")
            #expect(item.question.hasPrefix("What is the thousands digit of "), "\(item.question)")
            let (a, b) = try Self.factors(item.question)
            #expect((1000...9999).contains(a) && (2...9).contains(b))
            let digit = a * b / 1000 % 10
            #expect(item.answer == choiceLetter(digit), "\(item.id): \(a)*\(b) = \(a * b)")
            // The bare prompt: the question, a blank line, "A) 0" … "J) 9".
            let lines = digits.enumerated().map { "\(choiceLetter($0.offset))) \($0.element)" }
            #expect(PromptTemplates.bare.messages(for: item) == [ChatMessage(role: "user", content: item.question + "\n\n" + lines.joined(separator: "\n"))])
            // Thinking's reply (the digit is the last line's last character) and instruct's.
            let thinking = "<think>\n\(Self.scratchpad(a, b))\n</think>\n\nAnswer: \(item.answer)"
            #expect(Self.scratchpad(a, b).last.map(String.init) == String(digit))
            #expect(AnswerExtraction.extract(thinking, for: item) == item.answer)
            #expect(AnswerExtraction.extract("Answer: \(item.answer)", for: item) == item.answer)
            let wrong = choiceLetter((digit + 1) % 10)
            #expect(AnswerExtraction.extract("Answer: \(wrong)", for: item) == wrong)
        }
        // Not a constant answer: the letters spread over the ten choices.
        #expect(Set(benchmark.items.map(\.answer)).count >= 8)
    }

    @Test func multiplyAnswersAreTheProducts() throws {
        let benchmark = try BenchmarkLoader.load(Self.bench.appendingPathComponent("multiply.jsonl"))
        #expect(benchmark.items.count == 100)
        let choice = try BenchmarkLoader.load(Self.bench.appendingPathComponent("choice.jsonl"))
        var pairs = Set<[Int]>()
        for item in benchmark.items {
            let (a, b) = try Self.factors(item.question)
            #expect(item.kind == .integer && item.question == "\(a)*\(b)" && item.answer == String(a * b), "\(item)")
            #expect(PromptTemplates.bare.messages(for: item) == [ChatMessage(role: "user", content: item.question)])
            #expect(AnswerExtraction.extract("<think>\n\(Self.scratchpad(a, b))\n</think>\n\n\(a * b)", for: item) == item.answer)
            pairs.insert([a, b])
        }
        // The two benchmarks hold different problems.
        for item in choice.items {
            let (a, b) = try Self.factors(item.question)
            #expect(!pairs.contains([a, b]), "\(item.id) repeats a multiply item")
        }
    }
}
