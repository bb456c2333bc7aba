import Foundation

/// A small SVG chart builder: a fixed-size frame with a plot area, linear axes with round ticks,
/// grid lines, and marks in data coordinates. Produces SVG text; knows nothing of studies.
struct SVGPlot {
    let width: Double
    let height: Double
    let left = 64.0, right = 16.0, top = 46.0, bottom = 46.0
    let x: Scale
    let y: Scale
    /// Fill of the plot area: each plot gets its own, so a screenshot can find it.
    let background: String
    private(set) var body: [String] = []

    /// A linear map from [low, high] to pixels, with round ticks.
    struct Scale {
        var low: Double
        var high: Double
        var ticks: [Double]
        var pixelLow: Double
        var pixelHigh: Double

        /// A scale covering `values` with a margin of `pad` of the range, extended to round ticks.
        init(covering values: [Double], pad: Double = 0.06, pixels: (Double, Double), integer: Bool = false) {
            var low = values.min() ?? 0, high = values.max() ?? 1
            if !(high > low) { low -= 0.5; high += 0.5 }
            let span = high - low
            low -= pad * span
            high += pad * span
            var step = Self.niceStep(span: high - low, count: 6)
            if integer { step = max(1, step.rounded()) }
            self.low = (low / step).rounded(.down) * step
            self.high = (high / step).rounded(.up) * step
            ticks = stride(from: self.low, through: self.high + step * 1e-9, by: step).map { abs($0) < step * 1e-9 ? 0 : $0 }
            pixelLow = pixels.0
            pixelHigh = pixels.1
        }

        /// A step of 1, 2 or 5 × 10^k giving about `count` intervals over `span`.
        static func niceStep(span: Double, count: Double) -> Double {
            let raw = span / count
            let magnitude = pow(10, (log10(raw)).rounded(.down))
            let fraction = raw / magnitude
            let nice: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
            return nice * magnitude
        }

        func callAsFunction(_ value: Double) -> Double {
            pixelLow + (value - low) / (high - low) * (pixelHigh - pixelLow)
        }

        /// A scale over exactly [low, high] with the given ticks.
        init(low: Double, high: Double, ticks: [Double], pixels: (Double, Double)) {
            self.low = low
            self.high = high
            self.ticks = ticks
            pixelLow = pixels.0
            pixelHigh = pixels.1
        }
    }

    /// `xValues`/`yValues`: the data the axes must cover; `xRange`: an exact x range with its ticks instead.
    init(
        width: Double = 560, height: Double = 380, xValues: [Double], yValues: [Double], xInteger: Bool = false,
        background: String, xRange: (low: Double, high: Double, ticks: [Double])? = nil
    ) {
        self.width = width
        self.height = height
        self.background = background
        if let xRange {
            x = Scale(low: xRange.low, high: xRange.high, ticks: xRange.ticks, pixels: (left, width - right))
        } else {
            x = Scale(covering: xValues, pixels: (left, width - right), integer: xInteger)
        }
        y = Scale(covering: yValues, pixels: (height - bottom, top))
    }

