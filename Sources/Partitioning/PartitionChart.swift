import Foundation

/// Terminal pictures of a layer-difference profile and its blocks (the paper's Figure 2 as text).
/// Pure: returns strings; the caller decides where they go.
public enum PartitionChart {
    /// One row per layer with a horizontal bar of d_l, block boundaries drawn as rules between rows,
    /// each block labelled with its size and share of the total difference mass.
    ///
    /// - Parameters:
    ///   - differences: d_l, layer 0 first.
    ///   - blocks: the partition's inclusive layer ranges (pass a single block to draw the profile alone).
    ///   - extras: rows drawn apart above and below the layers, e.g. ("embedding", d) and ("head", d).
    ///   - barWidth: the width in characters of the longest bar.
    public static func render(
        differences: [Double], blocks: [ClosedRange<Int>],
        before: [(label: String, value: Double)] = [], after: [(label: String, value: Double)] = [],
        barWidth: Int = 40
    ) -> String {
        let everything = differences + before.map(\.value) + after.map(\.value)
        let scale = everything.map { abs($0) }.max() ?? 0
        let total = differences.reduce(0, +)
        let labelWidth = max(8, (before + after).map { $0.label.count }.max() ?? 0)
        var lines: [String] = []

        func row(_ label: String, _ value: Double) -> String {
            pad(label, labelWidth) + " │" + bar(value, scale: scale, width: barWidth) + " " + format(value)
        }
        let rule = String(repeating: " ", count: labelWidth) + " ├" + String(repeating: "─", count: barWidth + 12)

        for extra in before { lines.append(row(extra.label, extra.value)) }
        if !before.isEmpty { lines.append(rule) }
        for (index, block) in blocks.enumerated() {
            let mass = block.map { differences[$0] }.reduce(0, +)
            let share = total > 0 ? 100 * mass / total : 0
            for layer in block {
                lines.append(row("layer \(layer)", differences[layer]))
            }
            let summary = "B\(index + 1): layers \(block.lowerBound)–\(block.upperBound) (\(block.count)), "
                + "mass \(format(mass)) = \(String(format: "%.1f", share))%"
            lines.append(String(repeating: " ", count: labelWidth) + " ├─ " + summary)
        }
        for extra in after { lines.append(row(extra.label, extra.value)) }
        return lines.joined(separator: "\n")
    }

    /// A bar of `value / scale × width` characters with 1/8-character resolution.
    static func bar(_ value: Double, scale: Double, width: Int) -> String {
        guard scale > 0, value > 0, value.isFinite else { return String(repeating: " ", count: width) }
        let eighths = Int((value / scale * Double(width) * 8).rounded())
        let full = min(width, eighths / 8)
        let remainder = full == width ? 0 : eighths % 8
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        let body = String(repeating: "█", count: full) + partials[remainder]
        return body + String(repeating: " ", count: max(0, width - full - (remainder > 0 ? 1 : 0)))
    }

    /// Four significant digits (`%.4g`).
    public static func format(_ value: Double) -> String { String(format: "%.4g", value) }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
