import Testing
@testable import Evaluation

/// Real-looking replies, one row each: (reply, expected extraction). Each row is checked for both
/// the extraction and the grade against the item's reference answer.
struct GradingTests {
    static let mc = BenchmarkItem(id: "q", question: "?", answer: "C", kind: .multipleChoice,
                                  choices: ["1.2 eV", "3.4 eV", "13.6 eV", "0 eV"])
    static let int = BenchmarkItem(id: "n", question: "?", answer: "42", kind: .integer)
    static let thousand = BenchmarkItem(id: "k", question: "?", answer: "1000", kind: .integer)

    static let multipleChoiceRows: [(String, String?)] = [
        ("The energy is 13.6 eV.\n\nAnswer: C", "C"),
        ("Answer: C.", "C"),
        ("ANSWER: C", "C"),
        ("**Answer:** C", "C"),
        ("**Answer: (C)**", "C"),
        ("The correct answer is (C).", "C"),
        ("The answer is option C", "C"),
        ("Answer: c", nil),                                   // lowercase letter is not taken as a choice
        ("So the final answer is $\\boxed{C}$.", "C"),
        ("\\boxed{\\text{C}}", "C"),
        ("\\[ \\boxed{\\textbf{(C)}} \\]", "C"),
        ("\\boxed{C) 13.6 eV}", "C"),
        ("\\boxed{13.6 eV}", "C"),                            // the choice's text instead of its letter
        ("\\boxed{E}", nil),                                  // not one of the four letters
        ("Options (A) and (B) are too small; (C) matches.", "C"),
        ("After checking, **C** is right.", "C"),
        ("I pick **(C)**", "C"),
        ("Let me compare.\n\nC", "C"),
        ("Let me compare.\n\nC.", "C"),
        ("<think>Maybe (A)? Answer: A... no, the ionization energy is 13.6.</think>\n\nAnswer: C", "C"),
        ("Maybe (A)? Answer: A is wrong. Wait.\n</think>\n\nAnswer: C", "C"),   // only the closing tag
        ("<think>The answer is C, because 13.6 eV is the ionization energy", nil),  // never closes: no answer
        ("<think>hmm</think>\n\nI am not sure.", nil),
        ("Answer: B\n...\nActually, on reflection, Answer: C", "C"), // the last one counts
        ("", nil),
        ("I cannot determine this.", nil),
        ("The correct answer is A because of the Rydberg formula.", "A"),
        ("Answer: (D)", "D"),
        ("answer: [C]", "C"),
    ]

    static let integerRows: [(String, String?)] = [
        ("So the sum is \\boxed{42}.", "42"),
        ("\\boxed{042}", "42"),
        ("$\\boxed{42}$", "42"),
        ("\\boxed{x = 42}", "42"),
        ("\\boxed{\\text{42}}", "42"),
        ("\\boxed{42.0}", "42"),
        ("\\boxed{\\frac{84}{2}}", nil),                      // not written as an integer: wrong
        ("\\boxed{\\dfrac{1}{2}} is tempting, but the answer is \\boxed{{42}}", "42"),
        ("\\boxed 42", "42"),
        ("the answer is 042", "42"),
        ("the answer is 042.", "42"),
        ("Final answer: 42!", "42"),
        ("**Answer:** $42$", "42"),
        ("Answer = 42", "42"),
        ("We get 40 + 2 = 42", "42"),                          // the last number
        ("<think>Is it 17? 2*21=42</think>\n\n42", "42"),
        ("17 is wrong... </think>\nThe result is 42.", "42"),
        ("<think>The total is 42 so far and then", nil),       // unfinished thought
        ("<think>ok</think>\n\nNo idea.", nil),
        ("I don't know.", nil),
        ("The answer is 3.5", nil),
        ("The answer is -7", "-7"),
        ("\\boxed{41} ... wait, recounting: \\boxed{42}", "42"),
    ]

