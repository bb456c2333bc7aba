import DynamicJSON
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor to be written: declared up front so the header can be written before the data.
public struct TensorDeclaration: Sendable, Equatable, Hashable, Codable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// Product of the shape, or `nil` when a dimension is negative or the product overflows.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }

    /// Number of elements (`nil` on overflow or a negative dimension).
    public var elementCount: Int? { Self.elementCount(shape) }

    /// Bytes of data (`nil` on overflow or a negative dimension).
    public var byteCount: Int? {
        guard let n = elementCount else { return nil }
        let (b, overflow) = n.multipliedReportingOverflow(by: dtype.byteSize)
        return overflow ? nil : b
    }
}

/// Streams one `.safetensors` file: the header is written first from the declarations, then the
/// data tensor by tensor (in declaration order), chunk by chunk, in constant memory.
///
/// Output is deterministic: header keys sorted by their UTF-8 bytes, compact JSON, padded with
/// spaces to a multiple of 8 bytes. Every write is checked against the declarations. The file is
/// written under a temporary name and renamed into place by ``finish()``; a writer released without
/// `finish()` removes its partial file.
public final class SafeTensorsWriter {
    public let url: URL
    public let tensors: [TensorDeclaration]
    private let byteCounts: [Int]
    private var current = 0
    private var writtenInCurrent = 0
    private var output: BufferedOutput?
    private let partialPath: String
    private var finished = false

    /// Validates the declarations and writes the header.
    public init(url: URL, tensors: [TensorDeclaration], metadata: [String: String]? = nil) throws {
        self.url = url
        self.tensors = tensors
        let header = try Self.headerBytes(tensors: tensors, metadata: metadata, file: url.path)
        byteCounts = tensors.map { $0.byteCount! }  // validated by headerBytes
        partialPath = url.path + ".partial"
        let output = try BufferedOutput(path: partialPath)
        self.output = output
        try header.withUnsafeBytes { try output.write($0) }
    }

    deinit {
        if !finished {
            output?.closeQuietly()
            unlink(partialPath)
        }
    }

