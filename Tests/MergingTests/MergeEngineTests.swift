import Foundation
import SafeTensors
import Testing
@testable import Merging

@Suite("merge engine: rounding, blocks, determinism, output files, errors")
struct MergeEngineTests {
    static let blocks: [ClosedRange<Int>] = [0...1, 2...2, 3...3]

    @Test("bf16 output is the float result rounded to nearest, ties to even, with NaN and ±Inf kept")
    func bf16Rounding() throws {
        // Two one-layer models whose mean (β = 0.5, exact in Float) hits bf16 midpoints, NaN and Inf.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("merge-bf16-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // bf16 values a, b with (a + b)/2 exactly halfway between two bf16 numbers: a, b one bf16 ulp apart.
        var a: [Float] = [], b: [Float] = []
        var rng = TestRandom(state: 9)
        for _ in 0..<4000 {
            let bits = UInt16(truncatingIfNeeded: rng.next()) & 0x7F7F | 0x0100  // finite, not tiny
            let x = Float(bitPattern: UInt32(bits) << 16)
            a.append(x)
            switch rng.next() % 3 {
            case 0: b.append(Float(bitPattern: (UInt32(bits) + 1) << 16))  // midpoint: ties to even
            case 1: b.append(Float(bitPattern: (UInt32(bits) + 3) << 16))  // exact bf16 (a + 1.5 ulp·2 / 2)
            default:  // same exponent, any mantissa and sign: the mean is exact in Float
                let other = (bits & 0x7F80) | UInt16(truncatingIfNeeded: rng.next()) & 0x807F
                b.append(Float(bitPattern: UInt32(other) << 16))
            }
        }
        let bf16Max = Float(bitPattern: 0x7F7F_0000)
        a += [.nan, .infinity, -.infinity, 1, bf16Max, bf16Max]
        b += [1, 1, 2, .nan, bf16Max, Float(bitPattern: 0x7F7E_0000)]
        let names = ["model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight", "model.norm.weight"]
        func write(_ dir: String, _ values: [Float]) throws -> URL {
            let url = root.appendingPathComponent(dir)
            let decls = names.map { TensorDeclaration(name: $0, dtype: .bf16, shape: [values.count]) }
            let w = try CheckpointWriter(directory: url, tensors: decls, maxShardBytes: 1 << 30)
            for d in decls { try w.write(floats: values, tensor: d.name) }
            try w.finish()
            try Data(#"{"num_hidden_layers": 1}"#.utf8).write(to: url.appendingPathComponent("config.json"))
            return url
        }
        let out = root.appendingPathComponent("out")
        _ = try MergeEngine.merge(MergeRequest(
            models: [try write("a", a), try write("b", b)], blocks: [0...0], weights: BlockWeights(betas: [0.5, 0.5, 0.5]),
            output: out, threads: 2, chunkElements: 1000))
        let merged = try Checkpoint(directory: out)
        for name in names {
            let bits: [UInt16] = try merged.withRawBytes(of: name) { raw in (0..<a.count).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) } }
            for j in a.indices {
                let exact = (Double(a[j]) + Double(b[j])) / 2
                if exact.isNaN || (a[j].isInfinite && b[j].isInfinite && a[j] != b[j]) {
                    #expect(bits[j] & 0x7FFF > 0x7F80, "NaN stays NaN")
                } else {
                    #expect(bits[j] == referenceBF16(exact), "element \(j): (\(a[j]) + \(b[j]))/2")
                }
            }
        }
    }

    @Test("changing one block's weight changes exactly that block's tensors", arguments: [0, 1, 2, 3, 4])
    func blockIsolation(block: Int) throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        var betas = [0.1, 0.3, 0.5, 0.7, 0.9]
        _ = try MergeEngine.merge(MergeRequest(models: fixture.models, blocks: Self.blocks, weights: BlockWeights(betas: betas), output: fixture.output("a")))
        betas[block] = 0.25
        _ = try MergeEngine.merge(MergeRequest(models: fixture.models, blocks: Self.blocks, weights: BlockWeights(betas: betas), output: fixture.output("b")))
        let a = try MergeFixture.read(fixture.output("a")), b = try MergeFixture.read(fixture.output("b"))
        for (name, _) in MergeFixture.shapes {
            let inBlock = MergeFixture.block(of: name, blocks: Self.blocks) == block
            if inBlock { #expect(a[name] != b[name], "\(name) is in block \(block) and must change") } else { #expect(a[name] == b[name], "\(name) is not in block \(block)") }
        }
        // The extra tensor matching no pattern follows the embedding block.
        #expect((a["model.rotary_extra.weight"] != b["model.rotary_extra.weight"]) == (block == 0))
    }

    @Test("the same merge with different thread counts, chunk sizes and input access gives byte-identical shards",
          arguments: [MergeMethod.linear, .ties, .dareTies, .breadcrumbs, .della])
    func determinism(method: MergeMethod) throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let parameters: MergeParameters = switch method {
        case .linear: MergeParameters()
        case .della: MergeParameters(density: 0.5, epsilon: 0.2)
        default: MergeParameters(density: 0.5)
        }
        var shards: [[String: Data]] = []
        for (i, (threads, chunk, access)) in [(1, 1 << 20, MergeRequest.InputAccess.pread), (4, 777, .mmap), (2, 4096, .pread)].enumerated() {
            let out = fixture.output("run\(i)")
            _ = try MergeEngine.merge(MergeRequest(
                models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: [0.2, 0.4, 0.6, 0.8, 1]),
                method: method, parameters: parameters, seed: 3, output: out, shardMaxBytes: 100_000, threads: threads, chunkElements: chunk,
                inputAccess: access))
            shards.append(try MergeFixture.shardBytes(out))
        }
        #expect(shards[0].count > 1, "several shards")
        #expect(shards[0] == shards[1])
        #expect(shards[0] == shards[2])
    }

    @Test("output directory: shards within the size limit, index, side files, recipe in YAML and metadata, dtype in config")
    func outputDirectory() throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let out = fixture.output("out")
        let summary = try MergeEngine.merge(MergeRequest(
            models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: [0, 0.5, 1, 0.5, 0]),
            method: .ties, parameters: MergeParameters(density: 0.5), outputDType: .f16, output: out, shardMaxBytes: 60_000))
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        #expect(files.isSuperset(of: ["config.json", "tokenizer_config.json", "bambo-merge.yaml", "model.safetensors.index.json"]))
        #expect(summary.shards.count >= 2)
        let checkpoint = try Checkpoint(directory: out)
        #expect(checkpoint.tensors.allSatisfy { $0.dtype == .f16 })
        for file in checkpoint.files.values {
            let data = file.tensors.reduce(0) { $0 + $1.byteCount }
            #expect(data <= 60_000 || file.tensors.count == 1, "\(file.url.lastPathComponent) holds \(data) bytes")
            let recipe = try #require(file.metadata?[MergeRecipe.metadataKey])
            let decoded = try JSONDecoder().decode(MergeRecipe.self, from: Data(recipe.utf8))
            #expect(decoded.mergeMethod == .ties && decoded.weights == summary.recipe.weights && decoded.parameters?.density == 0.5)
        }
        let yaml = try String(contentsOf: out.appendingPathComponent("bambo-merge.yaml"), encoding: .utf8)
        let reread = try MergeRecipe.load(yaml: yaml, file: "bambo-merge.yaml")
        #expect(reread == summary.recipe)
        let config = try Checkpoint.readConfig(directory: out)
        #expect(config["torch_dtype"]?.stringValue == "float16")
        // Nothing but the output directory appeared next to it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.root.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    // MARK: errors

    /// Runs a merge that must fail; checks the message and that nothing was left behind.
    private func expectFailure(_ fixture: MergeFixture, _ request: MergeRequest, mentions: [String]) {
        do {
            _ = try MergeEngine.merge(request)
            Issue.record("the merge should have failed")
        } catch {
            let message = "\(error)"
            for m in mentions { #expect(message.contains(m), "message: \(message)") }
        }
        #expect(!FileManager.default.fileExists(atPath: request.output.path), "no output directory")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: request.output.deletingLastPathComponent().path))?.filter { $0.contains("bambo-partial") } ?? []
        #expect(leftovers.isEmpty, "partial directories left: \(leftovers)")
    }

    @Test("mismatched shapes and missing tensors are listed")
    func mismatchedModels() throws {
        var shapes = MergeFixture.shapes
        shapes[3].1 = [8, 32]  // model.layers.0.self_attn.q_proj.weight: same size, other shape
        shapes.removeLast()  // lm_head missing
        let fixture = try MergeFixture(models: 2, overrides: [1: shapes])
        defer { fixture.cleanup() }
        expectFailure(fixture, MergeRequest(models: fixture.models, blocks: Self.blocks, weights: BlockWeights(betas: [0.5, 0.5, 0.5, 0.5, 0.5]), output: fixture.output("out")),
                      mentions: ["model.layers.0.self_attn.q_proj.weight", "[16, 16]", "[8, 32]", "\"lm_head.weight\" is in", "not in"])
    }

    @Test("weights out of range, of the wrong count, or not summing to 1")
    func badWeights() throws {
        let fixture = try MergeFixture(models: 3)
        defer { fixture.cleanup() }
        func request(_ w: [[Double]]) -> MergeRequest {
            MergeRequest(models: fixture.models, blocks: Self.blocks, weights: BlockWeights(perBlock: w), output: fixture.output("out"))
        }
        let ok: [Double] = [0.2, 0.3, 0.5]
        expectFailure(fixture, request([ok, ok, ok, ok]), mentions: ["got 4 block weights", "expected 5"])
        expectFailure(fixture, request([ok, ok, [1.2, -0.2, 0], ok, ok]), mentions: ["block 3 (block 2)", "1.2", "outside [0, 1]"])
        expectFailure(fixture, request([ok, ok, ok, ok, [0.5, 0.4, 0.2]]), mentions: ["block 5 (head)", "sum to", "expected 1"])
        expectFailure(fixture, request([ok, ok, ok, ok, [0.5, 0.5]]), mentions: ["block 5 (head) has 2 weights", "expected 3"])
        #expect(throws: MergeError.self) { try BlockWeights.parse("0.5,1.5,0", models: 2) }
        #expect(try BlockWeights.parse("0.25, 1,0:1:0", models: 2).perBlock == [[0.75, 0.25], [0, 1], [0, 1, 0]])
    }

    @Test("a partition that does not cover the model's layers, a missing base, a bad parameter")
    func badRequest() throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let w5 = BlockWeights(betas: [0.5, 0.5, 0.5, 0.5, 0.5])
        expectFailure(fixture, MergeRequest(models: fixture.models, blocks: [0...1, 2...2, 3...4], weights: w5, output: fixture.output("out")),
                      mentions: ["partition", "4 layers"])
        expectFailure(fixture, MergeRequest(models: fixture.models, blocks: [0...1, 3...3, 2...2], weights: w5, output: fixture.output("out")),
                      mentions: ["block 1 starts at layer 3, expected 2"])
        expectFailure(fixture, MergeRequest(models: fixture.models, blocks: Self.blocks, weights: w5, method: .ties, output: fixture.output("out")),
                      mentions: ["--base"])
        expectFailure(fixture, MergeRequest(models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: w5, method: .ties,
                                            parameters: MergeParameters(density: 1.5), output: fixture.output("out")),
                      mentions: ["density = 1.5", "(0, 1]"])
        expectFailure(fixture, MergeRequest(models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: w5, method: .ties,
                                            parameters: MergeParameters(epsilon: 0.1), output: fixture.output("out")),
                      mentions: ["ties takes no parameter \"epsilon\""])
        // An existing output is not overwritten.
        try FileManager.default.createDirectory(at: fixture.output("exists"), withIntermediateDirectories: false)
        #expect(throws: MergeError.self) {
            try MergeEngine.merge(MergeRequest(models: fixture.models, blocks: Self.blocks, weights: w5, output: fixture.output("exists")))
        }
    }

    @Test("a cancelled merge stops between chunks, throws .cancelled and leaves nothing behind",
          arguments: [MergeMethod.linear, .ties, .della])
    func cancellation(method: MergeMethod) throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let parameters = method == .linear ? MergeParameters() : MergeParameters(density: 0.5)
        func request(_ name: String) -> MergeRequest {
            MergeRequest(
                models: fixture.models, base: fixture.base, blocks: Self.blocks, weights: BlockWeights(betas: [0.2, 0.4, 0.6, 0.8, 1]),
                method: method, parameters: parameters, output: fixture.output(name), shardMaxBytes: 100_000, threads: 2,
                chunkElements: 1000)
        }
        func leftovers() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: fixture.root.path)) ?? ["(unreadable)"]).filter { $0.hasPrefix(".") }
        }
        // Cancelled before it starts: nothing is created.
        let early = MergeCancellation()
        early.cancel()
        #expect(throws: MergeError(.cancelled)) { try MergeEngine.merge(request("early"), cancellation: early) }
        #expect(!FileManager.default.fileExists(atPath: fixture.output("early").path))

        // Cancelled from the progress callback after the first merged chunk: the merge stops there,
        // long before its last chunk, and removes its partial directory (shards, `.partial` files).
        let late = MergeCancellation()
        let seen = Locked<[MergeProgress]>([])
        #expect(throws: MergeError(.cancelled)) {
            try MergeEngine.merge(request("late"), cancellation: late) { step in
                seen.withLock { $0.append(step) }
                if step.phase == .merging { late.cancel() }
            }
        }
        let merging = seen.withLock { $0 }.filter { $0.phase == .merging }
        #expect(merging.count == 1, "one chunk written after the cancel, got \(merging.count)")
        #expect(merging.allSatisfy { $0.bytesDone < $0.bytesTotal })
        #expect(!FileManager.default.fileExists(atPath: fixture.output("late").path))
        #expect(leftovers().isEmpty, "partial files left: \(leftovers())")

        // The same request without a cancel completes (the flag is per merge).
        _ = try MergeEngine.merge(request("late"), cancellation: MergeCancellation())
        #expect(FileManager.default.fileExists(atPath: fixture.output("late").appendingPathComponent("model.safetensors.index.json").path))
        #expect(leftovers().isEmpty)
    }

    @Test("a full disk fails the merge with a clear error and leaves nothing behind")
    func diskFull() throws {
        let fixture = try MergeFixture(models: 2)
        defer { fixture.cleanup() }
        let mountPoint = fixture.root.appendingPathComponent("tiny")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: false)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint.path]
        mount.standardError = FileHandle.nullDevice
        guard (try? mount.run()) != nil else {
            print("skipped: cannot run mount")
            return
        }
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            print("skipped: mounting a tmpfs needs root (mount exited \(mount.terminationStatus))")
            return
        }
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [mountPoint.path]
            try? umount.run()
            umount.waitUntilExit()
        }
        let out = mountPoint.appendingPathComponent("merged")
        expectFailure(fixture, MergeRequest(models: fixture.models, blocks: Self.blocks, weights: BlockWeights(betas: [0.5, 0.5, 0.5, 0.5, 0.5]), output: out),
                      mentions: ["No space left on device", out.path])
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint.path).isEmpty)
    }
}

