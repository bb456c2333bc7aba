/// One reply graded against its item.
public struct GradedReply: Sendable, Equatable, Codable {
    /// The extracted answer in canonical form; nil when none could be extracted (graded wrong).
    public var extracted: String?
    public var correct: Bool
}

/// Grading: extraction plus the comparison each answer kind calls for. Pure.
public enum Grader {
    /// Grades `reply` (the model's full reply, thinking included) against `item`.
    public static func grade(_ reply: String, item: BenchmarkItem) -> GradedReply {
        let extracted = AnswerExtraction.extract(reply, for: item)
        return GradedReply(extracted: extracted, correct: extracted.map { isCorrect($0, item: item) } ?? false)
    }

    /// Whether an extracted answer (canonical form) matches the item's reference answer.
    public static func isCorrect(_ extracted: String, item: BenchmarkItem) -> Bool {
        switch item.kind {
        case .multipleChoice:
            return extracted == item.answer.uppercased()
        case .integer:
            guard let reference = AnswerExtraction.canonicalInteger(item.answer) else { return false }
            return AnswerExtraction.canonicalInteger(extracted) == reference
        case .exact:
            return AnswerExtraction.normalizeExact(extracted) == AnswerExtraction.normalizeExact(item.answer)
        }
    }

    /// The reply to grade from a chat completion's message. Servers that split reasoning differ: a
    /// thinking reply comes back as `reasoning` + `content`, but vLLM's qwen3 parser returns a reply
    /// without a think block entirely as `reasoning` with `content: null`. So the full reply is graded:
    /// reasoning and content rejoined in a think block; reasoning alone (content empty) is graded as
    /// the reply, unless the reply was cut off by the length limit, where it is an unfinished
    /// thought (an unclosed `<think>`, which holds no answer).
    public static func fullReply(content: String?, reasoning: String?, truncated: Bool) -> String {
        let content = content ?? ""
        guard let reasoning, !reasoning.isEmpty else { return content }
        if !content.isEmpty { return "<think>\n" + reasoning + "\n</think>\n\n" + content }
        return truncated ? "<think>\n" + reasoning : reasoning
    }
}
