import Foundation
import SafeTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One block-wise merge: inputs, partition, weights, method and where to write.
public struct MergeRequest: Sendable {
    /// N model directories (Hugging Face layout), in the order the block weights refer to.
    public var models: [URL]
    /// The base model, required by every method but `linear`.
    public var base: URL?
    /// The K layer blocks, 0-based inclusive, covering layers 0…L−1 in order.
    public var blocks: [ClosedRange<Int>]
    /// K + 2 weight vectors: embedding, B_1…B_K, head.
    public var weights: BlockWeights
    public var method: MergeMethod
    /// The method's parameters; numeric ones may hold one value per block (K + 2, like `weights`).
    public var parameters: MergeParameters
    /// Output dtype of float tensors (BF16, F16 or F32); `nil` keeps each tensor's input dtype.
    public var outputDType: DType?
    /// Seed of DARE/DELLA's random streams.
    public var seed: UInt64
    /// The output directory; must not exist unless `replaceExisting`.
    public var output: URL
    /// Maximum bytes of tensor data per output shard.
    public var shardMaxBytes: Int
    /// Worker threads (the result does not depend on it).
    public var threads: Int
    /// Elements per work chunk (the result does not depend on it).
    public var chunkElements: Int
    /// fsync every output file and the directories before and after the final rename.
    public var durable: Bool
    /// Replace an existing output directory (atomically swapped in at the end).
    public var replaceExisting: Bool
    /// Tensor-name patterns of the layer map; tensors matching none follow the embedding block.
    public var patterns: LayerPatterns
    /// How the merge pass reads its inputs (the result does not depend on it).
    public var inputAccess: InputAccess

    /// Reading inputs: through the memory maps (no copy; each chunk's pages are dropped from the
    /// resident set once merged), or with `pread` into per-thread buffers (one copy, the smallest
    /// resident set). Measured on 2 × 4 GB bf16 (2 cores): mmap 2.6–2.9 s of CPU and a peak RSS
    /// of ~230 MB, pread 3.0–3.3 s of CPU and ~35 MB.
    public enum InputAccess: String, Sendable, CaseIterable { case mmap, pread }

    public init(
        models: [URL], base: URL? = nil, blocks: [ClosedRange<Int>], weights: BlockWeights,
        method: MergeMethod = .linear, parameters: MergeParameters = MergeParameters(),
        outputDType: DType? = nil, seed: UInt64 = 0, output: URL,
        shardMaxBytes: Int = 5_000_000_000, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        chunkElements: Int = 1 << 20, durable: Bool = true, replaceExisting: Bool = false,
        patterns: LayerPatterns = .standard, inputAccess: InputAccess = .mmap
    ) {
        self.models = models
        self.base = base
        self.blocks = blocks
        self.weights = weights
        self.method = method
        self.parameters = parameters
        self.outputDType = outputDType
        self.seed = seed
        self.output = output
        self.shardMaxBytes = shardMaxBytes
        self.threads = threads
        self.chunkElements = chunkElements
        self.durable = durable
        self.replaceExisting = replaceExisting
        self.patterns = patterns
        self.inputAccess = inputAccess
    }
}

/// Progress of a merge: bytes of input data processed in the current phase.
public struct MergeProgress: Sendable, Equatable {
    public enum Phase: String, Sendable { case statistics, merging }
    public var phase: Phase
    public var bytesDone: Int64
    public var bytesTotal: Int64
}

/// What a finished merge wrote.
public struct MergeSummary: Sendable {
    public var output: URL
    /// Shard file names, in order.
    public var shards: [String]
    public var tensorCount: Int
    /// Bytes of tensor data read (all models and base, merge pass) and written.
    public var bytesRead: Int64
    public var bytesWritten: Int64
    public var seconds: Double
    public var recipe: MergeRecipe
}

/// A tensor of the merge plan, in output order.
struct PlannedTensor: Sendable {
    var name: String
    var shape: [Int]
    var elementCount: Int
    var inputDType: DType
    var outputDType: DType
    /// Index into the block weights (0 = embedding, 1…K, K+1 = head).
    var block: Int
    var rowLength: Int
}

