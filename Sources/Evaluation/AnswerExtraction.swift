import Foundation

/// Finds the final answer in what a model wrote. Pure functions over strings.
///
/// The answer is looked for only in the part of the reply after the last `</think>` (thinking models
/// reason first; some emit only the closing tag); a `<think>` that never closes holds no answer. Rules,
/// most explicit first: the last `\boxed{…}` (nested braces, `\text{…}` and `$` removed) decides when
/// present; then an "answer is …" / "Answer: …" phrase; then kind-specific fallbacks (a bold or
/// parenthesized letter, a lone letter on the last line, the last number, the last line).
/// Nothing found = nil, which grades as wrong.
public enum AnswerExtraction {
    /// The part of a reply that may hold the final answer (see the type's documentation).
    public static func finalPart(of reply: String) -> String {
        if let close = reply.range(of: "</think>", options: .backwards) { return String(reply[close.upperBound...]) }
        if let open = reply.range(of: "<think>") { return String(reply[..<open.lowerBound]) }
        return reply
    }

    /// The extracted answer for `item`'s kind, in canonical form (a choice letter, a canonical integer,
    /// or the normalized exact text); nil when the reply commits to none.
    public static func extract(_ reply: String, for item: BenchmarkItem) -> String? {
        switch item.kind {
        case .multipleChoice: return extractChoice(from: reply, choices: item.choices ?? [])
        case .integer: return extractInteger(from: reply)
        case .exact: return extractExact(from: reply)
        }
    }

    // MARK: Multiple choice

    /// The letter of the chosen option (A… for `choices.count` options), or nil.
    public static func extractChoice(from reply: String, choices: [String]) -> String? {
        let letters = Set((0..<max(choices.count, 1)).map(choiceLetter))
        let part = finalPart(of: reply)
        if let boxed = lastBoxed(in: part) {
            return choiceInBoxed(stripLaTeX(boxed), letters: letters, choices: choices)
        }
        let letterClass = "[A-Z]"
        let patterns = [
            // "Answer: C", "**Answer:** (C)", "the correct answer is option C", "ANSWER: c" (letter case kept).
            #"(?i:answer)(?:\s+(?i:is|would be|should be))?[\s:：*_]*(?:(?i:option|choice)\s*)?[\(\[]?\s*(\#(letterClass))(?![A-Za-z0-9])"#,
            // "**C**", "**(C)**", "**C.**"
            #"\*\*\s*\(?(\#(letterClass))\)?[.:]?\s*\*\*"#,
            // "(C)"
            #"\((\#(letterClass))\)"#,
        ]
        for pattern in patterns {
            if let letter = lastCapture(pattern, in: part), letters.contains(letter) { return letter }
        }
        // A last line that is only a letter: "C", "C.", "C) 42 kg".
        if let lastLine = lastNonEmptyLine(part),
           let letter = lastCapture(#"^[\s*_>#]*\(?(\#(letterClass))(?:[).:]|\s*$)"#, in: lastLine), letters.contains(letter) {
            return letter
        }
        return nil
    }

    static func choiceInBoxed(_ content: String, letters: Set<String>, choices: [String]) -> String? {
        let trimmed = content.trimmingCharacters(in: CharacterSet(charactersIn: " \t\n().[]:*"))
        if letters.contains(trimmed) { return trimmed }
        if let letter = lastCapture(#"^\(?([A-Z])[).:]"#, in: content.trimmingCharacters(in: .whitespaces)), letters.contains(letter) {
            return letter
        }
        // The text of a choice instead of its letter.
        let normalized = normalizeExact(content)
        if let index = choices.firstIndex(where: { normalizeExact($0) == normalized }) { return choiceLetter(index) }
        return nil
    }

    // MARK: Integers

    /// The final integer of a reply in canonical form (no sign for ≥ 0, no leading zeros or
    /// separators), or nil.
    public static func extractInteger(from reply: String) -> String? {
        let part = finalPart(of: reply)
        if let boxed = lastBoxed(in: part) {
            let cleaned = unwrapBraces(stripLaTeX(boxed))
            if let value = canonicalInteger(cleaned) { return value }
            // "x = 42", "42^\circ", "n = 1{,}000": the boxed expression ends with the number.
            if let number = lastCapture(#"(-?\d+(?:,\d+)*(?:\.\d+)?)\s*(?:\^\s*\\circ|\\%|%)?\s*$"#, in: cleaned) {
                return canonicalInteger(number)
            }
            return nil
        }
        // Digit runs joined by commas are taken whole, so "1,00" is a malformed number, not 1 or 100.
        let number = #"(-?\d+(?:,\d+)*(?:\.\d+)?)"#
        if let value = lastCapture(#"(?i:answer)(?:\s+(?i:is|would be|should be))?[\s:：=*_$]*"# + number, in: part) {
            return canonicalInteger(value)
        }
        if let value = lastCapture(number, in: part) { return canonicalInteger(value) }
        return nil
    }

