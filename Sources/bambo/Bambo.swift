import ArgumentParser

/// `bambo`: the command-line entry point. Each subcommand lives in its own file and only parses
/// arguments and wires library targets together; the work is done in the libraries.
@main
struct Bambo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bambo",
        abstract: "Build the Pareto set of merged LLMs (accuracy vs. output tokens) by block-wise Bayesian optimization.",
        discussion: """
        Typical flow:
          bambo synthesize --out models                    # a model family to try
          bambo profile   --model A --model B              # differences per layer
          bambo partition --model A --model B --blocks 6 --out p.json # blocks
          bambo merge --model A --model B --partition p.json \\
              --weights 0,0.2,0.5,0.7,0.9,1,1,1 --out merged  # block-wise merge

        Run `bambo help <subcommand>` for the details of each step.
        """,
        version: BamboVersion.string,
        subcommands: [
            SynthesizeCommand.self,
            ProfileCommand.self,
            PartitionCommand.self,
            MergeCommand.self,
            EvalCommand.self,
            GradeCommand.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            LogCommand.self,
            StatusCommand.self,
            ExportCommand.self,
            SelectCommand.self,
            MaterializeCommand.self,
            DemoCommand.self,
            KeygenCommand.self,
            AskTellCommand.self,
            BenchCommand.self,
        ]
    )
}

enum BamboVersion {
    static let string = "0.1.0"
}