/// The streaming, parallel, block-wise merge engine.
///
/// Inputs are memory-mapped (or read with `pread`, see ``MergeRequest/InputAccess``); each tensor
/// is cut into chunks of `chunkElements` (whole rows for DELLA); worker threads decode a chunk of
/// every input to Float in cache-sized pieces, merge element-wise (``MergeMethod``), encode to the
/// output dtype into one of `2 × threads` chunk buffers, and drop the input pages from the
/// process's resident set; the calling thread writes finished chunks to the shards strictly in
/// order, starting write-back every 64 MB when the output is to be fsync'd. Memory is therefore bounded by the chunk
/// buffers (a few MB per thread), whatever the model size. TIES and Breadcrumbs first compute
/// exact magnitude thresholds per tensor and model (``MagnitudeStatistics``, bounded too).
/// Every output element depends only on the inputs at that position (plus per-tensor thresholds,
/// per-row ranks and the seeded stream of (seed, tensor, model)), so shards are byte-identical for
/// any thread count or chunk size.
///
/// The output is written into a hidden sibling directory and renamed into place at the end; on
/// any error, or when `cancellation` is set (checked between tensors and chunks), the partial
/// directory is removed and nothing appears at the output path.
public enum MergeEngine {
    /// Merges and returns what was written. `progress` is called from the writing thread.
    /// `cancellation`: a flag another thread may set to stop the merge (`MergeError(.cancelled)`).
    public static func merge(
        _ request: MergeRequest, cancellation: MergeCancellation? = nil, progress: (@Sendable (MergeProgress) -> Void)? = nil
    ) throws -> MergeSummary {
        let start = Date()
        let plan = try MergePlan(request)
        try cancellation?.check()
        try checkOutputLocation(request)
        let fm = FileManager.default
        let parent = request.output.deletingLastPathComponent()
        let partial = parent.appendingPathComponent(".\(request.output.lastPathComponent).bambo-partial-\(getpid())-\(UUID().uuidString.prefix(8))")
        var finished = false
        defer { if !finished { try? fm.removeItem(at: partial) } }
        do {
            try fm.createDirectory(at: partial, withIntermediateDirectories: false)
        } catch {
            throw MergeError(.invalidOutput("cannot create \(partial.path): \(error.localizedDescription)"))
        }
        let recipe = plan.recipe
        let written: (shards: [String], bytesRead: Int64, bytesWritten: Int64)
        do {
            written = try writeShards(plan: plan, to: partial, cancellation: cancellation, progress: progress)
            try copyModelFiles(from: request.models[0], to: partial, outputDType: request.outputDType)
            try Data(recipe.yamlText().utf8).write(to: partial.appendingPathComponent(MergeRecipe.fileName))
            if request.durable { try syncDirectoryTree(partial) }
            try cancellation?.check()
        } catch let error as MergeError {
            throw error
        } catch {
            throw MergeError(.writeFailed(path: request.output.path, reason: "\(error)"))
        }
        try moveIntoPlace(partial, request: request)
        finished = true
        return MergeSummary(
            output: request.output, shards: written.shards, tensorCount: plan.tensors.count,
            bytesRead: written.bytesRead, bytesWritten: written.bytesWritten,
            seconds: Date().timeIntervalSince(start), recipe: recipe)
    }

    /// The common call: a partition file's blocks and the usual options.
    public static func merge(
        models: [URL], base: URL?, partition: PartitionDocument, weights: BlockWeights, method: MergeMethod,
        parameters: MergeParameters = MergeParameters(), outputDType: DType? = nil, seed: UInt64 = 0, output: URL,
        shardMaxBytes: Int = 5_000_000_000, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        progress: (@Sendable (MergeProgress) -> Void)? = nil
    ) throws -> MergeSummary {
        try merge(MergeRequest(
            models: models, base: base, blocks: partition.blockRanges, weights: weights, method: method,
            parameters: parameters, outputDType: outputDType, seed: seed, output: output,
            shardMaxBytes: shardMaxBytes, threads: threads), progress: progress)
    }

    /// Validates a request without writing anything: models readable and compatible, partition
    /// covering their layers, weights and parameters in range. Returns the recipe it would record.
    public static func validate(_ request: MergeRequest) throws -> MergeRecipe {
        try MergePlan(request).recipe
    }

