/// What a study report shows, as plain values (no archive, no files): the caller reads the archive.
public struct ReportInput: Sendable, Equatable {
    /// The study's name.
    public var study: String
    /// Objective names in order (f1, f2, …); the objective-space plot uses the first two.
    public var objectiveNames: [String]
    /// One line per objective saying how it is built (e.g. "accuracy, expert thinking, base instruct").
    public var objectiveNotes: [String]
    /// Every completed trial.
    public var trials: [ReportTrial]
    /// The stored partition, when there is one.
    public var partition: ReportPartition?
    /// The hypervolume's reference point, one value per objective.
    public var referencePoint: [Double]

    public init(
        study: String, objectiveNames: [String], objectiveNotes: [String] = [], trials: [ReportTrial],
        partition: ReportPartition? = nil, referencePoint: [Double]
    ) {
        self.study = study
        self.objectiveNames = objectiveNames
        self.objectiveNotes = objectiveNotes
        self.trials = trials
        self.partition = partition
        self.referencePoint = referencePoint
    }

    /// Benchmark names over all trials, sorted.
    public var benchmarks: [String] { Set(trials.flatMap { $0.benchmarks.keys }).sorted() }

    /// Strategy names in display order: `bambo` first, then the others sorted.
    public var strategies: [String] {
        Set(trials.map(\.strategy)).sorted { a, b in a == "bambo" ? b != "bambo" : (b == "bambo" ? false : a < b) }
    }
}

/// One completed trial.
public struct ReportTrial: Sendable, Equatable {
    public var id: Int64
    /// The search configuration that produced it (`bambo`, `grid`, `layerwise`, …).
    public var strategy: String
    /// The merge method, when known.
    public var method: String?
    /// Block weights x: embedding, B1…BK, head.
    public var weights: [Double]
    /// Raw metrics per benchmark.
    public var benchmarks: [String: BenchmarkScore]
    /// Normalized objectives in `ReportInput.objectiveNames` order; nil until the anchors are done.
    public var objectives: [Double]?
    /// Whether it is on the Pareto front of all trials.
    public var pareto: Bool

    public init(
        id: Int64, strategy: String, method: String?, weights: [Double], benchmarks: [String: BenchmarkScore],
        objectives: [Double]?, pareto: Bool
    ) {
        self.id = id
        self.strategy = strategy
        self.method = method
        self.weights = weights
        self.benchmarks = benchmarks
        self.objectives = objectives
        self.pareto = pareto
    }
}

/// Accuracy and mean output tokens on one benchmark.
public struct BenchmarkScore: Sendable, Equatable {
    public var accuracy: Double
    public var tokens: Double
    public init(accuracy: Double, tokens: Double) {
        self.accuracy = accuracy
        self.tokens = tokens
    }
}

/// The partition as stored: per-layer differences and the blocks.
public struct ReportPartition: Sendable, Equatable {
    /// d_l per transformer layer (empty when only the blocks are known).
    public var layerDifferences: [Double]
    /// K pairs [first, last] of 0-based layers, inclusive.
    public var blocks: [[Int]]
    /// The norm of the differences (`l1`, `l2`), for the axis label.
    public var norm: String
    public var embeddingDifference: Double?
    public var headDifference: Double?

    public init(layerDifferences: [Double], blocks: [[Int]], norm: String, embeddingDifference: Double? = nil, headDifference: Double? = nil) {
        self.layerDifferences = layerDifferences
        self.blocks = blocks
        self.norm = norm
        self.embeddingDifference = embeddingDifference
        self.headDifference = headDifference
    }
}
