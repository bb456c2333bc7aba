import Foundation
import SafeTensors

/// The p-norm of paper Eq. 4.
public enum DifferenceNorm: String, Codable, Sendable, CaseIterable {
    case l1, l2
}

/// Layer-difference profile of a family of models (paper Eq. 4).
public struct LayerProfile: Codable, Sendable, Equatable {
    /// d_l for each decoder layer, layer 0 first.
    public var layerDifferences: [Double]
    /// The same quantity over the embedding tensors (0 when there are none).
    public var embeddingDifference: Double
    /// The same quantity over the final norm and `lm_head` (0 when there are none).
    public var headDifference: Double
    public var norm: DifferenceNorm

    public init(layerDifferences: [Double], embeddingDifference: Double, headDifference: Double, norm: DifferenceNorm) {
        self.layerDifferences = layerDifferences
        self.embeddingDifference = embeddingDifference
        self.headDifference = headDifference
        self.norm = norm
    }
}

/// Progress of a long read: bytes of tensor data processed so far, of the total.
public struct ProfileProgress: Sendable, Equatable {
    public var bytesDone: Int64
    public var bytesTotal: Int64

    public init(bytesDone: Int64, bytesTotal: Int64) {
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
    }
}

/// Why a set of models cannot be profiled or merged together.
public struct ModelFamilyError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Fewer than two models.
        case tooFewModels(Int)
        /// Tensor names, shapes or dtypes differ; each line describes one difference (the first few).
        case mismatch([String])
        /// A tensor whose dtype cannot be read as Float.
        case notFloat(tensor: String, dtype: DType)
        /// The difference of a group is NaN or infinite (NaN/Inf weights, or overflow).
        case nonFinite(group: LayerGroup)
    }

    public var kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    public var description: String {
        switch kind {
        case let .tooFewModels(n):
            return "expected at least 2 models to compare, got \(n)"
        case let .mismatch(lines):
            return "the models do not have the same tensors (names, shapes, dtypes must match):\n  " + lines.joined(separator: "\n  ")
        case let .notFloat(tensor, dtype):
            return "tensor \"\(tensor)\" has dtype \(dtype.rawValue); expected BF16, F16 or F32"
        case let .nonFinite(group):
            return "the difference of the \(group) is not finite; expected finite weights (a model has NaN or Inf values there)"
        }
    }
}

/// Computes d_l = Σ_i ‖TV_l^(i) − mean_i TV_l‖_p (paper Eq. 4) for every decoder layer, the
/// embedding and the head, where a group's parameters (all its tensors) form one flattened vector.
///
/// With a base, TV^(i) = M_i − base; without one, TV^(i) = M_i. Because
/// TV^(i) − mean_j TV^(j) = (M_i − base) − (mean_j M_j − base) = M_i − mean_j M_j, the base cancels
/// exactly: it changes nothing in the result and its data is not read. A given base is still
/// opened and validated (same tensor names and shapes as the models) so a wrong directory is caught.
///
/// Streaming and parallel: tensors are cut into chunks of at most ``profileChunkElements`` elements;
/// chunks run on all cores, each keeping per-model `Double` partial sums (Σ|x_i − x̄| or
/// Σ(x_i − x̄)²), combined in a fixed order, so the result does not depend on the number of cores.
/// Memory stays at a few chunks per core: the checkpoints are memory-mapped and the pages of each
/// chunk are released once read.
///
/// - Parameters:
///   - models: N ≥ 2 model directories (sharded or single-file safetensors, plus `config.json`)
///     with identical tensor names, shapes and dtypes (BF16, F16 or F32).
///   - base: optional base model directory (validated, see above).
///   - norm: p = 1 or p = 2.
///   - patterns: tensor-name patterns and config keys for the layer map.
///   - progress: called (from worker threads, serialized) with bytes of model data processed.
public func profileLayerDifferences(
    models: [URL], base: URL?, norm: DifferenceNorm,
    patterns: LayerPatterns = .standard,
    progress: (@Sendable (ProfileProgress) -> Void)? = nil
) throws -> LayerProfile {
    guard models.count >= 2 else { throw ModelFamilyError(.tooFewModels(models.count)) }
    let checkpoints = try models.map { try Checkpoint(directory: $0) }
    if let base {
        let baseCheckpoint = try Checkpoint(directory: base)
        try checkSameTensors([checkpoints[0], baseCheckpoint], compareDTypes: false)
    }
    let layerMap = try LayerMap(checkpoint: checkpoints[0], patterns: patterns)
    return try profileLayerDifferences(checkpoints: checkpoints, layerMap: layerMap, norm: norm, progress: progress)
}

