import Archive
import BamboProtocol
import Foundation
import Testing

@testable import Coordinator

private func parse(_ yaml: String) throws -> StudyConfig {
    try StudyConfig.parse(yaml: yaml, fileName: "study.yaml", baseDirectory: URL(fileURLWithPath: "/data/run"))
}

private func error(_ yaml: String) -> String? {
    do {
        _ = try parse(yaml)
        return nil
    } catch {
        return "\(error)"
    }
}

/// The issue's study file with a base model (task-vector methods need one).
private let withBase = issueStudyYAML + "\nbase: {name: base, path: ckpt/base}"

@Suite struct StrategyConfigTests {
    @Test func theDefaultIsBamboAndBothSpellingsParse() throws {
        let plain = try parse(issueStudyYAML)
        #expect(plain.strategies == [.bambo] && plain.grid == nil)
        #expect(plain.plans == [StrategyPlan(strategy: .bambo, initial: 8, batch: 4, budget: 28)])
        #expect(try parse(issueStudyYAML + "\nstrategy: layerwise").strategies == [.layerwise])
        #expect(try parse(issueStudyYAML + "\nstrategies: [bambo, layerwise, grid]").strategies == [.bambo, .layerwise, .grid])
        #expect(try parse(issueStudyYAML + "\nstrategies: layerwise").strategies == [.layerwise])
    }

    @Test func budgetsPerStrategyAndTheirSum() throws {
        let config = try parse(withBase + "\nstrategies: [bambo, layerwise, grid]")
        // bambo and layerwise at equal evaluations: 8 + 5 × 4 = 28 each; grid 5 methods × 9 α = 45.
        #expect(config.plans.map(\.budget) == [28, 28, 45])
        #expect(config.plans.map(\.initial) == [8, 8, 0])
        #expect(config.budget == 101)
        #expect(config.budget(of: .grid) == 45 && config.budget(of: .layerwise) == 28)
        // Without a base model only weight averaging is a model-level method: 9 trials.
        #expect(try parse(issueStudyYAML + "\nstrategies: [bambo, grid]").budget == 28 + 9)
        // The anchor strategy (first that interpolates) is planned first, whatever the order.
        let reordered = try parse(withBase + "\nstrategies: [grid, layerwise, bambo]")
        #expect(reordered.anchorStrategy == .layerwise)
        #expect(reordered.plans.map(\.strategy) == [.layerwise, .grid, .bambo])
    }

