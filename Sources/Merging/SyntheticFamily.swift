import Foundation
import SafeTensors

/// A seeded family of Qwen3-shaped checkpoints — `base/`, `instruct/`, `thinking/` — for demos,
/// benchmarks and tests, written in streaming fashion (constant memory at any size).
///
/// Every directory holds a `config.json` with the real Qwen3 keys and the real Qwen3 tensor names
/// and shapes (q_norm/k_norm included, no attention biases), sharded at `shardMaxBytes` with a
/// `model.safetensors.index.json` when more than one shard is needed. The base's weights are
/// uniform in ±`baseScale` (norm weights: 1 ± `baseScale`); each fine-tune is base plus its own
/// independent uniform delta, whose scale grows geometrically with depth from `firstLayerDelta` to
/// `lastLayerDelta`, so a layer-difference profile rises from first to last layer.
/// Values are a pure function of (seed, member, tensor, element), so output is deterministic and
/// independent of the number of cores.
public struct SyntheticFamily: Sendable, Equatable, Codable {
    public var layers: Int
    public var hidden: Int
    public var intermediate: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocab: Int
    public var tieWordEmbeddings: Bool
    public var dtype: DType
    public var seed: UInt64
    /// Maximum bytes of tensor data per shard file.
    public var shardMaxBytes: Int
    public var baseScale: Float
    public var firstLayerDelta: Float
    public var lastLayerDelta: Float
    /// Delta scale of the embedding and of the head (final norm, lm_head).
    public var embeddingDelta: Float
    public var headDelta: Float

    /// Directory names of the three members, in this order.
    public static let memberNames = ["base", "instruct", "thinking"]

    public init(
        layers: Int, hidden: Int, intermediate: Int, heads: Int, kvHeads: Int, headDim: Int, vocab: Int,
        tieWordEmbeddings: Bool = true, dtype: DType = .bf16, seed: UInt64 = 0, shardMaxBytes: Int = 1 << 30,
        baseScale: Float = 0.02, firstLayerDelta: Float = 0.001, lastLayerDelta: Float = 0.008,
        embeddingDelta: Float = 0.002, headDelta: Float = 0.004
    ) {
        self.layers = layers
        self.hidden = hidden
        self.intermediate = intermediate
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.vocab = vocab
        self.tieWordEmbeddings = tieWordEmbeddings
        self.dtype = dtype
        self.seed = seed
        self.shardMaxBytes = shardMaxBytes
        self.baseScale = baseScale
        self.firstLayerDelta = firstLayerDelta
        self.lastLayerDelta = lastLayerDelta
        self.embeddingDelta = embeddingDelta
        self.headDelta = headDelta
    }

    /// A family of about `totalBytesPerModel` bytes of tensor data per member with `layers` layers:
    /// the largest hidden size (multiple of 64) that leaves a vocabulary of at least 4 × hidden,
    /// head_dim 64 (128 from hidden 1024), KV heads half the heads, intermediate 3 × hidden, tied
    /// embeddings; the vocabulary then fills the remaining bytes (multiple of 64).
    public static func sized(totalBytesPerModel: Int, layers: Int, dtype: DType = .bf16, seed: UInt64 = 0) -> SyntheticFamily {
        let layers = max(1, layers)
        let budget = max(0, totalBytesPerModel / dtype.byteSize)
        func shape(hidden h: Int) -> SyntheticFamily {
            let headDim = h >= 1024 ? 128 : 64
            let heads = max(1, h / headDim)
            return SyntheticFamily(layers: layers, hidden: h, intermediate: 3 * h, heads: heads,
                                   kvHeads: heads % 2 == 0 ? heads / 2 : heads, headDim: headDim, vocab: 64,
                                   dtype: dtype, seed: seed)
        }
        var hidden = 64
        while true {
            let next = shape(hidden: hidden + 64)
            if next.parametersPerLayer * layers + 4 * next.hidden * next.hidden + next.hidden > budget { break }
            hidden += 64
        }
        var family = shape(hidden: hidden)
        let remaining = budget - family.parametersPerLayer * layers - hidden
        family.vocab = max(64, remaining / hidden / 64 * 64)
        return family
    }

    /// Parameters of one decoder layer.
    public var parametersPerLayer: Int {
        let q = heads * headDim, kv = kvHeads * headDim
        return q * hidden + 2 * kv * hidden + hidden * q + 3 * hidden * intermediate + 2 * hidden + 2 * headDim
    }

    /// Bytes of tensor data in one member.
    public var bytesPerModel: Int { tensorDeclarations().reduce(0) { $0 + $1.byteCount! } }

