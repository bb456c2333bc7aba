import ArgumentParser

/// `bambo bench …`: benchmarks, each measuring its own baseline in the same run.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, each against a baseline measured in the same run.",
        subcommands: [
            BenchMergeCommand.self,
            BenchCoordinatorCommand.self,
            BenchOptimizerCommand.self,
        ])
}