    static let thousandRows: [(String, String?)] = [
        ("\\boxed{1,000}", "1000"),
        ("\\boxed{1{,}000}", "1000"),
        ("\\boxed{1\\,000}", "1000"),
        ("The answer is 1,000.", "1000"),
        ("The answer is 1000", "1000"),
        ("The answer is 01000", "1000"),
        ("The answer is 1,00", nil),                           // "1,00" is not a thousands group: malformed
        ("\\boxed{1000^\\circ}", "1000"),
    ]

    @Test("multiple choice extraction and grading", arguments: multipleChoiceRows)
    func multipleChoice(reply: String, expected: String?) {
        let graded = Grader.grade(reply, item: Self.mc)
        #expect(graded.extracted == expected, "\(reply)")
        #expect(graded.correct == (expected == "C"), "\(reply)")
    }

    @Test("integer extraction and grading", arguments: integerRows)
    func integer(reply: String, expected: String?) {
        let graded = Grader.grade(reply, item: Self.int)
        #expect(graded.extracted == expected, "\(reply)")
        #expect(graded.correct == (expected == "42"), "\(reply)")
    }

    @Test("integers with separators and leading zeros", arguments: thousandRows)
    func thousands(reply: String, expected: String?) {
        let graded = Grader.grade(reply, item: Self.thousand)
        #expect(graded.extracted == expected, "\(reply)")
        #expect(graded.correct == (expected == "1000"), "\(reply)")
    }

    @Test func canonicalIntegers() {
        let table: [(String, String?)] = [
            ("042", "42"), ("1,000", "1000"), ("-0", "0"), ("+7", "7"), ("000", "0"), ("12.00", "12"),
            ("$5$", "5"), ("7.", "7"), ("1,0000", nil), ("12.5", nil), ("", nil), ("x", nil), ("4 2", nil),
            ("123456789012345678901234567890", "123456789012345678901234567890"),
        ]
        for (text, expected) in table { #expect(AnswerExtraction.canonicalInteger(text) == expected, "\(text)") }
    }

    @Test func exactAnswers() {
        let item = BenchmarkItem(id: "e", question: "?", answer: "Paris", kind: .exact)
        let table: [(String, Bool)] = [
            ("\\boxed{\\text{Paris}}", true), ("Answer: paris.", true), ("It is in France.\n\nParis", true),
            ("<think>Lyon?</think>\n**Paris**", true), ("Answer: Lyon", false), ("<think>Paris", false),
        ]
        for (reply, correct) in table { #expect(Grader.grade(reply, item: item).correct == correct, "\(reply)") }
    }

    @Test func nestedBraces() {
        #expect(AnswerExtraction.lastBoxed(in: "a \\boxed{\\frac{1}{\\sqrt{2}}} b") == "\\frac{1}{\\sqrt{2}}")
        #expect(AnswerExtraction.lastBoxed(in: "\\boxed{a\\}b}") == "a\\}b")
        #expect(AnswerExtraction.lastBoxed(in: "\\boxed{unclosed") == nil)
        #expect(AnswerExtraction.lastBoxed(in: "\\fbox{7}") == "7")
    }

    @Test func fullReplyFromSplitReasoning() {
        // vLLM's qwen3 parser: a reply without a think block comes back entirely as reasoning.
        #expect(Grader.grade(Grader.fullReply(content: nil, reasoning: "Answer: C", truncated: false), item: Self.mc).correct)
        // A thinking reply split by the server: the answer is in content.
        let split = Grader.fullReply(content: "Answer: C", reasoning: "maybe (A)", truncated: false)
        #expect(Grader.grade(split, item: Self.mc).extracted == "C")
        // Cut off while thinking: no answer, even if the thought mentions one.
        #expect(Grader.grade(Grader.fullReply(content: nil, reasoning: "Answer: C so far", truncated: true), item: Self.mc).extracted == nil)
        #expect(Grader.fullReply(content: "x", reasoning: nil, truncated: false) == "x")
    }
}