    /// The tensors of one member, in the order they are written (embedding, layers, head).
    public func tensorDeclarations() -> [TensorDeclaration] {
        func t(_ name: String, _ shape: [Int]) -> TensorDeclaration { TensorDeclaration(name: name, dtype: dtype, shape: shape) }
        var list = [t("model.embed_tokens.weight", [vocab, hidden])]
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            list += [
                t(p + "input_layernorm.weight", [hidden]),
                t(p + "self_attn.q_proj.weight", [heads * headDim, hidden]),
                t(p + "self_attn.k_proj.weight", [kvHeads * headDim, hidden]),
                t(p + "self_attn.v_proj.weight", [kvHeads * headDim, hidden]),
                t(p + "self_attn.o_proj.weight", [hidden, heads * headDim]),
                t(p + "self_attn.q_norm.weight", [headDim]),
                t(p + "self_attn.k_norm.weight", [headDim]),
                t(p + "post_attention_layernorm.weight", [hidden]),
                t(p + "mlp.gate_proj.weight", [intermediate, hidden]),
                t(p + "mlp.up_proj.weight", [intermediate, hidden]),
                t(p + "mlp.down_proj.weight", [hidden, intermediate]),
            ]
        }
        list.append(t("model.norm.weight", [hidden]))
        if !tieWordEmbeddings { list.append(t("lm_head.weight", [vocab, hidden])) }
        return list
    }

    /// `config.json` of every member (Qwen3 keys).
    public func config() -> [String: JSONValue] {
        let dtypeName: JSONValue = switch dtype {
        case .bf16: "bfloat16"
        case .f16: "float16"
        default: "float32"
        }
        return [
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "bos_token_id": .int(Int64(min(vocab - 1, 0))),
            "eos_token_id": .int(Int64(max(0, vocab - 1))),
            "head_dim": .int(Int64(headDim)),
            "hidden_act": "silu",
            "hidden_size": .int(Int64(hidden)),
            "initializer_range": 0.02,
            "intermediate_size": .int(Int64(intermediate)),
            "max_position_embeddings": 4096,
            "max_window_layers": .int(Int64(layers)),
            "num_attention_heads": .int(Int64(heads)),
            "num_hidden_layers": .int(Int64(layers)),
            "num_key_value_heads": .int(Int64(kvHeads)),
            "rms_norm_eps": 1e-06,
            "rope_scaling": nil,
            "rope_theta": 1_000_000.0,
            "sliding_window": nil,
            "tie_word_embeddings": .bool(tieWordEmbeddings),
            "torch_dtype": dtypeName,
            "use_cache": true,
            "use_sliding_window": false,
            "vocab_size": .int(Int64(vocab)),
        ]
    }

    /// Checks the sizes make a valid model (positive dimensions, heads divisible by KV heads, a
    /// float dtype, a positive shard size).
    public func validate() throws {
        var problems: [String] = []
        for (name, value) in [("layers", layers), ("hidden", hidden), ("intermediate", intermediate), ("heads", heads),
                              ("kvHeads", kvHeads), ("headDim", headDim), ("vocab", vocab), ("shardMaxBytes", shardMaxBytes)]
        where value < 1 {
            problems.append("\(name) is \(value); expected at least 1")
        }
        if kvHeads >= 1, heads % kvHeads != 0 { problems.append("heads (\(heads)) must be a multiple of kvHeads (\(kvHeads))") }
        if !dtype.isFloatConvertible { problems.append("dtype \(dtype.rawValue) is not BF16, F16 or F32") }
        if !(firstLayerDelta > 0 && lastLayerDelta > 0) { problems.append("layer delta scales must be positive") }
        if !problems.isEmpty { throw SyntheticFamilyError(problems: problems) }
    }

    /// Delta scale of a tensor's group for the fine-tunes.
    func deltaScale(of name: String) -> Float {
        if name.hasPrefix("model.embed_tokens.") { return embeddingDelta }
        if name.hasPrefix("model.layers.") {
            let l = Int(name.dropFirst("model.layers.".count).prefix { $0.isNumber })!
            let t = layers > 1 ? Float(l) / Float(layers - 1) : 0
            return firstLayerDelta * Float(pow(Double(lastLayerDelta / firstLayerDelta), Double(t)))
        }
        return headDelta
    }

    /// Writes `base/`, `instruct/` and `thinking/` under `directory` (created if needed).
    /// `progress` gets (bytes written, total bytes of the three members).
    public func write(to directory: URL, progress: (@Sendable (_ bytesDone: Int64, _ bytesTotal: Int64) -> Void)? = nil) throws {
        try validate()
        let declarations = tensorDeclarations()
        let total = Int64(bytesPerModel) * Int64(Self.memberNames.count)
        var done: Int64 = 0
        let configText = Data(JSONValue.object(config()).jsonText(pretty: true).utf8)
        let buffers = Buffers(byteSize: dtype.byteSize, workers: workerCount(for: Self.batchStreams))
        for (member, name) in Self.memberNames.enumerated() {
            let memberDirectory = directory.appendingPathComponent(name)
            let writer = try CheckpointWriter(directory: memberDirectory, tensors: declarations, maxShardBytes: shardMaxBytes)
            for (tensorIndex, tensor) in declarations.enumerated() {
                try writeTensor(tensor, index: tensorIndex, member: member, buffers: buffers, to: writer) { bytes in
                    done += Int64(bytes)
                    progress?(done, total)
                }
            }
            try writer.finish()
            try configText.write(to: memberDirectory.appendingPathComponent("config.json"), options: .atomic)
        }
    }

    /// Elements generated per PRNG stream; fixed, so values do not depend on batching or cores.
    static let streamElements = 1 << 16
    /// Streams generated in parallel before one sequential write.
    static let batchStreams = 64

    /// Reusable memory of one `write`: the encoded bytes of a batch and per-worker float scratch.
    private final class Buffers: @unchecked Sendable {  // workers touch disjoint regions
        let bytes: UnsafeMutableRawBufferPointer
        let floats: UnsafeMutableBufferPointer<Float>
        init(byteSize: Int, workers: Int) {
            bytes = .allocate(byteCount: SyntheticFamily.batchStreams * SyntheticFamily.streamElements * byteSize, alignment: 64)
            floats = .allocate(capacity: workers * SyntheticFamily.streamElements)
        }
        deinit {
            bytes.deallocate()
            floats.deallocate()
        }
    }

    private func writeTensor(_ tensor: TensorDeclaration, index tensorIndex: Int, member: Int, buffers: Buffers,
                             to writer: CheckpointWriter, wrote: (Int) -> Void) throws {
        let count = tensor.elementCount!
        let offset: Float = tensor.shape.count == 1 ? 1 : 0  // RMSNorm weights sit near 1
        let delta = member == 0 ? 0 : deltaScale(of: tensor.name)
        let byteSize = dtype.byteSize
        let streams = (count + Self.streamElements - 1) / Self.streamElements
        let (seed, baseScale, dtype) = (self.seed, self.baseScale, self.dtype)
        for batchStart in stride(from: 0, to: streams, by: Self.batchStreams) {
            let batchCount = min(Self.batchStreams, streams - batchStart)
            parallelForEach(count: batchCount) { k, worker in
                let stream = batchStart + k
                let first = stream * Self.streamElements
                let n = min(Self.streamElements, count - first)
                let values = UnsafeMutableBufferPointer(rebasing: buffers.floats[(worker * Self.streamElements)..<(worker * Self.streamElements + n)])
                var baseRNG = SplitMix64(seed: mixSeeds(seed, 0, UInt64(tensorIndex), UInt64(stream)))
                baseRNG.fillSymmetric(values, scale: baseScale, offset: offset)
                if member > 0 {
                    var deltaRNG = SplitMix64(seed: mixSeeds(seed, UInt64(member), UInt64(tensorIndex), UInt64(stream)))
                    deltaRNG.addSymmetric(values, scale: delta)
                }
                let start = k * Self.streamElements * byteSize
                FloatCodec.encode(UnsafeBufferPointer(values), as: dtype,
                                  into: UnsafeMutableRawBufferPointer(rebasing: buffers.bytes[start..<(start + n * byteSize)]))
            }
            let batchElements = min(count, (batchStart + batchCount) * Self.streamElements) - batchStart * Self.streamElements
            try writer.write(UnsafeRawBufferPointer(rebasing: buffers.bytes[0..<(batchElements * byteSize)]), tensor: tensor.name)
            wrote(batchElements * byteSize)
        }
    }
}