    /// The complete header including its 8-byte length prefix, as this writer lays it out: data in
    /// declaration order, keys sorted, padded with spaces to a multiple of 8 bytes. Pure.
    public static func headerBytes(tensors: [TensorDeclaration], metadata: [String: String]?, file: String) throws -> [UInt8] {
        var entries: [String: JSONValue] = [:]
        var offset = 0
        for t in tensors {
            func bad(_ why: String) -> SafeTensorsError { SafeTensorsError(file: file, tensor: t.name, .invalidDeclaration(why)) }
            guard !t.name.isEmpty, t.name != "__metadata__" else { throw bad("name must be non-empty and not __metadata__") }
            guard entries[t.name] == nil else { throw bad("declared twice") }
            guard let bytes = t.byteCount else { throw bad("shape \(t.shape) has a negative dimension or its size overflows") }
            let (end, overflow) = offset.addingReportingOverflow(bytes)
            guard !overflow else { throw bad("total data size overflows") }
            entries[t.name] = .object([
                "dtype": .string(t.dtype.rawValue),
                "shape": .array(t.shape.map { .int(Int64($0)) }),
                "data_offsets": .array([.int(Int64(offset)), .int(Int64(end))]),
            ])
            offset = end
        }
        if let metadata {
            entries["__metadata__"] = .object(metadata.mapValues { .string($0) })
        }
        var json = ""
        CanonicalJSON.write(.object(entries), into: &json)
        var body = Array(json.utf8)
        let padded = (body.count + 7) / 8 * 8
        body.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padded - body.count))
        var result = [UInt8]()
        result.reserveCapacity(8 + body.count)
        withUnsafeBytes(of: UInt64(body.count).littleEndian) { result.append(contentsOf: $0) }
        result.append(contentsOf: body)
        return result
    }

    /// The tensor whose data is expected next, or `nil` when all data has been written.
    public var nextTensor: String? {
        var i = current
        var written = writtenInCurrent
        while i < tensors.count, written == byteCounts[i] { i += 1; written = 0 }
        return i < tensors.count ? tensors[i].name : nil
    }

    /// Appends raw little-endian bytes of `tensor`, which must be the tensor expected next.
    public func write(_ bytes: UnsafeRawBufferPointer, tensor: String) throws {
        try advance(to: tensor, adding: bytes.count)
        try output!.write(bytes)
        writtenInCurrent += bytes.count
    }

    /// Appends `values` to `tensor` (BF16/F16/F32), rounding to nearest even.
    public func write(floats values: UnsafeBufferPointer<Float>, tensor: String) throws {
        let i = try advance(to: tensor, adding: nil)
        let dtype = tensors[i].dtype
        guard dtype.isFloatConvertible else {
            throw SafeTensorsError(file: url.path, tensor: tensor, .notFloatConvertible(dtype))
        }
        let (bytes, overflow) = values.count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes <= byteCounts[i] - writtenInCurrent else {
            throw mismatch(tensor, "\(values.count) more elements exceed the declared \(tensors[i].elementCount!)")
        }
        try output!.append(encoding: values, as: dtype)
        writtenInCurrent += bytes
    }

    /// Appends `values` to `tensor` (BF16/F16/F32), rounding to nearest even.
    public func write(floats values: [Float], tensor: String) throws {
        try values.withUnsafeBufferPointer { try write(floats: $0, tensor: tensor) }
    }

    /// Checks every declared byte was written, flushes and moves the file into place.
    public func finish() throws {
        if let missing = nextTensor {
            let i = tensors.firstIndex { $0.name == missing }!
            let written = i == current ? writtenInCurrent : 0
            throw mismatch(missing, "\(written) of \(byteCounts[i]) bytes written")
        }
        try output!.close()
        output = nil
        guard rename(partialPath, url.path) == 0 else {
            throw SafeTensorsError(file: url.path, .io(operation: "rename", errno: errno))
        }
        finished = true
    }

    /// Moves to the tensor called `name` if the current one is complete; checks `adding` bytes fit.
    @discardableResult
    private func advance(to name: String, adding: Int?) throws -> Int {
        while current < tensors.count, writtenInCurrent == byteCounts[current], tensors[current].name != name {
            current += 1
            writtenInCurrent = 0
        }
        guard current < tensors.count else { throw mismatch(name, "all declared data has already been written") }
        guard tensors[current].name == name else {
            throw mismatch(name, "expected data for tensor \"\(tensors[current].name)\" next (declaration order)")
        }
        if let adding, adding > byteCounts[current] - writtenInCurrent {
            throw mismatch(name, "\(adding) more bytes exceed the declared \(byteCounts[current]) (\(writtenInCurrent) already written)")
        }
        return current
    }

    private func mismatch(_ tensor: String, _ why: String) -> SafeTensorsError {
        SafeTensorsError(file: url.path, tensor: tensor, .writeMismatch(why))
    }
}

/// A file written through a fixed-size buffer with POSIX calls.
final class BufferedOutput {
    private let path: String
    private var fd: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    static let capacity = 1 << 20

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SafeTensorsError(file: path, .io(operation: "open for writing", errno: errno)) }
        buffer = .allocate(byteCount: Self.capacity, alignment: 16)
    }

    deinit {
        closeQuietly()
        buffer.deallocate()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if used + bytes.count <= Self.capacity {
            if let src = bytes.baseAddress { (buffer.baseAddress! + used).copyMemory(from: src, byteCount: bytes.count) }
            used += bytes.count
            return
        }
        try flush()
        if bytes.count >= Self.capacity {
            try writeFully(bytes)
        } else {
            try write(bytes)
        }
    }

    /// Encodes floats straight into the buffer, a buffer-full at a time.
    func append(encoding values: UnsafeBufferPointer<Float>, as dtype: DType) throws {
        var start = 0
        while start < values.count {
            if used + dtype.byteSize > Self.capacity { try flush() }
            let n = min(values.count - start, (Self.capacity - used) / dtype.byteSize)
            FloatCodec.encode(
                UnsafeBufferPointer(rebasing: values[start..<(start + n)]), as: dtype,
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + n * dtype.byteSize)]))
            used += n * dtype.byteSize
            start += n
        }
    }

    func flush() throws {
        guard used > 0 else { return }
        try writeFully(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
        used = 0
    }

    func close() throws {
        try flush()
        let fd = self.fd
        self.fd = -1
        guard fd < 0 || systemClose(fd) == 0 else { throw SafeTensorsError(file: path, .io(operation: "close", errno: errno)) }
    }

    func closeQuietly() {
        if fd >= 0 { _ = systemClose(fd); fd = -1 }
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(file: path, .io(operation: "write", errno: errno))
            }
            offset += n
        }
    }
}

private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
