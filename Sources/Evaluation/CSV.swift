/// RFC 4180 CSV: comma-separated fields, double-quoted fields may hold commas, newlines and `""`
/// (an escaped quote); CRLF or LF line ends.
enum CSV {
    struct ParseError: Error {
        var line: Int
        var message: String
    }

    /// Rows of fields. A trailing line end does not make an empty last row.
    static func parse(_ text: String) throws -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var fieldStarted = false
        var line = 1
        var quoteLine = 1
        var iterator = Array(text.unicodeScalars)[...]
        func endField() { row.append(field); field = ""; fieldStarted = false }
        func endRow() { endField(); rows.append(row); row = [] }
        while let scalar = iterator.popFirst() {
            if inQuotes {
                if scalar == "\"" {
                    if iterator.first == "\"" { iterator.removeFirst(); field.unicodeScalars.append("\"") } else { inQuotes = false }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"":
                guard !fieldStarted, field.isEmpty else {
                    throw ParseError(line: line, message: "a quote inside an unquoted field (quote the whole field and double inner quotes)")
                }
                inQuotes = true
                fieldStarted = true
                quoteLine = line
            case ",":
                endField()
            case "\r":
                if iterator.first == "\n" { iterator.removeFirst() }
                endRow(); line += 1
            case "\n":
                endRow(); line += 1
            default:
                field.unicodeScalars.append(scalar)
                fieldStarted = true
            }
        }
        if inQuotes { throw ParseError(line: quoteLine, message: "a quoted field is never closed") }
        if fieldStarted || !field.isEmpty || !row.isEmpty { endRow() }
        return rows
    }
}