/// Invalid ``SyntheticFamily`` parameters.
public struct SyntheticFamilyError: Error, CustomStringConvertible, Equatable, Sendable {
    public var problems: [String]
    public var description: String { "invalid synthetic family: " + problems.joined(separator: "; ") }
}

/// splitmix64: a tiny, fast, well-mixed PRNG (Steele, Lea & Flood 2014).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Sets `values[j] = offset + scale · u_j`, u_j uniform in [−1, 1) with 24 random bits; two
    /// values per 64-bit draw.
    mutating func fillSymmetric(_ values: UnsafeMutableBufferPointer<Float>, scale: Float, offset: Float) {
        let step = scale * 0x1p-23
        var j = 0
        while j < values.count {
            let r = next()
            values[j] = offset + step * Float(Int32(truncatingIfNeeded: r >> 40) - (1 << 23))
            if j + 1 < values.count {
                values[j + 1] = offset + step * Float(Int32(truncatingIfNeeded: (r >> 8) & 0xFF_FFFF) - (1 << 23))
            }
            j += 2
        }
    }

    /// Adds `scale · u_j` (as in `fillSymmetric`) to every value.
    mutating func addSymmetric(_ values: UnsafeMutableBufferPointer<Float>, scale: Float) {
        let step = scale * 0x1p-23
        var j = 0
        while j < values.count {
            let r = next()
            values[j] += step * Float(Int32(truncatingIfNeeded: r >> 40) - (1 << 23))
            if j + 1 < values.count {
                values[j + 1] += step * Float(Int32(truncatingIfNeeded: (r >> 8) & 0xFF_FFFF) - (1 << 23))
            }
            j += 2
        }
    }
}

/// Combines seeds into one stream seed (each step a splitmix64 finalization).
func mixSeeds(_ values: UInt64...) -> UInt64 {
    var h: UInt64 = 0x6A09_E667_F3BC_C909
    for v in values {
        var s = SplitMix64(seed: h ^ v)
        h = s.next()
    }
    return h
}