    // MARK: writing

    private static func writeShards(
        plan: MergePlan, to directory: URL, cancellation: MergeCancellation?, progress: (@Sendable (MergeProgress) -> Void)?
    ) throws -> (shards: [String], bytesRead: Int64, bytesWritten: Int64) {
        let request = plan.request
        let threads = max(1, request.threads)
        let source = plan.source
        let inputsPerElement = source.models.count + (plan.usesBase ? 1 : 0)
        let readTotal = plan.tensors.reduce(Int64(0)) { $0 + Int64($1.elementCount * $1.inputDType.byteSize * inputsPerElement) }

        // Per-tensor magnitude windows (TIES, Breadcrumbs).
        var windows = [[MagnitudeWindow]](repeating: [], count: plan.tensors.count)
        if request.method.needsTensorStatistics {
            var done: Int64 = 0
            for (t, tensor) in plan.tensors.enumerated() {
                try cancellation?.check()
                windows[t] = try MagnitudeStatistics.windows(
                    tensor: tensor, source: source, method: request.method, parameters: plan.parameters[tensor.block],
                    chunkElements: plan.chunkElements(for: tensor), threads: threads, cancellation: cancellation)
                done += Int64(tensor.elementCount * tensor.inputDType.byteSize * inputsPerElement)
                progress?(MergeProgress(phase: .statistics, bytesDone: done, bytesTotal: readTotal))
            }
        }
        let contexts = plan.tensors.enumerated().map { t, tensor in
            TensorMergeContext(
                method: request.method, parameters: plan.parameters[tensor.block],
                weights: request.weights.perBlock[tensor.block].map { Float($0) },
                windows: windows[t].isEmpty ? Array(repeating: .all, count: source.models.count) : windows[t],
                streamKeys: (0..<source.models.count).map { MergeRandom.streamKey(seed: request.seed, tensor: tensor.name, model: $0) },
                rowLength: tensor.rowLength)
        }

        var chunks: [(tensor: Int, elements: Range<Int>)] = []
        for (t, tensor) in plan.tensors.enumerated() {
            let size = plan.chunkElements(for: tensor)
            if tensor.elementCount == 0 { chunks.append((t, 0..<0)) }
            for start in stride(from: 0, to: tensor.elementCount, by: size) {
                chunks.append((t, start..<min(tensor.elementCount, start + size)))
            }
        }
        let declarations = plan.tensors.map { TensorDeclaration(name: $0.name, dtype: $0.outputDType, shape: $0.shape) }
        let writer = try CheckpointWriter(
            directory: directory, tensors: declarations, maxShardBytes: request.shardMaxBytes,
            metadata: ["format": "pt", MergeRecipe.metadataKey: plan.recipe.compactJSON()])

        let maxChunk = chunks.map(\.elements.count).max() ?? 0
        let maxOutputByteSize = plan.tensors.map(\.outputDType.byteSize).max() ?? 4
        let pipeline = ChunkPipeline(chunkCount: chunks.count, slots: 2 * threads, slotBytes: maxChunk * maxOutputByteSize)
        defer { pipeline.deallocate() }
        let tensors = plan.tensors
        let usesBase = plan.usesBase
        let access = request.inputAccess
        let chunkList = chunks
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                let scratch = ChunkScratch(models: source.models.count, elements: max(subBlockElements, maxRowLength(tensors)))
                defer { scratch.deallocate() }
                while let (index, slot) = pipeline.claim() {
                    if cancellation?.isCancelled == true {
                        pipeline.fail(MergeError(.cancelled))
                        break
                    }
                    let chunk = chunkList[index]
                    let tensor = tensors[chunk.tensor]
                    do {
                        let bytes = try mergeChunk(tensor: tensor, elements: chunk.elements, source: source, usesBase: usesBase, access: access,
                                                   context: contexts[chunk.tensor], scratch: scratch, into: slot)
                        pipeline.complete(index, bytes: bytes)
                    } catch {
                        pipeline.fail(error)
                    }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        var bytesRead: Int64 = 0
        var bytesWritten: Int64 = 0
        let writeback = request.durable ? WritebackStarter(writer: writer) : nil
        defer { writeback?.close() }
        do {
            for index in 0..<chunks.count {
                try cancellation?.check()
                let bytes = try pipeline.waitForChunk(index)
                let tensor = tensors[chunks[index].tensor]
                try writer.write(UnsafeRawBufferPointer(bytes), tensor: tensor.name)
                writeback?.wrote(bytes.count, tensor: tensor.name)
                pipeline.release(index)
                bytesWritten += Int64(bytes.count)
                bytesRead += Int64(chunks[index].elements.count * tensor.inputDType.byteSize * inputsPerElement)
                progress?(MergeProgress(phase: .merging, bytesDone: bytesRead, bytesTotal: readTotal))
            }
            try writer.finish()
        } catch {
            pipeline.fail(error)
            group.wait()
            throw error
        }
        group.wait()
        let shards = (0..<writer.shards.count).map { writer.shardFileName($0) }
        return (shards, bytesRead, bytesWritten)
    }

    /// Merges one chunk into `slot` and returns the encoded bytes.
    private static func mergeChunk(
        tensor: PlannedTensor, elements: Range<Int>, source: MergeSource, usesBase: Bool, access: MergeRequest.InputAccess,
        context: TensorMergeContext, scratch: ChunkScratch, into slot: UnsafeMutableRawBufferPointer
    ) throws -> UnsafeMutableRawBufferPointer {
        let outSize = tensor.outputDType.byteSize
        let piece = context.method == .della && context.parameters.density < 1
            ? max(1, subBlockElements / tensor.rowLength) * tensor.rowLength
            : subBlockElements
        let locations = access == .pread ? try source.locations(of: tensor.name, includeBase: usesBase) : []
        if context.method == .linear, source.models.count == 2, tensor.inputDType == .bf16, tensor.outputDType == .bf16 {
            // The common case (two bf16 models, bf16 out): no intermediate Float buffers.
            if access == .pread {
                for start in stride(from: elements.lowerBound, to: elements.upperBound, by: piece) {
                    let sub = start..<min(elements.upperBound, start + piece)
                    try source.readRaw(locations[0], elements: sub, into: scratch.staging)
                    try source.readRaw(locations[1], elements: sub, into: scratch.secondStaging)
                    linearBF16(scratch.staging.baseAddress!, scratch.secondStaging.baseAddress!, count: sub.count,
                               w0: context.weights[0], w1: context.weights[1], into: slot.baseAddress! + (start - elements.lowerBound) * 2)
                }
            } else {
                try source.models[0].withRawBytes(of: tensor.name, elements: elements) { a in
                    try source.models[1].withRawBytes(of: tensor.name, elements: elements) { b in
                        guard elements.count > 0 else { return }
                        linearBF16(a.baseAddress!, b.baseAddress!, count: elements.count,
                                   w0: context.weights[0], w1: context.weights[1], into: slot.baseAddress!)
                    }
                }
                source.release(tensor: tensor.name, elements: elements, includeBase: false)
            }
            return UnsafeMutableRawBufferPointer(rebasing: slot[0..<(elements.count * 2)])
        }
        for start in stride(from: elements.lowerBound, to: elements.upperBound, by: piece) {
            let sub = start..<min(elements.upperBound, start + piece)
            let count = sub.count
            func read(_ input: Int, _ checkpoint: Checkpoint, into buffer: UnsafeMutableBufferPointer<Float>) throws {
                if access == .pread {
                    try source.read(locations[input], elements: sub, staging: scratch.staging, into: buffer)
                } else {
                    try checkpoint.readFloats(of: tensor.name, elements: sub, into: buffer)
                }
            }
            let models = try (0..<source.models.count).map { i -> UnsafeBufferPointer<Float> in
                let buffer = UnsafeMutableBufferPointer(rebasing: scratch.models[i][0..<count])
                try read(i, source.models[i], into: buffer)
                return UnsafeBufferPointer(buffer)
            }
            var base: UnsafeBufferPointer<Float>?
            if usesBase, let baseCheckpoint = source.base {
                let buffer = UnsafeMutableBufferPointer(rebasing: scratch.base[0..<count])
                try read(source.models.count, baseCheckpoint, into: buffer)
                base = UnsafeBufferPointer(buffer)
            }
            let out = UnsafeMutableBufferPointer(rebasing: scratch.out[0..<count])
            mergeElements(models: models, base: base, firstElement: start, context: context,
                          scratch: UnsafeMutableBufferPointer(rebasing: scratch.probabilities[0..<(models.count * count)]), out: out)
            let offset = (start - elements.lowerBound) * outSize
            FloatCodec.encode(UnsafeBufferPointer(out), as: tensor.outputDType,
                              into: UnsafeMutableRawBufferPointer(rebasing: slot[offset..<(offset + count * outSize)]))
        }
        if access == .mmap { source.release(tensor: tensor.name, elements: elements, includeBase: usesBase) }
        return UnsafeMutableRawBufferPointer(rebasing: slot[0..<(elements.count * outSize)])
    }

    private static func maxRowLength(_ tensors: [PlannedTensor]) -> Int { tensors.map(\.rowLength).max() ?? 1 }

    // MARK: files

    private static func checkOutputLocation(_ request: MergeRequest) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let parent = request.output.deletingLastPathComponent()
        guard fm.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MergeError(.invalidOutput("the parent directory \(parent.path) does not exist"))
        }
        if fm.fileExists(atPath: request.output.path), !request.replaceExisting {
            throw MergeError(.invalidOutput("\(request.output.path) already exists; choose a new directory or replace it explicitly"))
        }
        for model in request.models + (request.base.map { [$0] } ?? []) where model.standardizedFileURL.path == request.output.standardizedFileURL.path {
            throw MergeError(.invalidOutput("\(request.output.path) is one of the input models"))
        }
    }

    /// Files copied from the first model next to the merged shards.
    static func isModelSideFile(_ name: String) -> Bool {
        let exact: Set<String> = [
            "config.json", "generation_config.json", "special_tokens_map.json", "added_tokens.json",
            "merges.txt", "vocab.json", "vocab.txt", "chat_template.jinja", "chat_template.json",
            "preprocessor_config.json",
        ]
        return exact.contains(name) || name.hasPrefix("tokenizer") || name.hasSuffix(".tiktoken")
    }

    private static func copyModelFiles(from model: URL, to directory: URL, outputDType: DType?) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: model.path).sorted() where isModelSideFile(name) {
            let source = model.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: source.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let target = directory.appendingPathComponent(name)
            if name == "config.json", let dtype = outputDType {
                var config = try Checkpoint.readConfig(directory: model)
                let torchName: JSONValue = switch dtype {
                case .bf16: "bfloat16"
                case .f16: "float16"
                default: "float32"
                }
                config["torch_dtype"] = torchName
                if config["dtype"] != nil { config["dtype"] = torchName }
                try Data((JSONValue.object(config).jsonText(pretty: true) + "\n").utf8).write(to: target)
            } else {
                try fm.copyItem(at: source, to: target)
            }
        }
    }

    private static func moveIntoPlace(_ partial: URL, request: MergeRequest) throws {
        let fm = FileManager.default
        let output = request.output
        var displaced: URL?
        if fm.fileExists(atPath: output.path) {
            let old = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).bambo-old-\(UUID().uuidString.prefix(8))")
            guard rename(output.path, old.path) == 0 else {
                throw MergeError(.writeFailed(path: output.path, reason: "cannot move the existing directory aside: \(String(cString: strerror(errno)))"))
            }
            displaced = old
        }
        guard rename(partial.path, output.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let displaced { _ = rename(displaced.path, output.path) }
            throw MergeError(.writeFailed(path: output.path, reason: "rename from \(partial.lastPathComponent) failed: \(reason)"))
        }
        if let displaced { try? fm.removeItem(at: displaced) }
        if request.durable { _ = try? syncPath(output.deletingLastPathComponent().path) }
    }

    /// fsyncs every file in `directory`, then the directory itself.
    static func syncDirectoryTree(_ directory: URL) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            try syncPath(directory.appendingPathComponent(name).path)
        }
        try syncPath(directory.path)
    }

    static func syncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeTensorsError(file: path, .io(operation: "open for fsync", errno: errno)) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SafeTensorsError(file: path, .io(operation: "fsync", errno: errno)) }
    }
}