    @Test func gridDefaultsDependOnTheBaseModelAndCanBeOverridden() throws {
        let defaults = try #require(try parse(withBase + "\nstrategies: [bambo, grid]").grid)
        #expect(defaults.methods == ["task_arithmetic", "ties", "dare_ties", "breadcrumbs", "della"])
        #expect(defaults.alphas == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
        #expect(defaults.params["ties"] == ["density": 0.5] && defaults.params["task_arithmetic"] == [:])
        #expect(defaults.params["della"] == ["density": 0.5, "epsilon": 0.1])
        #expect(try parse(issueStudyYAML + "\nstrategies: [bambo, grid]").grid?.methods == ["linear"])
        let custom = try #require(try parse(withBase + """

            strategies: [bambo, grid]
            grid: {methods: [ties, linear], alphas: [0.25, 0.75], params: {ties: {density: 0.7, lambda: 1.5}}}
            """).grid)
        #expect(custom.methods == ["ties", "linear"] && custom.alphas == [0.25, 0.75])
        #expect(custom.params["ties"] == ["density": 0.7, "lambda": 1.5] && custom.params["linear"] == [:])
    }

    @Test func badStrategySettingsNameTheKey() throws {
        let cases: [(String, String)] = [
            ("\nstrategy: blockwise", "study.yaml: strategy: expected one of bambo, layerwise, grid, got \"blockwise\""),
            ("\nstrategies: [bambo, evolution]", "study.yaml: strategies[1]: expected one of bambo, layerwise, grid, got \"evolution\""),
            ("\nstrategies: [bambo, bambo]", "study.yaml: strategies[1]: bambo is listed twice"),
            ("\nstrategies: []", "study.yaml: strategies: expected at least one of bambo, layerwise, grid"),
            ("\nstrategy: bambo\nstrategies: [grid]", "study.yaml: strategies: give either strategy (one) or strategies (a list), not both"),
            ("\nstrategies: [grid]", "study.yaml: strategies: grid alone has no anchor trials for the objectives (the corners x = 0 and x = 1): add bambo or layerwise"),
            ("\ngrid: {alphas: [0.5]}", "study.yaml: grid: given, but grid is not among the strategies (bambo): add it to strategies or remove this key"),
            ("\nstrategies: [bambo, grid]\ngrid: {methods: [linear, ties]}",
             "study.yaml: grid.methods[1]: ties merges task vectors and needs a base model: add base: {name, path} to the study, or use linear"),
            ("\nstrategies: [bambo, grid]\ngrid: {methods: [slerp]}",
             "study.yaml: grid.methods[0]: expected one of linear, task_arithmetic, ties, dare_linear, dare_ties, breadcrumbs, della, got \"slerp\""),
            ("\nstrategies: [bambo, grid]\ngrid: {alphas: [0.5, 1]}",
             "study.yaml: grid.alphas[1]: expected a weight α strictly between 0 and 1 (0 and 1 are the models themselves, the anchor trials), got 1"),
            ("\nstrategies: [bambo, grid]\ngrid: {alphas: [0]}",
             "study.yaml: grid.alphas[0]: expected a weight α strictly between 0 and 1 (0 and 1 are the models themselves, the anchor trials), got 0"),
            ("\nstrategies: [bambo, grid]\ngrid: {alphas: [0.5, 0.5]}", "study.yaml: grid.alphas[1]: 0.5 is listed twice"),
            ("\nstrategies: [bambo, grid]\ngrid: {step: 0.1}", "study.yaml: grid.step: unknown key; expected one of methods, alphas, params"),
            ("\nstrategies: [bambo, grid]\ngrid: {params: {linear: {density: 0.5}}}",
             "study.yaml: grid.params.linear.density: linear takes no parameter \"density\" (accepted: none)"),
        ]
        for (extra, expected) in cases {
            #expect(error(issueStudyYAML + extra) == expected)
        }
        #expect(error(withBase + "\nstrategies: [bambo, grid]\ngrid: {params: {ties: {density: 1.5}}}")
            == "study.yaml: grid.params.ties: merge parameter: density = 1.5: expected a number in (0, 1]")
        // Per-block merge params: K + 2 numbers (K = partition.blocks = 4), not with layerwise.
        let ties = withBase.replacingOccurrences(of: "merge: {method: linear, dtype: bfloat16}", with: "merge: {method: ties, params: {density: DENSITY}}")
        #expect(try parse(ties.replacingOccurrences(of: "DENSITY", with: "[0.9, 0.5, 0.4, 0.3, 0.6, 0.9]")).merge.params["density"]
            == .array([0.9, 0.5, 0.4, 0.3, 0.6, 0.9]))
        #expect(error(ties.replacingOccurrences(of: "DENSITY", with: "[0.9, 0.5, 0.9]"))
            == "study.yaml: merge.params.density: expected 6 values, one per block (embedding, the 4 blocks of partition.blocks, head), or a single number; got 3")
        #expect(error(ties.replacingOccurrences(of: "DENSITY", with: "[0.9, 0.5, high, 0.3, 0.6, 0.9]"))?
            .hasPrefix("study.yaml: merge.params.density[2]: expected a number") == true)
        #expect(error(ties.replacingOccurrences(of: "DENSITY", with: "[0.9, 0.5, 0.4, 0.3, 0.6, 0.9]") + "\nstrategies: [bambo, layerwise]")?
            .hasPrefix("study.yaml: merge.params.density: a list has one value per block of the bambo strategy's partition") == true)
        #expect(error(withBase + "\nstrategies: [bambo, grid]\ngrid: {methods: [ties], params: {della: {density: 0.5}}}")?
            .hasPrefix("study.yaml: grid.params.della: unknown key") == true)
    }

    @Test func aConfigStoredBeforeStrategiesDecodesAsBambo() throws {
        let config = try parse(withBase + "\nstrategies: [layerwise, grid]")
        var object = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(config)) as? [String: Any])
        #expect(try JSONDecoder().decode(StudyConfig.self, from: try JSONEncoder().encode(config)) == config)
        object["strategies"] = nil
        object["grid"] = nil
        let old = try JSONDecoder().decode(StudyConfig.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(old.strategies == [.bambo] && old.grid == nil && old.budget == 28)
    }
}

@Suite struct StrategyPlanTests {
    @Test func gridPointsAreMethodMajorWithTheSameWeightOnEveryBlock() {
        let grid = GridSettings.defaults(hasBase: true)
        #expect(grid.count == 45)
        let merge = StudyConfig.MergeSettings(method: "task_arithmetic", dtype: .float16, params: [:], seed: 7)
        let all = grid.trials(from: 0, count: 100, dimension: 3, merge: merge)
        #expect(all.count == 45)
        let expectedParams: [String: [String: JSONValue]] = [
            "task_arithmetic": [:], "ties": ["density": 0.5], "dare_ties": ["density": 0.5],
            "breadcrumbs": ["density": 0.9, "gamma": 0.01], "della": ["density": 0.5, "epsilon": 0.1],
        ]
        // Brute force: every (method, α) pair exactly once, in method-major order.
        var expected: [(String, Double)] = []
        for method in ["task_arithmetic", "ties", "dare_ties", "breadcrumbs", "della"] {
            for step in 1...9 { expected.append((method, Double(step) / 10)) }
        }
        for (trial, (method, alpha)) in zip(all, expected) {
            #expect(trial.x == [alpha, alpha, alpha])
            #expect(trial.merge.method == method && trial.merge.dtype == .float16 && trial.merge.seed == 7)
            #expect(trial.merge.params == expectedParams[method])
        }
        // A resumed grid continues where it stopped; the end is clipped.
        let tail = grid.trials(from: 40, count: 10, dimension: 5, merge: merge)
        #expect(tail.map(\.merge.method) == Array(repeating: "della", count: 5) && tail.map { $0.x[0] } == [0.5, 0.6, 0.7, 0.8, 0.9])
        #expect(tail.allSatisfy { $0.x.count == 5 })
        #expect(grid.trials(from: 45, count: 3, dimension: 3, merge: merge).isEmpty)
        #expect(GridSettings.defaults(hasBase: false).count == 9)
    }

    @Test func layerwisePartitionHasOneBlockPerLayer() {
        for layers in [1, 2, 7, 36] {
            let spec = layerwisePartition(layers: layers)
            #expect(spec.layers == layers && spec.blocks.count == layers && spec.dimension == layers + 2)
            // Contiguous, covering 0..<L, one layer each.
            #expect(spec.blocks.flatMap { $0 } == (0..<layers).flatMap { [$0, $0] })
            #expect(modelLevelPartition(layers: layers).blocks == [[0, layers - 1]])
        }
    }
}

private func multiSettings() -> Dispatcher.Settings {
    Dispatcher.Settings(
        study: "demo", heartbeatInterval: 1, leaseBeats: 3,
        plans: [
            StrategyPlan(strategy: .bambo, initial: 3, batch: 2, budget: 5),
            StrategyPlan(strategy: .grid, initial: 0, batch: 2, budget: 5),
        ],
        evaluatorKind: "exec", resumeGrace: 2)
}

@Suite struct MultiStrategyDispatcherTests {
    /// Completes every trial out on `worker` (one round).
    private func completeAll(_ driver: Driver, _ worker: String) throws {
        for trial in driver.core.trials(on: worker).sorted() {
            let attempt = driver.tasks(to: worker).last { $0.trial == trial }!
            try driver.result(worker, attempt)
        }
    }

    @Test func strategiesTakeTurnsByShareOfBudgetAnchorFirst() throws {
        let driver = try Driver(multiSettings())
        defer { driver.remove() }
        try driver.start()
        try driver.ready("w1", slots: 1)
        var rounds = 0
        while !driver.finished && rounds < 100 {
            rounds += 1
            try completeAll(driver, "w1")
        }
        #expect(driver.finished)
        // bambo's warm start first (its corners are trials 1 and 2), then the smallest share of budget
        // goes next: grid 0/5, grid 2/5 < bambo 3/5, bambo 3/5 < grid 4/5, grid.
        #expect(driver.proposedStrategies == [.bambo, .grid, .grid, .bambo, .grid])
        #expect(driver.proposals.map(\.count) == [3, 2, 2, 2, 1])
        #expect(driver.proposals.map(\.warmStart) == [true, false, false, false, false])
        #expect(driver.tasks(to: "w1").prefix(2) == [AttemptRef(trial: 1, attempt: 1), AttemptRef(trial: 2, attempt: 1)])
        let byStrategy = Dictionary(grouping: try driver.archive.trials(), by: \.strategy).mapValues(\.count)
        #expect(byStrategy == ["bambo": 5, "grid": 5])
        #expect(try driver.archive.counts() == TrialCounts(completed: 10))
    }

    @Test func aRestartContinuesEachStrategyAtItsOwnCount() throws {
        let first = try Driver(multiSettings())
        defer { first.remove() }
        try first.start()
        try first.ready("w1", slots: 1)
        // Until the first grid batch is created (bambo 3, grid 2).
        for _ in 0..<20 where first.proposedStrategies.count < 2 { try completeAll(first, "w1") }
        try first.archive.close()
        // The coordinator restarts on the same archive; w1 comes back without its attempt (requeued).
        let second = try Driver(multiSettings(), archiveDirectory: first.directory)
        try second.start()
        #expect(second.core.trialCount(of: .bambo) == 3 && second.core.trialCount(of: .grid) == 2)
        try second.ready("w1", slots: 1, active: [])
        var rounds = 0
        while !second.finished && rounds < 100 {
            rounds += 1
            try completeAll(second, "w1")
        }
        #expect(second.finished)
        let byStrategy = Dictionary(grouping: try second.archive.trials(), by: \.strategy).mapValues(\.count)
        #expect(byStrategy == ["bambo": 5, "grid": 5])
        #expect(second.proposedStrategies == [.grid, .bambo, .grid])
    }
}
