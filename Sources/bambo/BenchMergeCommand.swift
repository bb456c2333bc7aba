import ArgumentParser
import Foundation
import Merging
import Partitioning
import SafeTensors
#if canImport(Glibc)
import Glibc
#endif

struct BenchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Time `bambo merge` against the physical bound (read the inputs + write the output).",
        discussion: """
        Generates two Qwen3-shaped bf16 fine-tunes of a base once into a cache \
        directory, then in one run measures
          bound  reading every input byte from the page cache (after a warming
                 read) plus writing as many bytes as the merged model has to the
                 output's file system, fsync'd as the merge does (the faster of
                 two writes);
          merge  `bambo merge` (linear, K blocks, distinct weights) as a child
                 process: wall time and peak resident memory (wait4's maxrss);
        and prints both times, bound / merge (target ≥ 0.7) and the peak RSS. \
        With --mergekit PATH/mergekit-yaml it also runs mergekit on the same \
        merge (exported by `bambo merge --emit-mergekit`): time and peak RSS.

        Example:
          bambo bench merge --size-gb 4 --layers 36
        """)

    @Option(name: .customLong("size-gb"), help: "Approximate size of each model in GB.")
    var sizeGB: Double = 4

    @Option(help: "Number of transformer layers.")
    var layers: Int = 36

    @Option(help: "Number of layer blocks of the merge.")
    var blocks: Int = 6

    @Option(help: ArgumentHelp("Cache directory of the generated family (default ~/.cache/bambo/bench-merge-<size>-<layers>).", valueName: "dir"))
    var cache: String?

    @Option(help: "Merge threads (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Also run this mergekit-yaml executable on the same merge.", valueName: "path"))
    var mergekit: String?

    @Flag(name: .customLong("no-fsync"), help: "Measure both the bound and the merge without fsync.")
    var noFsync = false

    func validate() throws {
        guard sizeGB > 0, sizeGB <= 1000 else { throw ValidationError("--size-gb must be in (0, 1000] (got \(sizeGB))") }
        guard layers >= 1 else { throw ValidationError("--layers must be ≥ 1 (got \(layers))") }
        guard blocks >= 1, blocks <= layers else { throw ValidationError("--blocks must be in 1…\(layers) (got \(blocks))") }
    }

    func run() throws {
        let fm = FileManager.default
        let sizeText = sizeGB == sizeGB.rounded() ? String(Int(sizeGB)) : String(sizeGB)
        let cacheURL = URL(fileURLWithPath: cache ?? (NSHomeDirectory() + "/.cache/bambo/bench-merge-\(sizeText)-\(layers)"))
        var family = SyntheticFamily.sized(totalBytesPerModel: Int(sizeGB * 1e9), layers: layers, dtype: .bf16, seed: 1)
        family.shardMaxBytes = 2_000_000_000
        try ensureFamily(family, at: cacheURL)
        let models = ["instruct", "thinking"].map { cacheURL.appendingPathComponent($0) }

        // The merge: K uniform blocks, β rising from the embedding to the head.
        let partition = try partitionLayers(differences: Array(repeating: 1, count: layers), blocks: blocks, lambda: 1, strategy: .uniform)
        let profile = LayerProfile(layerDifferences: Array(repeating: 1, count: layers), embeddingDifference: 1, headDifference: 1, norm: .l2)
        let partitionURL = cacheURL.appendingPathComponent("partition-\(blocks).json")
        try PartitionDocument(profile: profile, partition: partition, lambda: 1, strategy: .uniform).jsonData().write(to: partitionURL)
        let betas = (0..<(blocks + 2)).map { Double($0 + 1) / Double(blocks + 3) }
        let weights = BlockWeights(betas: betas).commandLineText
        let output = cacheURL.appendingPathComponent("merged")
        try? fm.removeItem(at: output)

        let inputFiles = try models.flatMap { dir in
            try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".safetensors") }.sorted().map { dir.appendingPathComponent($0).path }
        }
        let inputBytes = try inputFiles.reduce(Int64(0)) { $0 + (try fileSize($1)) }
        let outputBytes = try fm.contentsOfDirectory(atPath: models[0].path).filter { $0.hasSuffix(".safetensors") }
            .reduce(Int64(0)) { $0 + (try fileSize(models[0].appendingPathComponent($1).path)) }
        Terminal.error("inputs: 2 × \(ProgressLine.bytes(Double(inputBytes / 2))), \(layers) layers, hidden \(family.hidden), vocab \(family.vocab); \(blocks) blocks, β = \(weights)")

        // Bound: read from page cache (after one warming read) + write the output's size, fsync'd.
        // sync() first, so neither measurement waits for write-back of earlier files.
        sync()
        _ = try readAll(inputFiles)
        let readSeconds = try readAll(inputFiles)
        // The disk is shared: the best of two writes is the bound (conservative for the ratio).
        let writeSeconds = try (0..<2).map { _ in
            sync()
            return try writeBytes(outputBytes, to: cacheURL.appendingPathComponent("bound-write.tmp"), sync: !noFsync)
        }.min()!
        let bound = readSeconds + writeSeconds

        // The merge, as a child process (inputs still in the page cache).
        sync()
        _ = try readAll(inputFiles)
        let mergeArguments = ["merge", "--model", models[0].path, "--model", models[1].path, "--partition", partitionURL.path, "--weights", weights]
        var arguments = mergeArguments + ["--out", output.path, "--shard-mb", "2000"]
        if let threads { arguments += ["--threads", String(threads)] }
        if noFsync { arguments.append("--no-fsync") }
        let merge = try MeasuredProcess.run(MeasuredProcess.selfExecutable, arguments, quietStdout: true)
        guard merge.status == 0 else { throw ValidationError("bambo merge failed (exit \(merge.status))") }
        let mergedBytes = try fm.contentsOfDirectory(atPath: output.path).filter { $0.hasSuffix(".safetensors") }
            .reduce(Int64(0)) { $0 + (try fileSize(output.appendingPathComponent($1).path)) }
        try? fm.removeItem(at: output)

        print("bench merge: 2 × \(ProgressLine.bytes(Double(inputBytes / 2))) bf16 → \(ProgressLine.bytes(Double(mergedBytes))), linear, \(blocks) blocks, \(threads ?? ProcessInfo.processInfo.activeProcessorCount) threads, fsync \(noFsync ? "off" : "on")")
        print(String(format: "  bound   %7.2f s  (read inputs from page cache %.2f s = %@/s, write + fsync output %.2f s = %@/s)",
                     bound, readSeconds, ProgressLine.bytes(Double(inputBytes) / readSeconds), writeSeconds, ProgressLine.bytes(Double(outputBytes) / writeSeconds)))
        print(String(format: "  merge   %7.2f s  peak RSS %@", merge.seconds, ProgressLine.bytes(Double(merge.peakRSSBytes))))
        let ratio = bound / merge.seconds
        print(String(format: "  ratio bound / merge = %.2f (target ≥ 0.70: %@); peak RSS %@ 1 GiB", ratio, ratio >= 0.7 ? "met" : "missed", merge.peakRSSBytes < 1 << 30 ? "<" : "≥"))

        if let mergekit {
            let yamlURL = cacheURL.appendingPathComponent("mergekit-linear.yaml")
            let emit = try MeasuredProcess.run(MeasuredProcess.selfExecutable, mergeArguments + ["--dtype", "bfloat16", "--emit-mergekit", yamlURL.path], quietStdout: true)
            guard emit.status == 0 else { throw ValidationError("bambo merge --emit-mergekit failed (exit \(emit.status))") }
            let mergekitOut = cacheURL.appendingPathComponent("merged-mergekit")
            try? fm.removeItem(at: mergekitOut)
            let run = try MeasuredProcess.run(mergekit, [yamlURL.path, mergekitOut.path], quietStdout: true)
            try? fm.removeItem(at: mergekitOut)
            guard run.status == 0 else { throw ValidationError("mergekit failed (exit \(run.status))") }
            print(String(format: "  mergekit %6.2f s  peak RSS %@  (bound / mergekit = %.2f; bambo is %.1f× faster)",
                         run.seconds, ProgressLine.bytes(Double(run.peakRSSBytes)), bound / run.seconds, run.seconds / merge.seconds))
        }
    }

    /// Writes the family unless the cache already holds exactly this one.
    private func ensureFamily(_ family: SyntheticFamily, at directory: URL) throws {
        let fm = FileManager.default
        let marker = directory.appendingPathComponent("family.json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let description = try encoder.encode(family)
        if let existing = try? Data(contentsOf: marker), existing == description { return }
        try? fm.removeItem(at: directory)
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let progress = ProgressLine("generating the benchmark family")
        try family.write(to: directory) { done, total in progress.update(bytesDone: done, of: total) }
        progress.finish()
        try? fm.removeItem(at: directory.appendingPathComponent("base"))  // the linear merge does not use it
        try description.write(to: marker)
    }
}

