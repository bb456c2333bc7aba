import Foundation
import Optimization

/// Proposes decision vectors x ∈ [0, 1]^D for new trials. The coordinator calls it whenever a worker
/// has a free slot and no trial is waiting, with every result known so far and the trials still out
/// on workers, and adds the points it returns as one batch of trials.
public protocol Proposer {
    /// The label stored as the trials' origin (`sobol`, `qehvi`, …).
    var origin: String { get }
    /// `count` new points. `observed`: decision vectors with their normalized objectives (maximized);
    /// `pending`: decision vectors dispatched but not finished (for fantasies / diversity).
    mutating func propose(count: Int, observed: [(x: [Double], y: [Double])], pending: [[Double]]) throws -> [[Double]]
    /// True when a proposal takes no noticeable time and needs no observations (the coordinator then
    /// proposes inline instead of on its background thread, so no free worker waits for a hand-off).
    var isInstant: Bool { get }
}

extension Proposer {
    public var isInstant: Bool { false }
}

/// Scrambled Sobol points, ignoring what was observed: the warm start's fill and a baseline proposer.
public struct SobolProposer: Proposer {
    public var origin: String { "sobol" }
    public var isInstant: Bool { true }
    private var sequence: SobolSequence

    /// - Parameter skip: points already drawn in earlier runs of the same study (so a resumed study
    ///   continues the sequence instead of repeating it).
    public init(dimension: Int, seed: UInt64, skip: Int = 0) throws {
        sequence = try SobolSequence(dimension: dimension, scramble: true, seed: seed)
        if skip > 0 { try sequence.fastForward(skip) }
    }

    public mutating func propose(count: Int, observed: [(x: [Double], y: [Double])], pending: [[Double]]) throws -> [[Double]] {
        try sequence.draw(count)
    }
}

/// The warm start of paper §3.3: the two model corners, the balanced fusion, then Sobol points.
public enum WarmStart {
    /// The hand-picked points, in order: x = 0 (the first model), x = 1 (the second), x = ½.
    public static func anchors(dimension: Int) -> [[Double]] {
        [Array(repeating: 0, count: dimension), Array(repeating: 1, count: dimension), Array(repeating: 0.5, count: dimension)]
    }

    /// The first `count` warm-start points: the anchors (as many as fit), then `fill` for the rest.
    public static func points(count: Int, dimension: Int, fill: inout some Proposer) throws -> (anchors: [[Double]], sobol: [[Double]]) {
        let anchors = Array(self.anchors(dimension: dimension).prefix(count))
        let rest = count - anchors.count
        let sobol = rest > 0 ? try fill.propose(count: rest, observed: [], pending: anchors) : []
        return (anchors, sobol)
    }
}

/// Model-based proposals (paper §3.4, Appendix B–C): one GP per objective fitted to every scored trial,
/// then qEHVI or qNEHVI with the trials still out on workers as pending points.
///
/// Refitted from all observations at each call, because normalized objectives (Eq. 2) can change when
/// the corner trials complete. Until two trials are scored it continues the Sobol sequence instead.
public struct BayesianProposer: Proposer {
    /// The origin of the last proposal: the acquisition, or `sobol` while falling back.
    public private(set) var origin: String
    private let strategy: ProposalStrategy
    private let dimension: Int
    private let seed: UInt64
    private var fallback: SobolProposer
    private var steps = 0

    /// - Parameters:
    ///   - strategy: `.qehvi`, `.qnehvi`, `.qlogehvi` or `.qlognehvi`.
    ///   - fallback: the Sobol sequence to continue while too few trials are scored.
    public init(strategy: ProposalStrategy, dimension: Int, seed: UInt64, fallback: SobolProposer) {
        self.strategy = strategy
        self.dimension = dimension
        self.seed = seed
        self.fallback = fallback
        self.origin = strategy.rawValue
    }

    public mutating func propose(count: Int, observed: [(x: [Double], y: [Double])], pending: [[Double]]) throws -> [[Double]] {
        guard observed.count >= 2, let objectives = observed.first?.y.count, objectives >= 1 else {
            origin = fallback.origin
            return try fallback.propose(count: count, observed: observed, pending: pending)
        }
        origin = strategy.rawValue
        steps += 1
        var optimizer = try MultiObjectiveOptimizer(MultiObjectiveOptimizerConfiguration(
            dimension: dimension, objectives: objectives, initialDesignSize: 2, strategy: strategy,
            seed: seed &+ UInt64(observed.count) &* 0x9E37_79B9 &+ UInt64(steps)))
        try optimizer.tell(x: observed.map(\.x), y: observed.map(\.y))
        return try optimizer.ask(q: count, pending: pending)
    }
}
