import Foundation

/// Writing to stderr and a throttled progress line for long work.
enum Terminal {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

/// A progress line on stderr: redrawn in place (≤ 10 times a second) on a terminal, one line per
/// quarter of the work when stderr is a file or a pipe, so logs stay short.
final class ProgressLine: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastQuarter = -1
    private let interactive = Terminal.stderrIsTerminal

    init(_ label: String) { self.label = label }

    /// Reports `done` of `total` bytes.
    func update(bytesDone done: Int64, of total: Int64) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let text = String(
            format: "%@ %5.1f%%  %@ / %@  %@/s", label, 100 * fraction,
            Self.bytes(Double(done)), Self.bytes(Double(total)), Self.bytes(rate))
        if interactive {
            guard now.timeIntervalSince(lastDraw) >= 0.1 || done >= total else { return }
            lastDraw = now
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
        } else {
            let quarter = Int(fraction * 4)
            guard quarter > lastQuarter else { return }
            lastQuarter = quarter
            Terminal.error(text)
        }
    }

    /// Ends the line (on a terminal) with the total time.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        let elapsed = Date().timeIntervalSince(start)
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        Terminal.error(String(format: "%@ done in %.2f s", label, elapsed))
    }

    static func bytes(_ value: Double) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = value
        var unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? String(format: "%.0f %@", value, units[unit]) : String(format: "%.1f %@", value, units[unit])
    }
}
