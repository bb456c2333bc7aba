import BamboProtocol
import Foundation

/// Normalized objectives, paper Eq. 2: for objective o with metric m, expert model E and base model B,
///
///     f_o(x) = Σ_b (s_b(x) − s_b(B)) / (s_b(E) − s_b(B))
///
/// summed over the benchmarks b (all of them, or the objective's `benchmarks` list), where s_b is the raw metric (accuracy, or mean output tokens) of
/// benchmark b and s_b(E), s_b(B) are measured on the expert's and base's own trials (the corners
/// x = 0 and x = 1). The expert scores 1 per benchmark and the base 0, whatever the metric's direction:
/// for tokens, with the terse model as expert, the denominator is negative and fewer tokens score
/// higher. All objectives are maximized.
public enum ObjectiveNormalizer {
    /// A benchmark left out of an objective's sum because its anchors cannot normalize it.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var objective: String
        public var benchmark: String
        public var reason: String
        public var description: String { "objective \(objective), benchmark \(benchmark): \(reason)" }
    }

    /// The objectives of one trial's metrics, by objective name, given the raw metrics of each anchor
    /// model's trial by model name. Benchmarks whose anchors are equal (zero denominator) or missing
    /// are left out of the sum and reported in `problems`; an objective with no usable benchmark is 0.
    public static func objectives(
        of metrics: Metrics, anchors: [String: Metrics], settings: [StudyConfig.ObjectiveSettings]
    ) -> (values: [String: Double], problems: [Problem]) {
        var values: [String: Double] = [:]
        var problems: [Problem] = []
        for objective in settings {
            var sum = 0.0
            for benchmark in metrics.benchmarks.keys.sorted() where objective.benchmarks?.contains(benchmark) ?? true {
                guard let expert = anchors[objective.expert]?.benchmarks[benchmark],
                      let base = anchors[objective.base]?.benchmarks[benchmark]
                else {
                    problems.append(Problem(objective: objective.name, benchmark: benchmark, reason: "the anchor trials did not report this benchmark"))
                    continue
                }
                let value = metrics.benchmarks[benchmark]!
                let (s, sExpert, sBase) = (metric(value, objective.metric), metric(expert, objective.metric), metric(base, objective.metric))
                let denominator = sExpert - sBase
                guard denominator != 0, denominator.isFinite else {
                    problems.append(Problem(
                        objective: objective.name, benchmark: benchmark,
                        reason: "expert \(objective.expert) and base \(objective.base) both score \(sExpert) (\(objective.metric.rawValue)): zero denominator, benchmark left out"))
                    continue
                }
                sum += (s - sBase) / denominator
            }
            values[objective.name] = sum
        }
        return (values, problems)
    }

    static func metric(_ metrics: BenchmarkMetrics, _ metric: StudyConfig.Metric) -> Double {
        switch metric {
        case .accuracy: metrics.accuracy
        case .tokens: metrics.tokens
        }
    }
}