/// The validated request: opened checkpoints, resolved parameters, tensors in output order.
struct MergePlan {
    let request: MergeRequest
    let source: MergeSource
    /// Per block (0 = embedding, 1…K, K+1 = head).
    let parameters: [ResolvedMergeParameters]
    let tensors: [PlannedTensor]
    let recipe: MergeRecipe
    var usesBase: Bool { request.method.needsBase }

    init(_ request: MergeRequest) throws {
        self.request = request
        let method = request.method
        guard request.models.count >= 2 else { throw MergeError(.tooFewModels(got: request.models.count, needed: 2)) }
        if method.needsBase, request.base == nil { throw MergeError(.missingBase(method)) }
        guard request.threads >= 1 else { throw MergeError(.invalidRequest("threads = \(request.threads); expected ≥ 1")) }
        guard request.shardMaxBytes >= 1 else { throw MergeError(.invalidRequest("shard size \(request.shardMaxBytes); expected ≥ 1 byte")) }
        guard request.chunkElements >= 1 else { throw MergeError(.invalidRequest("chunk size \(request.chunkElements); expected ≥ 1 element")) }
        if let dtype = request.outputDType, !dtype.isFloatConvertible {
            throw MergeError(.invalidRequest("output dtype \(dtype.rawValue); expected BF16, F16 or F32"))
        }
        parameters = try request.parameters.resolved(for: method, blockCount: request.blocks.count + 2)
        let blocks = request.blocks.map { [$0.lowerBound, $0.upperBound] }
        try request.weights.validate(layerBlocks: blocks.count, models: request.models.count)

        let models = try request.models.map { try Checkpoint(directory: $0) }
        try checkSameTensors(models, compareDTypes: true)
        let base = try request.base.map { try Checkpoint(directory: $0) }
        if let base { try checkSameTensors([models[0], base], compareDTypes: false) }
        for t in models[0].tensors where !t.dtype.isFloatConvertible {
            throw ModelFamilyError(.notFloat(tensor: t.name, dtype: t.dtype))
        }
        if let base {
            for t in base.tensors where !t.dtype.isFloatConvertible { throw ModelFamilyError(.notFloat(tensor: t.name, dtype: t.dtype)) }
        }
        source = try MergeSource(models: models, base: method.needsBase ? base : nil)

        let layerMap = try LayerMap(checkpoint: models[0], patterns: request.patterns, unmappedGroup: .embedding)
        if let problem = PartitionDocument.coverageProblem(blocks: blocks, layers: layerMap.layerCount) {
            throw MergeError(.partitionMismatch("\(problem) (\(request.models[0].path) has \(layerMap.layerCount) layers)"))
        }
        var blockOfLayer = [Int](repeating: 0, count: layerMap.layerCount)
        for (k, range) in request.blocks.enumerated() { for l in range { blockOfLayer[l] = k + 1 } }
        var tensors: [PlannedTensor] = []
        for (group, names) in layerMap.tensorsByGroup {
            let block = switch group {
            case .embedding: 0
            case let .layer(l): blockOfLayer[l]
            case .head: blocks.count + 1
            }
            for name in names {
                let t = try models[0].tensor(name)
                tensors.append(PlannedTensor(
                    name: name, shape: t.shape, elementCount: t.elementCount, inputDType: t.dtype,
                    outputDType: request.outputDType ?? t.dtype, block: block,
                    rowLength: max(1, t.shape.count >= 2 ? t.shape[t.shape.count - 1] : t.elementCount)))
            }
        }
        self.tensors = tensors
        recipe = MergeRecipe(request: request, blocks: blocks)
    }

