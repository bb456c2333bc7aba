import BamboProtocol
import Foundation
import Merging
import SafeTensors

/// `TrialMerger` over the streaming merge engine (`MergeEngine`): TASK fields map to a
/// `MergeRequest` (blocks from `partition.blocks`, β per block from `weights`, method, dtype,
/// params and seed from `merge`, `base` when given). A numeric param may be a list with one value
/// per block, like `weights`.
public struct EngineMerger: TrialMerger {
    /// Merge threads (the output does not depend on it).
    public var threads: Int
    /// Largest shard written, in bytes.
    public var shardMaxBytes: Int

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, shardMaxBytes: Int = 5_000_000_000) {
        self.threads = threads
        self.shardMaxBytes = shardMaxBytes
    }

    /// The engine request for `task`, or `BAD_TASK` naming the field.
    public func request(for task: TaskBody, output: URL) throws(AttemptFailure) -> MergeRequest {
        func bad(_ reason: String) -> AttemptFailure { AttemptFailure(code: .badTask, reason: reason) }
        let fm = FileManager.default
        var models: [URL] = []
        for (index, model) in task.models.enumerated() {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: model.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw bad("models[\(index)].path: no model directory at \(model.path) on this worker")
            }
            models.append(URL(fileURLWithPath: model.path))
        }
        var base: URL?
        if let ref = task.base {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: ref.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw bad("base.path: no model directory at \(ref.path) on this worker")
            }
            base = URL(fileURLWithPath: ref.path)
        }
        guard let method = MergeMethod(rawValue: task.merge.method) else {
            throw bad("merge.method: unknown method \"\(task.merge.method)\"; expected one of \(MergeMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var parameters = MergeParameters()
        for (name, value) in task.merge.params.sorted(by: { $0.key < $1.key }) {
            do {
                switch value {
                case .number(let number): try parameters.set(name, to: String(number))
                case .bool(let flag): try parameters.set(name, to: String(flag))
                case .string(let string): try parameters.set(name, to: string)
                case .array(let items):
                    // One value per block: embedding, B1…BK, head.
                    let values = try items.enumerated().map { index, item throws(AttemptFailure) -> Double in
                        guard case .number(let number) = item else { throw bad("merge.params.\(name)[\(index)]: expected a number") }
                        return number
                    }
                    try parameters.set(name, to: .perBlock(values))
                default:
                    throw bad("merge.params.\(name): expected a number, a list of numbers (one per block) or a boolean")
                }
            } catch let failure as AttemptFailure {
                throw failure
            } catch {
                throw bad("merge.params.\(name): \(error)")
            }
        }
        let dtype: DType = switch task.merge.dtype {
        case .bfloat16: .bf16
        case .float16: .f16
        case .float32: .f32
        }
        return MergeRequest(
            models: models, base: base, blocks: task.partition.blocks.map { $0[0]...$0[1] },
            weights: BlockWeights(betas: task.weights), method: method, parameters: parameters,
            outputDType: dtype, seed: UInt64(task.merge.seed), output: output,
            shardMaxBytes: shardMaxBytes, threads: max(1, threads), durable: false)
    }

    public func merge(
        _ task: TaskBody, output: URL, cancellation: MergeCancellation, progress: @escaping @Sendable (Int64, Int64) -> Void
    ) throws(AttemptFailure) {
        let request = try request(for: task, output: output)
        let twoPasses = request.method.needsTensorStatistics
        do {
            _ = try MergeEngine.merge(request, cancellation: cancellation) { step in
                // Methods with a statistics pass read everything twice: report both passes as one.
                guard twoPasses else { return progress(step.bytesDone, step.bytesTotal) }
                let offset = step.phase == .statistics ? 0 : step.bytesTotal
                progress(offset + step.bytesDone, 2 * step.bytesTotal)
            }
        } catch let error as MergeError {
            switch error.kind {
            case .cancelled:
                throw AttemptFailure(code: .cancelled, reason: "merge: \(error)")
            case .writeFailed(_, let reason):
                let full = reason.contains("No space left") || reason.contains("ENOSPC") || reason.contains("Disk quota")
                throw AttemptFailure(code: full ? .resource : .mergeFailed, reason: "merge: \(error)")
            default:
                throw AttemptFailure(code: .badTask, reason: "merge: \(error)")
            }
        } catch {
            throw AttemptFailure(code: .mergeFailed, reason: "merge: \(error)")
        }
    }
}
