import ArgumentParser
import Foundation
import Optimization

extension ProposalStrategy: ExpressibleByArgument {}

/// The GP prior families as named on the command line.
enum GPPriorsArgument: String, ExpressibleByArgument, CaseIterable {
    case classic
    case dimensionScaled = "dimension-scaled"

    var choice: GPPriorChoice { self == .classic ? .classic : .dimensionScaled }
}

/// `bambo bench optimizer`: the multi-objective BO loop on a synthetic test problem.
struct BenchOptimizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizer",
        abstract: "Run the multi-objective BO loop on a test problem and report hypervolumes and timings.",
        discussion: """
        Runs N0 scrambled-Sobol points, then T batches of q proposals (fit one GP per \
        objective, then optimize the acquisition), and reports per iteration the \
        hypervolume, log10(maxHV − HV) where maxHV is known, and the seconds spent \
        fitting and optimizing the acquisition. Objectives are maximized (negated \
        textbook problems); the reference point is the problem's standard one.

        Examples:
          bambo bench optimizer --problem branin-currin --iterations 20 --batch 4
          bambo bench optimizer --problem zdt1 --dim 8 --seed 3 --json
          bambo bench optimizer --problem dtlz2 --dim 6 --objectives 2 --acquisition sobol
        """)

    @Option(help: "Test problem: \(TestProblems.names.joined(separator: ", ")).")
    var problem: String

    @Option(help: "Input dimension (default: 2 for branin-currin, 30 for ZDT, M+4 / M+9 for DTLZ1 / DTLZ2).")
    var dim: Int?

    @Option(help: "Number of objectives (DTLZ only; default 2).")
    var objectives: Int?

    @Option(help: "Initial Sobol design size N0.")
    var initial: Int = 8

    @Option(help: "Number of batches T after the initial design.")
    var iterations: Int = 20

    @Option(help: "Batch size q.")
    var batch: Int = 4

    @Option(help: "Acquisition: qlogehvi/qlognehvi (log-smoothed, Ament et al. 2023), qehvi/qnehvi (exact MC), or sobol.")
    var acquisition: ProposalStrategy = .qlogehvi

    @Option(help: "Seed of the design, the fits and the acquisition.")
    var seed: UInt64 = 0

    @Option(name: .customLong("mc-samples"), help: "QMC samples of the acquisition.")
    var mcSamples: Int = 128

    @Option(help: "L-BFGS-B restarts of the acquisition optimization.")
    var restarts: Int = 10

    @Option(name: .customLong("raw-samples"), help: "Sobol raw samples scored to choose the restarts.")
    var rawSamples: Int = 512

    @Option(name: .customLong("incumbent-samples"), help: "How many of the raw samples are drawn around the observed Pareto set instead of from the Sobol sequence (0: Sobol only, as BoTorch's default).")
    var incumbentSamples: Int = 128

    @Option(name: .customLong("gp-priors"), help: "GP hyper-parameter priors: classic (Gamma length-scales) or dimension-scaled (Hvarfner et al. 2024, BoTorch ≥ 0.12's default).")
    var gpPriors: GPPriorsArgument = .classic

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard TestProblems.names.contains(problem) else {
            throw ValidationError("--problem must be one of \(TestProblems.names.joined(separator: ", ")) (got \(problem))")
        }
        guard initial >= 2 else { throw ValidationError("--initial must be ≥ 2 (got \(initial))") }
        guard iterations >= 0 else { throw ValidationError("--iterations must be ≥ 0 (got \(iterations))") }
        guard batch >= 1, batch <= 20 else { throw ValidationError("--batch must be in 1…20 (got \(batch))") }
        guard mcSamples >= 1, restarts >= 1, rawSamples >= 1 else {
            throw ValidationError("--mc-samples, --restarts and --raw-samples must be ≥ 1")
        }
        guard incumbentSamples >= 0 else { throw ValidationError("--incumbent-samples must be ≥ 0 (got \(incumbentSamples))") }
    }

    func run() throws {
        let testProblem: any MultiObjectiveTestProblem
        do {
            testProblem = try TestProblems.make(name: problem, dimension: dim, objectives: objectives)
        } catch {
            throw ValidationError("\(error)")
        }
        var configuration = MultiObjectiveOptimizerConfiguration(
            dimension: testProblem.dimension, objectives: testProblem.objectiveCount, initialDesignSize: initial,
            strategy: acquisition, seed: seed, mcSamples: mcSamples, restarts: restarts, rawSamples: rawSamples)
        configuration.fitOptions.priors = gpPriors.choice
        configuration.acquisitionOptions.incumbentSamples = incumbentSamples
        let clock = ContinuousClock()
        let origin = clock.now
        let now: () -> Double = {
            let d = clock.now - origin
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        let json = self.json
        let report = try OptimizerBenchmark.run(
            problem: testProblem, configuration: configuration, iterations: iterations, batch: batch, now: now,
            progress: { t, hv in if !json { Terminal.error("iteration \(t): HV \(hv)") } })
        if json {
            print(jsonReport(report, problem: testProblem))
        } else {
            printTable(report)
        }
    }

    private func jsonReport(_ r: OptimizerBenchmark.Report, problem p: any MultiObjectiveTestProblem) -> String {
        func num(_ v: Double?) -> String { v.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        func list(_ vs: [Double?]) -> String { "[" + vs.map(num).joined(separator: ", ") + "]" }
        let steps = zip(r.fitSeconds, r.acquisitionSeconds).map { $0 + $1 }
        let fields: [(String, String)] = [
            ("problem", "\"\(p.name)\""), ("dim", "\(p.dimension)"), ("objectives", "\(p.objectiveCount)"),
            ("initial", "\(initial)"), ("iterations", "\(iterations)"), ("batch", "\(batch)"),
            ("acquisition", "\"\(acquisition.rawValue)\""), ("seed", "\(seed)"),
            ("mcSamples", "\(mcSamples)"), ("gpPriors", "\"\(gpPriors.rawValue)\""), ("restarts", "\(restarts)"), ("rawSamples", "\(rawSamples)"), ("incumbentSamples", "\(incumbentSamples)"),
            ("referencePoint", list(p.referencePoint)), ("maxHypervolume", num(r.maxHypervolume)),
            ("hypervolumes", list(r.hypervolumes)), ("logHypervolumeGaps", list(r.logHypervolumeGaps)),
            ("finalHypervolume", num(r.finalHypervolume)), ("finalLogHypervolumeGap", num(r.finalLogHypervolumeGap)),
            ("fitSeconds", list(r.fitSeconds)), ("acquisitionSeconds", list(r.acquisitionSeconds)),
            ("stepSeconds", list(steps)),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    private func printTable(_ r: OptimizerBenchmark.Report) {
        print("iter  evaluations  hypervolume     log10 gap   fit s     acq s")
        for (t, hv) in r.hypervolumes.enumerated() {
            let gap = r.logHypervolumeGaps[t].map { String(format: "%9.4f", $0) } ?? "        -"
            let fit = t == 0 ? "      -" : String(format: "%7.3f", r.fitSeconds[t - 1])
            let acq = t == 0 ? "      -" : String(format: "%7.3f", r.acquisitionSeconds[t - 1])
            print(String(format: "%4d  %11d  %14.6f", t, initial + t * batch, hv) + "   \(gap)   \(fit)   \(acq)")
        }
    }
}