    /// Chunk size for `tensor`: whole rows for DELLA.
    func chunkElements(for tensor: PlannedTensor) -> Int {
        guard request.method == .della else { return request.chunkElements }
        return max(1, request.chunkElements / tensor.rowLength) * tensor.rowLength
    }
}

/// The opened inputs: memory maps (through ``Checkpoint``) and read-only descriptors for `pread`.
final class MergeSource: @unchecked Sendable {  // immutable after init
    let models: [Checkpoint]
    let base: Checkpoint?
    /// Per input (models, then base): shard file name → descriptor.
    private let descriptors: [[String: Int32]]

    /// Where a tensor's data starts in its file.
    struct Location {
        var fd: Int32
        var offset: Int
        var dtype: DType
        var path: String
    }

    init(models: [Checkpoint], base: Checkpoint?) throws {
        self.models = models
        self.base = base
        var descriptors: [[String: Int32]] = []
        var opened: [Int32] = []
        do {
            for checkpoint in models + (base.map { [$0] } ?? []) {
                var byFile: [String: Int32] = [:]
                for (name, file) in checkpoint.files {
                    let fd = open(file.url.path, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw SafeTensorsError(file: file.url.path, .io(operation: "open", errno: errno)) }
                    opened.append(fd)
                    byFile[name] = fd
                }
                descriptors.append(byFile)
            }
        } catch {
            opened.forEach { _ = close($0) }
            throw error
        }
        self.descriptors = descriptors
    }