/// Round-to-nearest-even of an exactly representable-in-Float value to bf16, by comparing the
/// distances to the two neighbouring bf16 numbers in Double (independent of the library's bit trick).
func referenceBF16(_ x: Double) -> UInt16 {
    if x.isInfinite { return x > 0 ? 0x7F80 : 0xFF80 }
    let f = Float(x)
    precondition(Double(f) == x || abs(x) > Double(Float.greatestFiniteMagnitude))
    if abs(x) >= Double(Float(bitPattern: 0x7F7F_8000)) {  // at or past the halfway point to bf16 overflow
        // The largest finite bf16 is 0x7F7F; the next step would be Inf: round to Inf at or beyond its midpoint.
        return x > 0 ? 0x7F80 : 0xFF80
    }
    let truncated = UInt16(f.bitPattern >> 16)  // toward zero in magnitude
    let lower = Double(Float(bitPattern: UInt32(truncated) << 16))
    let upper = Double(Float(bitPattern: UInt32(truncated &+ 1) << 16))
    let dl = abs(x - lower), du = abs(upper - x)
    if dl < du { return truncated }
    if du < dl { return truncated &+ 1 }
    return truncated & 1 == 0 ? truncated : truncated &+ 1
}

/// A lock-protected value for callbacks from the merge's threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
