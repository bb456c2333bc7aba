import Foundation

/// The line-oriented JSON protocol of `bambo ask-tell`, without I/O: feed it each input line, write back
/// the line it returns (nil for a blank line).
///
/// Lines (all objectives maximized, x in [0,1]^dim):
/// - first: `{"dim": D, "objectives": M, "seed": S, "acquisition": "qehvi"|"qnehvi"|"qlogehvi"|"qlognehvi", "refPoint": [..]?,
///   "initial": N0?}`, also accepted: `"mcSamples"`, `"restarts"`, `"rawSamples"`, `"incumbentSamples"` (defaults 128, 10, 512, 128);
///   answered `{"ok": true}`.
/// - `{"tell": [{"x": [...], "y": [...]}, …]}` → `{"ok": true, "observations": n}`.
/// - `{"ask": q, "pending": [[...], …]?}` → `{"x": [[...], …]}` (the initial Sobol design until N0
///   observations exist).
/// - anything malformed → `{"error": "…"}`; the session goes on with its state unchanged.
public struct AskTellSession: Sendable {
    /// The optimizer, once the configuration line was accepted.
    public private(set) var optimizer: MultiObjectiveOptimizer?

    public init() {}

    /// The answer to one input line (nil for blank lines).
    public mutating func respond(to line: String) -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        do {
            let object = try Self.parseObject(trimmed)
            if optimizer == nil {
                optimizer = try MultiObjectiveOptimizer(try Self.configuration(from: object))
                return #"{"ok": true}"#
            }
            return try handle(object)
        } catch let error as AcquisitionError {
            return Self.errorLine(error.messageText)
        } catch {
            return Self.errorLine("\(error)")
        }
    }

    private mutating func handle(_ object: [String: Any]) throws -> String {
        guard var o = optimizer else { throw AcquisitionError.invalidInput("no configuration yet") }
        let keys = Set(object.keys)
        if keys.contains("tell") {
            guard keys == ["tell"] else {
                throw AcquisitionError.invalidInput("a tell line has only the key \"tell\", got \(keys.sorted())")
            }
            guard let entries = object["tell"] as? [Any] else {
                throw AcquisitionError.invalidInput("\"tell\" must be an array of {\"x\": [...], \"y\": [...]}")
            }
            var xs: [[Double]] = [], ys: [[Double]] = []
            for (i, entry) in entries.enumerated() {
                guard let e = entry as? [String: Any], Set(e.keys) == ["x", "y"] else {
                    throw AcquisitionError.invalidInput("tell[\(i)] must be an object with exactly the keys \"x\" and \"y\"")
                }
                xs.append(try Self.numbers(e["x"], field: "tell[\(i)].x"))
                ys.append(try Self.numbers(e["y"], field: "tell[\(i)].y"))
            }
            try o.tell(x: xs, y: ys)
            optimizer = o
            return #"{"ok": true, "observations": \#(o.observationCount)}"#
        }
        if keys.contains("ask") {
            guard keys.isSubset(of: ["ask", "pending"]) else {
                throw AcquisitionError.invalidInput("an ask line has the keys \"ask\" and optionally \"pending\", got \(keys.sorted())")
            }
            let q = try Self.integer(object["ask"], field: "ask", range: 1...1000)
            var pending: [[Double]] = []
            if let p = object["pending"] {
                guard let list = p as? [Any] else {
                    throw AcquisitionError.invalidInput("\"pending\" must be an array of points")
                }
                pending = try list.enumerated().map { try Self.numbers($0.element, field: "pending[\($0.offset)]") }
            }
            let x = try o.ask(q: q, pending: pending)
            optimizer = o
            return #"{"x": ["# + x.map(Self.jsonArray).joined(separator: ", ") + "]}"
        }
        throw AcquisitionError.invalidInput("expected a line with \"tell\" or \"ask\", got keys \(keys.sorted())")
    }

    static func configuration(from object: [String: Any]) throws -> MultiObjectiveOptimizerConfiguration {
        let allowed: Set<String> = ["dim", "objectives", "seed", "acquisition", "refPoint", "initial", "mcSamples",
                                    "restarts", "rawSamples", "incumbentSamples"]
        let unknown = Set(object.keys).subtracting(allowed)
        guard unknown.isEmpty else {
            throw AcquisitionError.invalidInput(
                "unknown configuration key(s) \(unknown.sorted()); expected the first line {\"dim\", \"objectives\", \"seed\", \"acquisition\", \"refPoint\"?, \"initial\"?}")
        }
        for key in ["dim", "objectives", "seed", "acquisition"] where object[key] == nil {
            throw AcquisitionError.invalidInput("the configuration line needs \"\(key)\"")
        }
        let dim = try integer(object["dim"], field: "dim", range: 1...SobolSequence.maximumDimension)
        let objectives = try integer(object["objectives"], field: "objectives", range: 1...20)
        let seed = try integer(object["seed"], field: "seed", range: 0...(1 << 53))
        let modelBased = ProposalStrategy.allCases.filter { $0 != .sobol }
        guard let name = object["acquisition"] as? String, let strategy = ProposalStrategy(rawValue: name),
              strategy != .sobol else {
            throw AcquisitionError.invalidInput(
                "\"acquisition\" must be one of \(modelBased.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        let reference = try object["refPoint"].map { try numbers($0, field: "refPoint") }
        let initial = try object["initial"].map { try integer($0, field: "initial", range: 2...100_000) }
        var configuration = MultiObjectiveOptimizerConfiguration(
            dimension: dim, objectives: objectives, referencePoint: reference, initialDesignSize: initial,
            strategy: strategy, seed: UInt64(seed),
            mcSamples: try object["mcSamples"].map { try integer($0, field: "mcSamples", range: 1...65_536) } ?? 128,
            restarts: try object["restarts"].map { try integer($0, field: "restarts", range: 1...1000) } ?? 10,
            rawSamples: try object["rawSamples"].map { try integer($0, field: "rawSamples", range: 1...1_000_000) } ?? 512)
        if let extra = object["incumbentSamples"] {
            configuration.acquisitionOptions.incumbentSamples = try integer(extra, field: "incumbentSamples", range: 0...1_000_000)
        }
        return configuration
    }

    static func parseObject(_ line: String) throws -> [String: Any] {
        guard let data = line.data(using: .utf8),
              let value = try? JSONSerialization.jsonObject(with: data, options: []) else {
            throw AcquisitionError.invalidInput("not valid JSON: \(line.prefix(80))")
        }
        guard let object = value as? [String: Any] else {
            throw AcquisitionError.invalidInput("each line must be a JSON object")
        }
        return object
    }

    static func isBoolean(_ value: Any) -> Bool {
        guard let n = value as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }

    static func number(_ value: Any?, field: String) throws -> Double {
        guard let value, !isBoolean(value), let n = value as? NSNumber else {
            throw AcquisitionError.invalidInput("\"\(field)\" must be a number")
        }
        return n.doubleValue
    }

    static func integer(_ value: Any?, field: String, range: ClosedRange<Int>) throws -> Int {
        let v = try number(value, field: field)
        guard v == v.rounded(), v >= Double(range.lowerBound), v <= Double(range.upperBound) else {
            throw AcquisitionError.invalidInput("\"\(field)\" must be an integer in \(range.lowerBound)…\(range.upperBound), got \(v)")
        }
        return Int(v)
    }

    static func numbers(_ value: Any?, field: String) throws -> [Double] {
        guard let list = value as? [Any] else { throw AcquisitionError.invalidInput("\"\(field)\" must be an array of numbers") }
        return try list.enumerated().map { try number($0.element, field: "\(field)[\($0.offset)]") }
    }

    /// A JSON array of finite numbers in Swift's shortest round-trip form.
    static func jsonArray(_ values: [Double]) -> String {
        "[" + values.map { "\($0)" }.joined(separator: ", ") + "]"
    }

    static func errorLine(_ message: String) -> String {
        var escaped = ""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return #"{"error": "\#(escaped)"}"#
    }
}

extension AcquisitionError {
    /// The message without the "acquisition:" prefix.
    var messageText: String {
        switch self {
        case .invalidInput(let s): return s
        }
    }
}
