import Foundation
import Testing

/// `bambo … --help`: the discussions' paragraphs are wrapped by ArgumentParser to the terminal,
/// not broken by hand inside a paragraph (which leaves ragged lines at any other width).
@Suite("help texts wrap paragraphs to the terminal width")
struct HelpTextTests {
    static let commands: [[String]] = [
        [], ["synthesize"], ["profile"], ["partition"], ["merge"], ["eval"], ["grade"], ["coordinator"], ["worker"],
        ["demo"], ["ask-tell"], ["select"], ["materialize"], ["keygen"], ["log"], ["status"], ["export"],
        ["bench", "merge"], ["bench", "optimizer"], ["bench", "coordinator"],
    ]

    /// `bambo ARGS --help` with the terminal width set through COLUMNS.
    static func help(_ arguments: [String], columns: Int) throws -> String {
        let process = Process()
        process.executableURL = BamboProcess.executable
        process.arguments = arguments + ["--help"]
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = String(columns)
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Prose lines of the overview (abstract and discussion) that end before the width forced them to:
    /// a line followed by another line of the same paragraph whose first word would have fitted.
    /// Indented lines (examples, formulas, tables), the wrapped tails of indented lines that are
    /// wider than the terminal, and table rows (two spaces in a row) are left alone.
    static func raggedLines(_ text: String, columns: Int) -> [String] {
        guard let start = text.range(of: "OVERVIEW: "), let end = text.range(of: "\nUSAGE:") else { return ["no OVERVIEW … USAGE in: \(text)"] }
        let lines = text[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func firstWord(_ line: String) -> String { line.split(separator: " ").first.map(String.init) ?? "" }
        // The first line follows "OVERVIEW: " (10 characters). ArgumentParser breaks at the last
        // space within `columns` characters: the next word would have fitted if it and the space
        // after it lay within them.
        func fitted(_ i: Int) -> Bool { (i == 0 ? 10 : 0) + lines[i].count + 1 + firstWord(lines[i + 1]).count < columns }
        var prose = [Bool](repeating: false, count: lines.count)
        var tail = false  // inside the wrapped tail of an indented line
        for (i, line) in lines.enumerated() {
            if line.isEmpty || line.hasPrefix(" ") {
                tail = line.hasPrefix(" ")
                continue
            }
            if tail, i > 0, !fitted(i - 1) { continue }  // still the indented line's wrapped tail
            tail = false
            prose[i] = !line.contains("  ")
        }
        var ragged: [String] = []
        for i in lines.indices where prose[i] {
            if lines[i].count > columns { ragged.append("longer than \(columns): \(lines[i])") }
            if i + 1 < lines.count, prose[i + 1], fitted(i) { ragged.append("broken early: \(lines[i]) ⏎ \(lines[i + 1])") }
        }
        return ragged
    }

    @Test("no paragraph of any subcommand's overview is broken by hand", arguments: [70, 100, 140])
    func paragraphsWrap(columns: Int) throws {
        for command in Self.commands {
            let text = try Self.help(command, columns: columns)
            let ragged = Self.raggedLines(text, columns: columns)
            #expect(ragged.isEmpty, "bambo \(command.joined(separator: " ")) --help at \(columns) columns:\n\(ragged.joined(separator: "\n"))")
        }
    }

    @Test("the check sees a hand-broken paragraph")
    func detectsRaggedText() {
        let text = "OVERVIEW: A short abstract.\n\nThis paragraph was broken\nby hand here.\n  an example\n\nUSAGE: bambo"
        #expect(Self.raggedLines(text, columns: 80) == ["broken early: This paragraph was broken ⏎ by hand here."])
        // A table row wider than the terminal wraps; the prose after it still counts.
        let table = "OVERVIEW: A short abstract.\n\n  name   a row of a table that is too wide for the\nterminal\nThen prose\nbroken by hand.\n\nUSAGE: bambo"
        #expect(Self.raggedLines(table, columns: 50) == ["broken early: Then prose ⏎ broken by hand."])
        let wrapped = "OVERVIEW: A short abstract.\n\nThis paragraph runs on to the width.\n\nUSAGE: bambo"
        #expect(Self.raggedLines(wrapped, columns: 80).isEmpty)
    }
}