    deinit {
        for d in descriptors { d.values.forEach { _ = close($0) } }
    }

    /// The locations of `tensor` in every model (and the base, last, when asked).
    func locations(of tensor: String, includeBase: Bool) throws -> [Location] {
        let inputs = models + (includeBase ? base.map { [$0] } ?? [] : [])
        return try inputs.enumerated().map { i, checkpoint in
            let t = try checkpoint.tensor(tensor)
            let file = checkpoint.files[t.file]!
            let info = try file.info(tensor)
            return Location(fd: descriptors[i][t.file]!, offset: file.header.dataStart + info.dataOffsets.lowerBound, dtype: info.dtype, path: file.url.path)
        }
    }

    /// Reads `elements` at `location` with pread through `staging` and decodes them into `out`.
    func read(_ location: Location, elements: Range<Int>, staging: UnsafeMutableRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) throws {
        precondition(out.count == elements.count)
        try readRaw(location, elements: elements, into: staging)
        FloatCodec.decode(UnsafeRawBufferPointer(rebasing: staging[0..<(elements.count * location.dtype.byteSize)]), as: location.dtype, into: out)
    }

    /// Reads the raw bytes of `elements` at `location` into the start of `staging`.
    func readRaw(_ location: Location, elements: Range<Int>, into staging: UnsafeMutableRawBufferPointer) throws {
        let size = location.dtype.byteSize
        let bytes = elements.count * size
        precondition(bytes <= staging.count)
        var done = 0
        while done < bytes {
            let n = pread(location.fd, staging.baseAddress! + done, bytes - done, off_t(location.offset + elements.lowerBound * size + done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                throw SafeTensorsError(file: location.path, .io(operation: n == 0 ? "pread (file shorter than its header says)" : "pread", errno: n == 0 ? EIO : errno))
            }
            done += n
        }
    }

    /// Decoded copies of `elements` of every model and the base (statistics pass).
    func decode(tensor: String, elements: Range<Int>) throws -> (models: [[Float]], base: [Float]?) {
        (try models.map { try $0.floats(of: tensor, elements: elements) }, try base?.floats(of: tensor, elements: elements))
    }

    /// Lets the mapped pages of `elements` leave the resident set (they stay in the page cache).
    func release(tensor: String, elements: Range<Int>, includeBase: Bool = true) {
        for m in models { m.advise(tensor, elements: elements, willNeed: false) }
        if includeBase { base?.advise(tensor, elements: elements, willNeed: false) }
    }
}

/// Starts write-back of the shard being written every ``interval`` bytes (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, asynchronous), so the final fsync finds little left
/// to do and the disk works while the merge computes. Elsewhere it does nothing.
final class WritebackStarter {
    static let interval = 64 << 20
    private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
    private static let syncFileRange: SyncFileRange? = {
        #if os(Linux)
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: SyncFileRange.self)
        #else
        return nil
        #endif
    }()
    private let shardPathOf: [String: String]
    private var pending = 0
    private var fds: [String: Int32] = [:]