/// Elements per work chunk of the profile.
public let profileChunkElements = 1 << 18

/// Eq. 4 over already opened checkpoints (see the URL-taking overload), with a given layer map.
/// `chunkElements` sets the work-chunk size (results do not depend on it beyond rounding).
public func profileLayerDifferences(
    checkpoints: [Checkpoint], layerMap: LayerMap, norm: DifferenceNorm,
    chunkElements: Int = profileChunkElements,
    progress: (@Sendable (ProfileProgress) -> Void)? = nil
) throws -> LayerProfile {
    let chunkElements = max(1, chunkElements)
    guard checkpoints.count >= 2 else { throw ModelFamilyError(.tooFewModels(checkpoints.count)) }
    try checkSameTensors(checkpoints, compareDTypes: true)
    let first = checkpoints[0]
    for t in first.tensors where !t.dtype.isFloatConvertible {
        throw ModelFamilyError(.notFloat(tensor: t.name, dtype: t.dtype))
    }
    let unmapped = first.tensors.map(\.name).filter { layerMap.groups[$0] == nil }
    let unknown = layerMap.groups.keys.filter { (try? first.tensor($0)) == nil }.sorted()
    if !unmapped.isEmpty || !unknown.isEmpty {
        throw ModelFamilyError(.mismatch(Array((unmapped.map { "\"\($0)\" is not in the layer map" }
            + unknown.map { "the layer map names \"\($0)\", which \(first.directory.path) lacks" }).prefix(5))))
    }
    // Groups in order: embedding, layers, head; slot index per group.
    let grouped = layerMap.tensorsByGroup
    var work: [(tensor: CheckpointTensor, slot: Int, elements: Range<Int>)] = []
    for (slot, entry) in grouped.enumerated() {
        for name in entry.tensors {
            let t = try first.tensor(name)
            for start in stride(from: 0, to: t.elementCount, by: chunkElements) {
                work.append((t, slot, start..<min(t.elementCount, start + chunkElements)))
            }
        }
    }
    let chunks = work
    let n = checkpoints.count
    let total = Int64(n) * first.totalBytes
    let reporter = ProgressReporter(total: total, callback: progress)
    let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(1, work.count * n))
    defer { partials.deallocate() }
    partials.initialize(repeating: 0)
    let failures = FirstError()
    nonisolated(unsafe) let partialSums = partials

    // One reusable scratch buffer per worker: chunkElements values of each model.
    let workers = workerCount(for: chunks.count)
    let longestChunk = chunks.map(\.elements.count).max() ?? 0
    let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, workers * longestChunk * n))
    defer { scratch.deallocate() }
    nonisolated(unsafe) let scratchBuffers = scratch

    parallelForEach(count: chunks.count) { index, worker in
        guard !failures.hasError else { return }
        let item = chunks[index]
        let count = item.elements.count
        let values = UnsafeMutableBufferPointer(rebasing: scratchBuffers[(worker * longestChunk * n)..<(worker * longestChunk * n + count * n)])
        do {
            for (i, checkpoint) in checkpoints.enumerated() {
                try checkpoint.readFloats(of: item.tensor.name, elements: item.elements,
                                          into: UnsafeMutableBufferPointer(rebasing: values[(i * count)..<((i + 1) * count)]))
                checkpoint.advise(item.tensor.name, elements: item.elements, willNeed: false)
            }
        } catch {
            failures.record(error)
            return
        }
        let sums = UnsafeMutableBufferPointer(rebasing: partialSums[(index * n)..<((index + 1) * n)])
        accumulateDeviations(values: UnsafeBufferPointer(values), models: n, count: count, norm: norm, into: sums)
        reporter.add(Int64(count * item.tensor.dtype.byteSize * n))
    }
    if let error = failures.error { throw error }

    // Combine in work order (fixed), then the norm per model, then the sum over models.
    var groupSums = [[Double]](repeating: [Double](repeating: 0, count: n), count: grouped.count)
    for (index, item) in work.enumerated() {
        for i in 0..<n { groupSums[item.slot][i] += partials[index * n + i] }
    }
    func difference(_ sums: [Double]) -> Double {
        switch norm {
        case .l1: sums.reduce(0, +)
        case .l2: sums.reduce(0) { $0 + $1.squareRoot() }
        }
    }
    var profile = LayerProfile(layerDifferences: [Double](repeating: 0, count: layerMap.layerCount),
                               embeddingDifference: 0, headDifference: 0, norm: norm)
    for (slot, entry) in grouped.enumerated() {
        let d = difference(groupSums[slot])
        guard d.isFinite else { throw ModelFamilyError(.nonFinite(group: entry.group)) }
        switch entry.group {
        case .embedding: profile.embeddingDifference = d
        case let .layer(l): profile.layerDifferences[l] = d
        case .head: profile.headDifference = d
        }
    }
    return profile
}

