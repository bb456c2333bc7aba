import Foundation

/// The study report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing
/// fetched. Figures: the front in objective space (f1 vs f2, a mark and colour per strategy, the
/// front as a step line), tokens vs accuracy per benchmark (paper Figures 4–5), hypervolume over
/// evaluations per strategy (Figure 7), the partition (Figure 2), and a table of the Pareto models.
///
/// Each figure's plot area has its own background colour (`plotBackground(_:)`), so a rendered
/// screenshot can find every plot and check that marks were drawn inside it.
public enum HTMLReport {
    /// Mark colours, by strategy in `ReportInput.strategies` order (Okabe–Ito, colour-blind safe).
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F3C8D", "#999933"]

    /// Bar colours of alternate blocks in the partition figure (not strategy colours).
    static let partitionColors = ["#33658A", "#8E5EA2"]

    /// The plot-area fill of figure `index` (0-based, in page order): near-white, distinct per figure.
    public static func plotBackground(_ index: Int) -> String {
        String(format: "#%02x%02x%02x", 246, 247, 250 - index % 40)
    }

    /// The page for `input`.
    public static func render(_ input: ReportInput) throws -> String {
        let strategies = input.strategies
        let style = Dictionary(uniqueKeysWithValues: strategies.enumerated().map { ($0.element, (shape: $0.offset, color: palette[$0.offset % palette.count])) })
        let curves = try HypervolumeHistory.curves(input)
        var figures: [String] = []
        func nextBackground() -> String { plotBackground(figures.count) }

        if let objective = objectiveFigure(input, style: style, background: nextBackground()) { figures.append(objective) }
        if let hypervolume = hypervolumeFigure(input, curves: curves, style: style, background: nextBackground()) { figures.append(hypervolume) }
        for benchmark in input.benchmarks {
            figures.append(metricFigure(input, benchmark: benchmark, style: style, background: nextBackground()))
        }
        if let partition = input.partition { figures.append(partitionFigure(partition, background: nextBackground())) }

        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>BAMBO report: \(escapeHTML(input.study))</title>
            <style>
            body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 18px 24px; background: #fff; }
            h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 22px 0 6px; }
            p.note { color: #555; margin: 2px 0; max-width: 1140px; }
            .figures { display: grid; grid-template-columns: repeat(2, 570px); gap: 12px 18px; }
            figure { margin: 0; } figcaption { color: #555; font-size: 12.5px; padding: 0 6px 0 10px; }
            svg text { font-family: inherit; fill: #222; } svg .title { font-size: 14px; font-weight: 600; }
            svg .tick { font-size: 11px; fill: #555; } svg .label { font-size: 12.5px; }
            svg .grid { stroke: #e2e4e8; stroke-width: 1; } svg .frame { fill: none; stroke: #9aa0a8; stroke-width: 1; }
            svg .legend { fill: #fff; fill-opacity: 0.9; stroke: #c8ccd2; } svg .legend-text { font-size: 12px; }
            svg .point-label { font-size: 10.5px; fill: #111; } svg .block-label { font-size: 11px; fill: #444; }
            table { border-collapse: collapse; font-size: 13px; margin-top: 6px; }
            th, td { border-bottom: 1px solid #e2e4e8; padding: 3px 9px; text-align: right; white-space: nowrap; }
            th { background: #f3f4f6; } td.text { text-align: left; }
            .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 5px; }
            </style></head><body>
            <h1>BAMBO report: \(escapeHTML(input.study))</h1>

            """
        html += summary(input, curves: curves, style: style)
        html += "<div class=\"figures\">\n" + figures.joined(separator: "\n") + "\n</div>\n"
        html += paretoTable(input, style: style)
        html += "</body></html>\n"
        return html
    }

    // MARK: text

    static func summary(_ input: ReportInput, curves: [HypervolumeHistory.Curve], style: [String: (shape: Int, color: String)]) -> String {
        let counts = input.strategies.map { strategy -> String in
            let n = input.trials.filter { $0.strategy == strategy }.count
            let hv = curves.first { $0.strategy == strategy }?.values.last ?? 0
            let color = style[strategy]?.color ?? "#000"
            return "<span class=\"swatch\" style=\"background:\(color)\"></span>\(escapeHTML(strategy)): \(n) trial\(n == 1 ? "" : "s"), hypervolume \(String(format: "%.4f", hv))"
        }
        let front = input.trials.filter(\.pareto).count
        var lines = [
            "\(input.trials.count) evaluated trial\(input.trials.count == 1 ? "" : "s"), \(front) on the Pareto front of all strategies.",
            counts.joined(separator: " &nbsp;·&nbsp; "),
        ]
        for (index, name) in input.objectiveNames.enumerated() {
            let note = index < input.objectiveNotes.count ? ": " + escapeHTML(input.objectiveNotes[index]) : ""
            lines.append("f\(index + 1) = \(escapeHTML(name))\(note) (normalized per Eq. 2: base model 0, expert 1; higher is better).")
        }
        let reference = "(" + input.referencePoint.map { String(format: "%g", $0) }.joined(separator: ", ") + ")"
        lines.append("Hypervolume of the normalized objectives with the fixed reference point r = \(reference): points not better than r in every objective contribute nothing.")
        return lines.map { "<p class=\"note\">\($0)</p>\n" }.joined()
    }

    static func paretoTable(_ input: ReportInput, style: [String: (shape: Int, color: String)]) -> String {
        let front = input.trials.filter(\.pareto).sorted { ($0.objectives?.first ?? 0) > ($1.objectives?.first ?? 0) }
        var html = "<h2>Pareto models (\(front.count))</h2>\n<table>\n<tr><th>trial</th><th>strategy</th><th>method</th><th>weights (embedding, B1…BK, head)</th>"
        for benchmark in input.benchmarks { html += "<th>\(escapeHTML(benchmark)) accuracy</th><th>\(escapeHTML(benchmark)) tokens</th>" }
        for (index, name) in input.objectiveNames.enumerated() { html += "<th>f\(index + 1) \(escapeHTML(name))</th>" }
        html += "</tr>\n"
        for trial in front {
            let color = style[trial.strategy]?.color ?? "#000"
            html += "<tr><td>\(trial.id)</td><td class=\"text\"><span class=\"swatch\" style=\"background:\(color)\"></span>\(escapeHTML(trial.strategy))</td>"
            html += "<td class=\"text\">\(escapeHTML(trial.method ?? "–"))</td><td class=\"text\">\(trial.weights.map { String(format: "%.2f", $0) }.joined(separator: ", "))</td>"
            for benchmark in input.benchmarks {
                if let score = trial.benchmarks[benchmark] {
                    html += "<td>\(String(format: "%.3f", score.accuracy))</td><td>\(String(format: "%.1f", score.tokens))</td>"
                } else {
                    html += "<td>–</td><td>–</td>"
                }
            }
            for index in input.objectiveNames.indices {
                html += "<td>\(trial.objectives.map { index < $0.count ? String(format: "%.3f", $0[index]) : "–" } ?? "–")</td>"
            }
            html += "</tr>\n"
        }
        return html + "</table>\n"
    }

    // MARK: figures

    static func figure(_ svg: String, caption: String) -> String {
        "<figure>\(svg)<figcaption>\(caption)</figcaption></figure>"
    }

    static func tooltip(_ trial: ReportTrial, names: [String]) -> String {
        var text = "trial \(trial.id) (\(trial.strategy)\(trial.method.map { ", " + $0 } ?? ""))"
        if let y = trial.objectives {
            text += ": " + zip(names, y).map { "\($0) \(String(format: "%.3f", $1))" }.joined(separator: ", ")
        }
        return text + "; x = [" + trial.weights.map { String(format: "%.2f", $0) }.joined(separator: ", ") + "]"
    }

    /// f1 vs f2, every trial with objectives; the front of all trials as a step line.
    static func objectiveFigure(_ input: ReportInput, style: [String: (shape: Int, color: String)], background: String) -> String? {
        guard input.objectiveNames.count >= 2 else { return nil }
        let scored = input.trials.filter { ($0.objectives?.count ?? 0) >= 2 }
        guard !scored.isEmpty else { return nil }
        let xs: [Double] = scored.map { $0.objectives![0] } + [0, 1]
        let ys: [Double] = scored.map { $0.objectives![1] } + [0, 1]
        var plot = SVGPlot(xValues: xs, yValues: ys, background: background)
        plot.axes(title: "Front in objective space", xLabel: "f1 \(input.objectiveNames[0])", yLabel: "f2 \(input.objectiveNames[1])")
        let paretoPoints: [(Double, Double)] = scored.filter(\.pareto).map { ($0.objectives![0], $0.objectives![1]) }
        let front = paretoPoints.sorted { a, b in a.0 < b.0 || (a.0 == b.0 && a.1 > b.1) }
        if let first = front.first {
            var d = "M\(f(plot.x(first.0))),\(f(plot.y(first.1)))"
            for point in front.dropFirst() { d += " V\(f(plot.y(point.1))) H\(f(plot.x(point.0)))" }
            plot.path(d, color: "#333", width: 1.4, dashed: false)
        }
        for trial in scored.sorted(by: { !$0.pareto && $1.pareto }) {
            let s = style[trial.strategy] ?? (0, "#000")
            plot.mark(trial.objectives![0], trial.objectives![1], shape: s.shape, color: s.color, ring: trial.pareto,
                      label: trial.pareto ? "\(trial.id)" : nil, tooltip: tooltip(trial, names: input.objectiveNames))
        }
        plot.legend(input.strategies.map { (name: $0, shape: style[$0]!.shape, color: style[$0]!.color) }, extra: [(name: "Pareto front", color: "#333", dashed: false)])
        return figure(plot.svg(id: "objective-space"), caption: "Every evaluated trial in objective space; black rings (labelled with the trial id) are the Pareto models of all strategies together, joined by the front's step line.")
    }

    /// Hypervolume after each evaluation, one line per strategy.
    static func hypervolumeFigure(_ input: ReportInput, curves: [HypervolumeHistory.Curve], style: [String: (shape: Int, color: String)], background: String) -> String? {
        let longest = curves.map(\.values.count).max() ?? 0
        guard longest > 0, !input.referencePoint.isEmpty else { return nil }
        let values = curves.flatMap(\.values)
        var plot = SVGPlot(xValues: [1, Double(longest)], yValues: values + [0], xInteger: true, background: background)
        plot.axes(title: "Hypervolume over evaluations", xLabel: "evaluations (trials of the strategy, in order)", yLabel: "hypervolume")
        for curve in curves {
            let s = style[curve.strategy] ?? (0, "#000")
            var d = ""
            for (index, value) in curve.values.enumerated() {
                let px = plot.x(Double(index + 1)), py = plot.y(value)
                d += index == 0 ? "M\(f(px)),\(f(py))" : " H\(f(px)) V\(f(py))"
            }
            plot.path(d, color: s.color, width: 2)
            if let last = curve.values.last {
                plot.mark(Double(curve.values.count), last, shape: s.shape, color: s.color,
                          tooltip: "\(curve.strategy): \(String(format: "%.4f", last)) after \(curve.values.count) evaluations")
            }
        }
        plot.legend(input.strategies.map { (name: $0, shape: style[$0]!.shape, color: style[$0]!.color) })
        let reference = input.referencePoint.map { String(format: "%g", $0) }.joined(separator: ", ")
        return figure(plot.svg(id: "hypervolume"), caption: "Hypervolume of each strategy's own trials after n evaluations (reference point (\(reference))).")
    }

    /// Mean output tokens vs accuracy on one benchmark.
    static func metricFigure(_ input: ReportInput, benchmark: String, style: [String: (shape: Int, color: String)], background: String) -> String {
        let rows = input.trials.compactMap { trial in trial.benchmarks[benchmark].map { (trial, $0) } }
        var plot = SVGPlot(xValues: rows.map { $0.1.tokens }, yValues: rows.map { $0.1.accuracy }, background: background)
        plot.axes(title: "\(benchmark): tokens vs accuracy", xLabel: "mean output tokens", yLabel: "accuracy")
        for (trial, score) in rows.sorted(by: { !$0.0.pareto && $1.0.pareto }) {
            let s = style[trial.strategy] ?? (0, "#000")
            plot.mark(score.tokens, score.accuracy, shape: s.shape, color: s.color, ring: trial.pareto, label: trial.pareto ? "\(trial.id)" : nil,
                      tooltip: tooltip(trial, names: input.objectiveNames) + "; accuracy \(String(format: "%.3f", score.accuracy)), tokens \(String(format: "%.1f", score.tokens))")
        }
        plot.legend(input.strategies.map { (name: $0, shape: style[$0]!.shape, color: style[$0]!.color) })
        return figure(plot.svg(id: "metrics-\(escapeHTML(benchmark))"), caption: "\(escapeHTML(benchmark)): each trial's accuracy against its mean output tokens; black rings are the Pareto models (objective space).")
    }

    /// Per-layer differences as bars, blocks shaded and separated (Figure 2); only the blocks when no profile is stored.
    static func partitionFigure(_ partition: ReportPartition, background: String) -> String {
        let layers = partition.layerDifferences.count > 0 ? partition.layerDifferences.count : (partition.blocks.last?.last).map { $0 + 1 } ?? 0
        let hasProfile = !partition.layerDifferences.isEmpty
        let heights = hasProfile ? partition.layerDifferences : Array(repeating: 1, count: layers)
        // One slot per layer; a tick every few layers.
        let every = max(1, Int(SVGPlot.Scale.niceStep(span: Double(max(layers, 1)), count: 8).rounded()))
        let ticks = stride(from: 0, to: max(layers, 1), by: every).map(Double.init)
        var plot = SVGPlot(xValues: [], yValues: heights + [0], background: background, xRange: (-0.5, Double(max(layers, 1)) - 0.5, ticks))
        plot.axes(title: "Partition: \(partition.blocks.count) blocks over \(layers) layers", xLabel: "layer",
                  yLabel: hasProfile ? "layer difference (\(partition.norm))" : "blocks (no profile stored)")
        let top = plot.y(plot.y.high), bottom = plot.y(plot.y.low)
        for (index, block) in partition.blocks.enumerated() where block.count == 2 {
            let x0 = plot.x(Double(block[0]) - 0.5), x1 = plot.x(Double(block[1]) + 0.5)
            // Odd blocks get a shaded label band (not the whole height: the plot area's own fill stays visible).
            if index % 2 == 1 {
                plot.raw(##"<rect x="\##(f(x0))" y="\##(f(top))" width="\##(f(x1 - x0))" height="18" fill="#e3e7ef"/>"##)
            }
            plot.raw(#"<text class="block-label" x="\#(f((x0 + x1) / 2))" y="\#(f(top + 13))" text-anchor="middle">B\#(index + 1)</text>"#)
            if index > 0 {
                plot.raw(##"<line x1="\##(f(x0))" y1="\##(f(top))" x2="\##(f(x0))" y2="\##(f(bottom))" stroke="#333" stroke-width="1.2" stroke-dasharray="4 3"/>"##)
            }
        }
        let slot = plot.x(0.5) - plot.x(-0.5)
        for (layer, value) in heights.enumerated() {
            let block = partition.blocks.firstIndex { $0.count == 2 && $0[0] <= layer && layer <= $0[1] } ?? 0
            let color = partitionColors[block % 2]
            let x0 = plot.x(Double(layer) - 0.5) + slot * 0.12, y0 = plot.y(max(0, value))
            plot.raw(#"<rect x="\#(f(x0))" y="\#(f(y0))" width="\#(f(slot * 0.76))" height="\#(f(max(0, plot.y(0) - y0)))" fill="\#(color)"><title>layer \#(layer): \#(String(format: "%.4g", value))</title></rect>"#)
        }
        var caption = "Per-layer difference between the two models and the block boundaries (dashed) the optimizer's weights refer to."
        if !hasProfile { caption = "The blocks (the archive holds no per-layer profile)." }
        let extras = [partition.embeddingDifference.map { "embedding \(String(format: "%.4g", $0))" }, partition.headDifference.map { "head \(String(format: "%.4g", $0))" }].compactMap { $0 }
        if !extras.isEmpty { caption += " Outside the layers: " + extras.joined(separator: ", ") + "." }
        return figure(plot.svg(id: "partition"), caption: caption)
    }
}
