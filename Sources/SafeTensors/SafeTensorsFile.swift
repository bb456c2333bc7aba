import Foundation

/// A memory-mapped, validated `.safetensors` file. Tensor data is read straight from the mapping.
public final class SafeTensorsFile: Sendable {
    public let url: URL
    public let header: SafeTensorsHeader
    private let mapping: MappedFile
    private let index: [String: Int]

    /// Maps the file read-only and validates its header (see ``SafeTensorsHeader``).
    public init(url: URL) throws {
        self.url = url
        mapping = try MappedFile(path: url.path)
        header = try SafeTensorsHeader.parse(fileBytes: mapping.bytes, file: url.path)
        var index: [String: Int] = [:]
        for (i, t) in header.tensors.enumerated() { index[t.name] = i }
        self.index = index
    }

    /// Tensors in data order.
    public var tensors: [TensorInfo] { header.tensors }
    /// The `__metadata__` entry, when present.
    public var metadata: [String: String]? { header.metadata }
    /// File size in bytes.
    public var fileSize: Int { mapping.size }

    /// The tensor called `name`.
    public func info(_ name: String) throws -> TensorInfo {
        guard let i = index[name] else { throw SafeTensorsError(file: url.path, tensor: name, .tensorNotFound) }
        return header.tensors[i]
    }

    /// Calls `body` with the tensor's raw little-endian bytes, without copying. The pointer is valid
    /// only inside `body`.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let t = try info(name)
        return try withExtendedLifetime(mapping) {
            try body(UnsafeRawBufferPointer(rebasing: mapping.bytes[(header.dataStart + t.dataOffsets.lowerBound)..<(header.dataStart + t.dataOffsets.upperBound)]))
        }
    }

    /// Calls `body` with the raw bytes of the elements `elements` of the tensor, without copying.
    public func withRawBytes<R>(of name: String, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let t = try info(name)
        try checkRange(elements, of: t)
        let start = header.dataStart + t.dataOffsets.lowerBound + elements.lowerBound * t.dtype.byteSize
        return try withExtendedLifetime(mapping) {
            try body(UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + elements.count * t.dtype.byteSize)]))
        }
    }

    /// Converts the elements `elements` of a BF16/F16/F32 tensor to `Float` into `out`
    /// (`out.count` must equal `elements.count`).
    public func readFloats(of name: String, elements: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
        let t = try info(name)
        guard t.dtype.isFloatConvertible else { throw SafeTensorsError(file: url.path, tensor: name, .notFloatConvertible(t.dtype)) }
        guard out.count == elements.count else {
            throw SafeTensorsError(file: url.path, tensor: name, .bufferSizeMismatch(expected: elements.count, actual: out.count))
        }
        try withRawBytes(of: name, elements: elements) { FloatCodec.decode($0, as: t.dtype, into: out) }
    }

    /// The tensor's values (or those of `elements`) as `Float`.
    public func floats(of name: String, elements: Range<Int>? = nil) throws -> [Float] {
        let t = try info(name)
        let range = elements ?? 0..<t.elementCount
        try checkRange(range, of: t)
        return try [Float](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            try readFloats(of: name, elements: range, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<range.count]))
            initialized = range.count
        }
    }

    /// Hints that the elements `elements` of the tensor (all of it when `nil`) will be read soon
    /// (`willNeed`), or are done with so their pages may leave this process's memory (they are
    /// read again from the file if touched later). Keeps resident memory bounded while streaming.
    public func advise(_ name: String, elements: Range<Int>? = nil, willNeed: Bool) {
        guard let i = index[name] else { return }
        let t = header.tensors[i]
        let range = elements ?? 0..<t.elementCount
        guard range.lowerBound >= 0, range.upperBound <= t.elementCount else { return }
        let start = header.dataStart + t.dataOffsets.lowerBound + range.lowerBound * t.dtype.byteSize
        mapping.advise(start..<(start + range.count * t.dtype.byteSize), willNeed: willNeed)
    }

    private func checkRange(_ elements: Range<Int>, of t: TensorInfo) throws {
        guard elements.lowerBound >= 0, elements.upperBound <= t.elementCount else {
            throw SafeTensorsError(file: url.path, tensor: t.name, .elementRangeOutOfBounds(lower: elements.lowerBound, upper: elements.upperBound, count: t.elementCount))
        }
    }
}