    init(writer: CheckpointWriter) {
        var paths: [String: String] = [:]
        for (i, shard) in writer.shards.enumerated() {
            // SafeTensorsWriter writes under `<name>.partial` until the shard is finished.
            let path = writer.directory.appendingPathComponent(writer.shardFileName(i)).path + ".partial"
            for t in shard { paths[t.name] = path }
        }
        shardPathOf = paths
    }

    func wrote(_ bytes: Int, tensor: String) {
        pending += bytes
        guard pending >= Self.interval, let call = Self.syncFileRange, let path = shardPathOf[tensor] else { return }
        pending = 0
        if fds[path] == nil {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return }
            fds[path] = fd
        }
        _ = call(fds[path]!, 0, 0, 2)  // SYNC_FILE_RANGE_WRITE: start write-out, do not wait
    }

    func close() {
        for fd in fds.values { _ = Glibc.close(fd) }
        fds = [:]
    }
}

/// Per-thread decode buffers for one cache-sized piece.
final class ChunkScratch {
    let models: [UnsafeMutableBufferPointer<Float>]
    let base: UnsafeMutableBufferPointer<Float>
    let out: UnsafeMutableBufferPointer<Float>
    let probabilities: UnsafeMutableBufferPointer<Float>
    /// Raw bytes read by `pread` before decoding.
    let staging: UnsafeMutableRawBufferPointer
    let secondStaging: UnsafeMutableRawBufferPointer

