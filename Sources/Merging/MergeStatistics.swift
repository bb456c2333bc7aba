import Foundation
import SafeTensors

/// Exact order statistics of task-vector magnitudes |M_i − base| for one tensor, in bounded memory.
///
/// Tensors of at most ``sortLimit`` elements are sorted. Larger ones use a two-pass radix
/// selection on the magnitude's bit pattern (monotone for non-negative floats): pass 1 counts the
/// high 16 bits of every key, which locates the bucket holding each wanted rank; pass 2 counts the
/// low 16 bits inside those buckets, which gives the exact key. Both passes stream the tensor in
/// chunks on all cores with one 32,768- or 65,536-entry histogram per model per running chunk, so
/// memory is O(threads × models × 256 KiB) whatever the tensor size, and the counts (integers) do
/// not depend on the schedule.
enum MagnitudeStatistics {
    static let sortLimit = 1 << 16

    /// The keep window of every model for `tensor`.
    static func windows(
        tensor: PlannedTensor, source: MergeSource, method: MergeMethod, parameters: ResolvedMergeParameters,
        chunkElements: Int, threads: Int, cancellation: MergeCancellation? = nil
    ) throws -> [MagnitudeWindow] {
        let n = tensor.elementCount
        let models = source.models.count
        guard let sparsification = method.sparsification, method.needsTensorStatistics else {
            return Array(repeating: .all, count: models)
        }
        let ranks = MagnitudeWindow.ranksNeeded(for: sparsification, elements: n, density: parameters.density, gamma: parameters.gamma)
        if ranks.isEmpty {
            let w = MagnitudeWindow.window(for: sparsification, elements: n, density: parameters.density, gamma: parameters.gamma) { _ in 0 }
            return Array(repeating: w, count: models)
        }
        let keysAtRanks: [[UInt32]]  // [model][rank index]
        if n <= sortLimit {
            keysAtRanks = try sortedKeys(tensor: tensor, source: source, ranks: ranks)
        } else {
            keysAtRanks = try radixSelect(
                tensor: tensor, source: source, ranks: ranks, chunkElements: chunkElements, threads: threads, cancellation: cancellation)
        }
        return (0..<models).map { i in
            MagnitudeWindow.window(for: sparsification, elements: n, density: parameters.density, gamma: parameters.gamma) { r in
                keysAtRanks[i][ranks.firstIndex(of: r)!]
            }
        }
    }

    private static func sortedKeys(tensor: PlannedTensor, source: MergeSource, ranks: [Int]) throws -> [[UInt32]] {
        let n = tensor.elementCount
        let buffers = try source.decode(tensor: tensor.name, elements: 0..<n)
        return (0..<source.models.count).map { i in
            var keys = (0..<n).map { MagnitudeWindow.key(buffers.models[i][$0] - buffers.base![$0]) }
            keys.sort()
            return ranks.map { keys[$0] }
        }
    }

    private static func radixSelect(
        tensor: PlannedTensor, source: MergeSource, ranks: [Int], chunkElements: Int, threads: Int, cancellation: MergeCancellation?
    ) throws -> [[UInt32]] {
        let n = tensor.elementCount
        let models = source.models.count
        let chunks = stride(from: 0, to: n, by: chunkElements).map { $0..<min(n, $0 + chunkElements) }

        // Pass 1: high 16 bits (the sign bit is clear, so 32,768 buckets).
        let high = try histogram(models: models, buckets: 1 << 15, chunks: chunks, tensor: tensor, source: source, threads: threads, cancellation: cancellation) { _, key in
            Int(key >> 16)
        }
        var bucketOfRank = [[Int]](repeating: [], count: models)
        var before = [[Int]](repeating: [], count: models)  // elements in lower buckets
        for i in 0..<models {
            for r in ranks {
                var cumulative = 0
                var bucket = 0
                while cumulative + high[i][bucket] <= r { cumulative += high[i][bucket]; bucket += 1 }
                bucketOfRank[i].append(bucket)
                before[i].append(cumulative)
            }
        }
        // Pass 2: low 16 bits inside the wanted buckets (at most one histogram per rank).
        let slots = ranks.count
        let wanted = bucketOfRank
        let low = try histogram(models: models, buckets: slots << 16, chunks: chunks, tensor: tensor, source: source, threads: threads, cancellation: cancellation) { i, key in
            let h = Int(key >> 16)
            for s in 0..<slots where wanted[i][s] == h { return s << 16 | Int(key & 0xFFFF) }
            return -1
        }
        return (0..<models).map { i in
            (0..<slots).map { s in
                var cumulative = before[i][s]
                var l = 0
                let slot = bucketOfRank[i].firstIndex(of: bucketOfRank[i][s])!  // ranks sharing a bucket share its counts
                while cumulative + low[i][slot << 16 | l] <= ranks[s] { cumulative += low[i][slot << 16 | l]; l += 1 }
                return UInt32(bucketOfRank[i][s] << 16 | l)
            }
        }
    }

    /// Counts, per model, `bucket(model, key)` over all elements (negative buckets are skipped).
    private static func histogram(
        models: Int, buckets: Int, chunks: [Range<Int>], tensor: PlannedTensor, source: MergeSource, threads: Int,
        cancellation: MergeCancellation?, bucket: @escaping @Sendable (Int, UInt32) -> Int
    ) throws -> [[Int]] {
        let total = SharedCounts(models: models, buckets: buckets)
        try parallelFor(count: chunks.count, threads: threads) { c in
            try cancellation?.check()  // a large tensor's passes stop between chunks too
            let range = chunks[c]
            var local = [[UInt32]](repeating: [UInt32](repeating: 0, count: buckets), count: models)
            for start in stride(from: range.lowerBound, to: range.upperBound, by: subBlockElements) {
                let sub = start..<min(range.upperBound, start + subBlockElements)
                let buffers = try source.decode(tensor: tensor.name, elements: sub)
                for i in 0..<models {
                    let m = buffers.models[i], b = buffers.base!
                    local[i].withUnsafeMutableBufferPointer { h in
                        for j in 0..<sub.count {
                            let k = bucket(i, MagnitudeWindow.key(m[j] - b[j]))
                            if k >= 0 { h[k] &+= 1 }
                        }
                    }
                }
            }
            source.release(tensor: tensor.name, elements: range)
            total.add(local)
        }
        return total.counts
    }
}

/// Elements decoded at a time inside a chunk (keeps the working set in cache).
let subBlockElements = 1 << 14

/// Histogram totals shared by parallel chunks.
private final class SharedCounts: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    var counts: [[Int]]
    init(models: Int, buckets: Int) { counts = Array(repeating: Array(repeating: 0, count: buckets), count: models) }
    func add(_ local: [[UInt32]]) {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<local.count {
            for (k, v) in local[i].enumerated() where v != 0 { counts[i][k] += Int(v) }
        }
    }
}

/// Runs `body(0..<count)` on `threads` threads; the first error stops the rest and is rethrown.
func parallelFor(count: Int, threads: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    guard count > 0 else { return }
    let next = SharedIndex()
    let failures = FirstError()
    DispatchQueue.concurrentPerform(iterations: max(1, min(threads, count))) { _ in
        while !failures.hasError, let i = next.take(below: count) {
            do { try body(i) } catch { failures.record(error) }
        }
    }
    if let error = failures.error { throw error }
}

/// A counter handed out under a lock.
final class SharedIndex: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value = 0
    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