private func fileSize(_ path: String) throws -> Int64 {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.size] as? NSNumber)?.int64Value ?? 0
}

/// Reads the files sequentially with read(2) into one 16 MB buffer; returns the seconds taken.
private func readAll(_ paths: [String]) throws -> Double {
    let size = 16 << 20
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    defer { buffer.deallocate() }
    let start = Date()
    var checksum: UInt8 = 0
    for path in paths {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ValidationError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while true {
            let n = read(fd, buffer, size)
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw ValidationError("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            checksum ^= buffer.load(fromByteOffset: n - 1, as: UInt8.self)
        }
    }
    _ = checksum
    return Date().timeIntervalSince(start)
}

/// Writes `bytes` bytes to `url` in 16 MB writes, fsyncs when asked, removes the file; returns the seconds.
private func writeBytes(_ bytes: Int64, to url: URL, sync: Bool) throws -> Double {
    let size = 16 << 20
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    defer { buffer.deallocate() }
    for i in 0..<size { buffer.storeBytes(of: UInt8(truncatingIfNeeded: i &* 31), toByteOffset: i, as: UInt8.self) }
    defer { unlink(url.path) }
    let start = Date()
    let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw ValidationError("cannot create \(url.path): \(String(cString: strerror(errno)))") }
    var left = bytes
    while left > 0 {
        let n = write(fd, buffer, Int(min(Int64(size), left)))
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { close(fd); throw ValidationError("write \(url.path): \(String(cString: strerror(errno)))") }
        left -= Int64(n)
    }
    if sync { fsync(fd) }
    close(fd)
    return Date().timeIntervalSince(start)
}