    init(models n: Int, elements: Int) {
        staging = .allocate(byteCount: elements * 4, alignment: 64)
        secondStaging = .allocate(byteCount: elements * 4, alignment: 64)
        models = (0..<n).map { _ in .allocate(capacity: elements) }
        base = .allocate(capacity: elements)
        out = .allocate(capacity: elements)
        probabilities = .allocate(capacity: n * elements)
    }

    func deallocate() {
        models.forEach { $0.deallocate() }
        base.deallocate()
        out.deallocate()
        probabilities.deallocate()
        staging.deallocate()
        secondStaging.deallocate()
    }
}

/// Chunks claimed in order by workers, written in order by one writer, with at most `slots`
/// chunks between the oldest unwritten and the newest claimed (each owns one output buffer).
final class ChunkPipeline: @unchecked Sendable {  // state guarded by `condition`
    private let condition = NSCondition()
    private let chunkCount: Int
    private let slots: Int
    private let buffers: [UnsafeMutableRawBufferPointer]
    private var nextToClaim = 0
    private var nextToWrite = 0
    private var ready: [UnsafeMutableRawBufferPointer?]
    private var failure: (any Error)?

    init(chunkCount: Int, slots: Int, slotBytes: Int) {
        self.chunkCount = chunkCount
        self.slots = max(1, slots)
        buffers = (0..<max(1, slots)).map { _ in .allocate(byteCount: max(1, slotBytes), alignment: 64) }
        ready = Array(repeating: nil, count: max(1, slots))
    }

    func deallocate() { buffers.forEach { $0.deallocate() } }

    /// The next chunk to merge and its buffer, or nil when all are claimed or the merge failed.
    func claim() -> (Int, UnsafeMutableRawBufferPointer)? {
        condition.lock()
        defer { condition.unlock() }
        while failure == nil, nextToClaim < chunkCount, nextToClaim - nextToWrite >= slots { condition.wait() }
        guard failure == nil, nextToClaim < chunkCount else { return nil }
        let index = nextToClaim
        nextToClaim += 1
        return (index, buffers[index % slots])
    }

    func complete(_ index: Int, bytes: UnsafeMutableRawBufferPointer) {
        condition.lock()
        ready[index % slots] = bytes
        condition.broadcast()
        condition.unlock()
    }

    func fail(_ error: any Error) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until chunk `index` is merged; rethrows a worker's error.
    func waitForChunk(_ index: Int) throws -> UnsafeMutableRawBufferPointer {
        condition.lock()
        defer { condition.unlock() }
        while ready[index % slots] == nil, failure == nil { condition.wait() }
        if let failure { throw failure }
        return ready[index % slots]!
    }

    /// Marks chunk `index` written, freeing its buffer.
    func release(_ index: Int) {
        condition.lock()
        ready[index % slots] = nil
        nextToWrite = index + 1
        condition.broadcast()
        condition.unlock()
    }
}