/// For element j of `count`, with x_i = values[i·count + j] and x̄ = mean_i x_i, adds |x_i − x̄|
/// (l1) or (x_i − x̄)² (l2) to `sums[i]`, in Double.
func accumulateDeviations(values: UnsafeBufferPointer<Float>, models n: Int, count: Int, norm: DifferenceNorm, into sums: UnsafeMutableBufferPointer<Double>) {
    let inverseN = 1.0 / Double(n)
    if n == 2 {
        // Two models: x_1 − x̄ = (x_1 − x_2)/2 = −(x_2 − x̄).
        var total = 0.0
        let a = values.baseAddress!, b = a + count
        switch norm {
        case .l1: for j in 0..<count { total += abs(Double(a[j]) - Double(b[j])) }
            sums[0] += total * 0.5
            sums[1] += total * 0.5
        case .l2: for j in 0..<count { let d = Double(a[j]) - Double(b[j]); total += d * d }
            sums[0] += total * 0.25
            sums[1] += total * 0.25
        }
        return
    }
    var local = [Double](repeating: 0, count: n)
    local.withUnsafeMutableBufferPointer { acc in
        for j in 0..<count {
            var mean = 0.0
            for i in 0..<n { mean += Double(values[i &* count &+ j]) }
            mean *= inverseN
            switch norm {
            case .l1: for i in 0..<n { acc[i] += abs(Double(values[i &* count &+ j]) - mean) }
            case .l2: for i in 0..<n { let d = Double(values[i &* count &+ j]) - mean; acc[i] += d * d }
            }
        }
    }
    for i in 0..<n { sums[i] += local[i] }
}

/// Checks that every checkpoint has the tensors of the first, with equal shapes (and dtypes when
/// asked). Lists up to five differences.
func checkSameTensors(_ checkpoints: [Checkpoint], compareDTypes: Bool) throws {
    let reference = checkpoints[0]
    var problems: [String] = []
    let referenceNames = Set(reference.tensors.map(\.name))
    for other in checkpoints.dropFirst() {
        let a = reference.directory.path, b = other.directory.path
        for t in reference.tensors {
            guard let u = try? other.tensor(t.name) else {
                problems.append("\"\(t.name)\" is in \(a) but not in \(b)")
                continue
            }
            if u.shape != t.shape { problems.append("\"\(t.name)\" has shape \(t.shape) in \(a) but \(u.shape) in \(b)") }
            if compareDTypes, u.dtype != t.dtype { problems.append("\"\(t.name)\" is \(t.dtype.rawValue) in \(a) but \(u.dtype.rawValue) in \(b)") }
        }
        for u in other.tensors where !referenceNames.contains(u.name) {
            problems.append("\"\(u.name)\" is in \(b) but not in \(a)")
        }
    }
    if !problems.isEmpty {
        let shown = Array(problems.prefix(5)) + (problems.count > 5 ? ["… and \(problems.count - 5) more"] : [])
        throw ModelFamilyError(.mismatch(shown))
    }
}

/// Serializes progress callbacks from worker threads.
final class ProgressReporter: @unchecked Sendable {  // state guarded by `lock`
    private let lock = NSLock()
    private var done: Int64 = 0
    private let total: Int64
    private let callback: (@Sendable (ProfileProgress) -> Void)?

    init(total: Int64, callback: (@Sendable (ProfileProgress) -> Void)?) {
        self.total = total
        self.callback = callback
    }

    func add(_ bytes: Int64) {
        guard let callback else { return }
        lock.lock()
        defer { lock.unlock() }
        done += bytes
        callback(ProfileProgress(bytesDone: done, bytesTotal: total))
    }
}

/// Keeps the first error thrown by parallel work.
final class FirstError: @unchecked Sendable {  // state guarded by `lock`
    private let lock = NSLock()
    private var stored: (any Error)?

    func record(_ error: any Error) {
        lock.lock()
        if stored == nil { stored = error }
        lock.unlock()
    }

    var error: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    var hasError: Bool { error != nil }
}