    /// Plot area, grid, ticks and axis labels; call before adding marks.
    mutating func axes(title: String, xLabel: String, yLabel: String) {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        body.append(#"<text class="title" x="\#(f(left))" y="17">\#(escapeHTML(title))</text>"#)
        body.append(#"<rect class="plot-area" x="\#(f(left))" y="\#(f(top))" width="\#(f(plotWidth))" height="\#(f(plotHeight))" fill="\#(background)"/>"#)
        for tick in x.ticks {
            let px = x(tick)
            body.append(#"<line class="grid" x1="\#(f(px))" y1="\#(f(top))" x2="\#(f(px))" y2="\#(f(height - bottom))"/>"#)
            body.append(#"<text class="tick" x="\#(f(px))" y="\#(f(height - bottom + 15))" text-anchor="middle">\#(tickText(tick, step: x.ticks))</text>"#)
        }
        for tick in y.ticks {
            let py = y(tick)
            body.append(#"<line class="grid" x1="\#(f(left))" y1="\#(f(py))" x2="\#(f(width - right))" y2="\#(f(py))"/>"#)
            body.append(#"<text class="tick" x="\#(f(left - 6))" y="\#(f(py + 4))" text-anchor="end">\#(tickText(tick, step: y.ticks))</text>"#)
        }
        body.append(#"<rect class="frame" x="\#(f(left))" y="\#(f(top))" width="\#(f(plotWidth))" height="\#(f(plotHeight))"/>"#)
        body.append(#"<text class="label" x="\#(f(left + plotWidth / 2))" y="\#(f(height - 8))" text-anchor="middle">\#(escapeHTML(xLabel))</text>"#)
        body.append(#"<text class="label" transform="translate(14 \#(f(top + plotHeight / 2))) rotate(-90)" text-anchor="middle">\#(escapeHTML(yLabel))</text>"#)
    }

    /// A mark of `shape` at data point (vx, vy); `ring` outlines it in black (Pareto models).
    mutating func mark(_ vx: Double, _ vy: Double, shape: Int, color: String, ring: Bool = false, label: String? = nil, tooltip: String) {
        let px = x(vx), py = y(vy)
        let stroke = ring ? ##" stroke="#111" stroke-width="1.6""## : ##" stroke="#fff" stroke-width="0.8""##
        body.append(Self.shape(shape, px, py, size: ring ? 6.5 : 5, color: color, stroke: stroke, tooltip: escapeHTML(tooltip)))
        if let label {
            body.append(#"<text class="point-label" x="\#(f(px + 7))" y="\#(f(py - 6))">\#(escapeHTML(label))</text>"#)
        }
    }

    /// A path through data points given as SVG path commands over pixel coordinates.
    mutating func path(_ d: String, color: String, width: Double = 1.6, dashed: Bool = false) {
        body.append(#"<path d="\#(d)" fill="none" stroke="\#(color)" stroke-width="\#(f(width))"\#(dashed ? #" stroke-dasharray="5 3""# : "")/>"#)
    }

    /// Raw SVG appended as is (already escaped, pixel coordinates).
    mutating func raw(_ element: String) { body.append(element) }

    /// The legend: one row above the plot area (so the plot area holds data only), one entry per
    /// (name, shape, color), then line entries.
    mutating func legend(_ entries: [(name: String, shape: Int, color: String)], extra: [(name: String, color: String, dashed: Bool)] = []) {
        var cursor = left
        let cy = 33.0
        for entry in entries {
            body.append(Self.shape(entry.shape, cursor + 5, cy, size: 4.5, color: entry.color, stroke: ##" stroke="#fff" stroke-width="0.8""##, tooltip: nil))
            body.append(#"<text class="legend-text" x="\#(f(cursor + 14))" y="\#(f(cy + 4))">\#(escapeHTML(entry.name))</text>"#)
            cursor += 28 + 6.8 * Double(entry.name.count)
        }
        for entry in extra {
            body.append(#"<line x1="\#(f(cursor))" y1="\#(f(cy))" x2="\#(f(cursor + 16))" y2="\#(f(cy))" stroke="\#(entry.color)" stroke-width="1.6"\#(entry.dashed ? #" stroke-dasharray="5 3""# : "")/>"#)
            body.append(#"<text class="legend-text" x="\#(f(cursor + 21))" y="\#(f(cy + 4))">\#(escapeHTML(entry.name))</text>"#)
            cursor += 34 + 6.8 * Double(entry.name.count)
        }
    }

    /// The finished `<svg>` element.
    func svg(id: String) -> String {
        #"<svg id="\#(id)" xmlns="http://www.w3.org/2000/svg" width="\#(f(width))" height="\#(f(height))" viewBox="0 0 \#(f(width)) \#(f(height))">"#
            + "\n" + body.joined(separator: "\n") + "\n</svg>"
    }

    /// Shapes by index: circle, square, triangle, diamond, inverted triangle, cross.
    static func shape(_ index: Int, _ x: Double, _ y: Double, size s: Double, color: String, stroke: String, tooltip: String?) -> String {
        let title = tooltip.map { "<title>\($0)</title>" } ?? ""
        let open = title.isEmpty ? "/>" : ">\(title)"
        func close(_ tag: String) -> String { title.isEmpty ? "" : "</\(tag)>" }
        switch index % 6 {
        case 0:
            return #"<circle cx="\#(f(x))" cy="\#(f(y))" r="\#(f(s))" fill="\#(color)"\#(stroke)\#(open)\#(close("circle"))"#
        case 1:
            return #"<rect x="\#(f(x - s))" y="\#(f(y - s))" width="\#(f(2 * s))" height="\#(f(2 * s))" fill="\#(color)"\#(stroke)\#(open)\#(close("rect"))"#
        default:
            let points: [(Double, Double)]
            switch index % 6 {
            case 2: points = [(x, y - 1.25 * s), (x + 1.15 * s, y + s), (x - 1.15 * s, y + s)]
            case 3: points = [(x, y - 1.3 * s), (x + 1.3 * s, y), (x, y + 1.3 * s), (x - 1.3 * s, y)]
            case 4: points = [(x, y + 1.25 * s), (x + 1.15 * s, y - s), (x - 1.15 * s, y - s)]
            default:
                let a = 0.4 * s, b = 1.2 * s
                points = [(x - a, y - b), (x + a, y - b), (x + a, y - a), (x + b, y - a), (x + b, y + a), (x + a, y + a),
                          (x + a, y + b), (x - a, y + b), (x - a, y + a), (x - b, y + a), (x - b, y - a), (x - a, y - a)]
            }
            let list = points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
            return #"<polygon points="\#(list)" fill="\#(color)"\#(stroke)\#(open)\#(close("polygon"))"#
        }
    }

    /// Tick text with as many decimals as the tick step needs.
    func tickText(_ value: Double, step ticks: [Double]) -> String {
        let step = ticks.count > 1 ? abs(ticks[1] - ticks[0]) : 1
        let decimals = max(0, min(6, Int((-log10(step)).rounded(.up))))
        return String(format: "%.\(decimals)f", value)
    }
}

/// A pixel coordinate with two decimals.
func f(_ value: Double) -> String { String(format: "%.2f", value) }

/// Text safe inside HTML/SVG elements and attribute values.
func escapeHTML(_ text: String) -> String {
    var out = ""
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}