    /// The canonical text of an integer written as "042", "1,000", "+7", "-0", "12.0", "$5$", "1{,}000",
    /// "7." (trailing period), or nil when `text` is not an integer.
    public static func canonicalInteger(_ text: String) -> String? {
        var s = text.replacingOccurrences(of: "{,}", with: ",")
            .replacingOccurrences(of: "\\,", with: "")
            .replacingOccurrences(of: "\\!", with: "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        s = s.trimmingCharacters(in: CharacterSet(charactersIn: "$ "))
        while s.hasSuffix(".") || s.hasSuffix("!") { s.removeLast() }
        var negative = false
        if s.hasPrefix("-") || s.hasPrefix("+") || s.hasPrefix("−") {
            negative = s.first != "+"
            s.removeFirst()
        }
        if s.contains(",") {
            guard s.wholeMatch(of: try! Regex(#"\d{1,3}(,\d{3})+(\.\d+)?"#)) != nil else { return nil }
            s = s.replacingOccurrences(of: ",", with: "")
        }
        if let dot = s.firstIndex(of: ".") {
            let fraction = s[s.index(after: dot)...]
            guard !fraction.isEmpty, fraction.allSatisfy({ $0 == "0" }) else { return nil }
            s = String(s[..<dot])
        }
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let digits = s.drop(while: { $0 == "0" })
        if digits.isEmpty { return "0" }
        return (negative ? "-" : "") + digits
    }

    // MARK: Exact answers

    /// The final answer text, normalized with `normalizeExact`, or nil.
    public static func extractExact(from reply: String) -> String? {
        let part = finalPart(of: reply)
        if let boxed = lastBoxed(in: part) { return nonEmpty(normalizeExact(stripLaTeX(boxed))) }
        if let rest = lastCapture(#"(?i:answer)(?:\s+(?i:is))?\s*[:：]\s*(?:\*\*)?\s*([^\n]+)"#, in: part) {
            return nonEmpty(normalizeExact(rest))
        }
        return lastNonEmptyLine(part).flatMap { nonEmpty(normalizeExact($0)) }
    }

    /// Lowercased, whitespace collapsed, surrounding `$`, `*`, quotes and final punctuation removed.
    public static func normalizeExact(_ text: String) -> String {
        var s = text.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let edges = CharacterSet(charactersIn: " $*\"'`")
        s = s.trimmingCharacters(in: edges)
        while let last = s.last, ".,;:!".contains(last) { s.removeLast() }
        return s.trimmingCharacters(in: edges)
    }

    // MARK: LaTeX

    /// The contents of the last `\boxed{…}` (or `\fbox{…}`) in `text`, braces balanced, or nil.
    public static func lastBoxed(in text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        var result: String? = nil
        var i = 0
        while i < scalars.count {
            guard scalars[i] == "\\" else { i += 1; continue }
            var matched: Int? = nil
            for command in ["\\boxed", "\\fbox"] {
                let commandScalars = Array(command.unicodeScalars)
                if i + commandScalars.count <= scalars.count, Array(scalars[i..<(i + commandScalars.count)]) == commandScalars {
                    matched = i + commandScalars.count
                }
            }
            guard var j = matched else { i += 1; continue }
            while j < scalars.count, scalars[j] == " " { j += 1 }
            guard j < scalars.count, scalars[j] == "{" else { i = j; continue }
            if let (content, end) = balancedGroup(scalars, openAt: j) {
                result = content
                i = end
            } else {
                i = j + 1
            }
        }
        return result
    }

    /// The text between the `{` at `openAt` and its matching `}`, and the index after it.
    static func balancedGroup(_ scalars: [Unicode.Scalar], openAt: Int) -> (String, Int)? {
        var depth = 0
        var content = String.UnicodeScalarView()
        var k = openAt
        while k < scalars.count {
            let c = scalars[k]
            if c == "\\", k + 1 < scalars.count {
                if depth > 0 { content.append(c); content.append(scalars[k + 1]) }
                k += 2
                continue
            }
            if c == "{" {
                depth += 1
                if depth > 1 { content.append(c) }
            } else if c == "}" {
                depth -= 1
                if depth == 0 { return (String(content), k + 1) }
                content.append(c)
            } else if depth > 0 {
                content.append(c)
            }
            k += 1
        }
        return nil
    }

    /// Removes the LaTeX that wraps answers: `\text{…}`-style commands keep their argument; `$`,
    /// `\(`, `\)`, `\left`, `\right`, `\,`, `\!`, `\;` go.
    public static func stripLaTeX(_ text: String) -> String {
        var s = text
        for command in ["\\text", "\\textbf", "\\textit", "\\mathrm", "\\mathbf", "\\mbox", "\\textrm", "\\operatorname"] {
            while let range = s.range(of: command + "{") {
                let scalars = Array(s.unicodeScalars)
                let start = s.unicodeScalars.distance(from: s.unicodeScalars.startIndex, to: range.lowerBound.samePosition(in: s.unicodeScalars)!)
                let open = start + command.unicodeScalars.count
                guard let (content, end) = balancedGroup(scalars, openAt: open) else { break }
                var rebuilt = String.UnicodeScalarView(scalars[..<start])
                rebuilt.append(contentsOf: content.unicodeScalars)
                rebuilt.append(contentsOf: scalars[end...])
                s = String(rebuilt)
            }
        }
        for token in ["\\left", "\\right", "\\(", "\\)", "\\;", "\\!", "\\displaystyle", "$"] {
            s = s.replacingOccurrences(of: token, with: "")
        }
        s = s.replacingOccurrences(of: "{,}", with: ",").replacingOccurrences(of: "\\,", with: "")
        return s.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Helpers

    static func lastCapture(_ pattern: String, in text: String) -> String? {
        guard let regex = try? Regex(pattern) else { return nil }
        var last: String? = nil
        for match in text.matches(of: regex) {
            if match.output.count > 1, let capture = match.output[1].substring { last = String(capture) }
        }
        return last
    }

    /// `{{42}}` → `42`: removes braces that enclose the whole text.
    static func unwrapBraces(_ text: String) -> String {
        var s = text.trimmingCharacters(in: .whitespaces)
        while s.hasPrefix("{"), let (content, end) = balancedGroup(Array(s.unicodeScalars), openAt: 0),
              end == s.unicodeScalars.count {
            s = content.trimmingCharacters(in: .whitespaces)
        }
        return s
    }

    static func lastNonEmptyLine(_ text: String) -> String? {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty }
    }

    static func nonEmpty(_ s: String) -> String? { s.isEmpty ? nil : s }
}
