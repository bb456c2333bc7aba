import DynamicJSON
import Foundation

/// One tensor as described by a safetensors header.
public struct TensorInfo: Sendable, Equatable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range inside the data section (after the header).
    public var dataOffsets: Range<Int>
    /// Product of `shape` (1 for a scalar).
    public var elementCount: Int
    public var byteCount: Int { dataOffsets.count }
}

/// A parsed and fully validated safetensors header. Pure: works on bytes, does no I/O.
///
/// Validation: the 8-byte little-endian header length lies within the file and under
/// ``maxHeaderLength``; the header is a JSON object; every entry has a known dtype, a shape of
/// non-negative integers and `data_offsets` whose span equals shape × dtype size (overflow
/// guarded); ranges are in bounds, do not overlap, and cover the data section exactly.
public struct SafeTensorsHeader: Sendable, Equatable {
    /// Upper bound on the header length (bytes).
    public static let maxHeaderLength = 100_000_000

    /// Tensors ordered by their position in the data section.
    public var tensors: [TensorInfo]
    /// The `__metadata__` entry, when present.
    public var metadata: [String: String]?
    /// Offset of the data section in the file (8 + header length).
    public var dataStart: Int
    /// Size of the data section in bytes.
    public var dataSize: Int

    /// Parses the header at the start of `fileBytes` (the whole file). `file` names the file in errors.
    public static func parse(fileBytes: UnsafeRawBufferPointer, file: String) throws -> SafeTensorsHeader {
        let fileSize = fileBytes.count
        func fail(_ tensor: String?, _ kind: SafeTensorsError.Kind) -> SafeTensorsError {
            SafeTensorsError(file: file, tensor: tensor, kind)
        }
        func fail(_ kind: SafeTensorsError.Kind) -> SafeTensorsError { fail(nil, kind) }
        guard fileSize >= 8 else { throw fail(.fileTooSmall(size: fileSize)) }
        let length = UInt64(littleEndian: fileBytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard length <= UInt64(maxHeaderLength) else {
            throw fail(.headerTooLarge(length: length, limit: maxHeaderLength))
        }
        guard length <= UInt64(fileSize - 8) else {
            throw fail(.headerBeyondFile(length: length, fileSize: fileSize))
        }
        let headerLength = Int(length)
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart
        let root: JSONValue
        do {
            root = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: fileBytes[8..<dataStart]))
        } catch {
            throw fail(.invalidJSON(Self.describe(error)))
        }
        guard case let .object(entries) = root else { throw fail(.headerNotAnObject) }

        var metadata: [String: String]?
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(entries.count)
        for name in CanonicalJSON.sortedKeys(entries.keys) {
            let value = entries[name]!
            if name == "__metadata__" {
                metadata = try parseMetadata(value, fail: { fail(nil, .invalidMetadata($0)) })
                continue
            }
            tensors.append(try parseEntry(name: name, value: value, dataSize: dataSize, fail: fail))
        }

        // Sorted by position, consecutive ranges must meet exactly: no overlap, no gap, full coverage.
        tensors.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        var cursor = 0
        var cursorOwner: String?
        for tensor in tensors {
            let range = tensor.dataOffsets
            if range.lowerBound < cursor {
                throw fail(tensor.name, .overlappingTensors(other: cursorOwner ?? "?"))
            }
            if range.lowerBound > cursor {
                throw fail(tensor.name, .gapInData(begin: cursor, end: range.lowerBound))
            }
            if range.upperBound > cursor || cursorOwner == nil {
                cursor = range.upperBound
                cursorOwner = tensor.name
            }
        }
        guard cursor == dataSize else {
            throw fail(cursorOwner, .dataNotCovered(coveredBytes: cursor, dataSize: dataSize))
        }
        return SafeTensorsHeader(tensors: tensors, metadata: metadata, dataStart: dataStart, dataSize: dataSize)
    }

    private static func parseMetadata(_ value: JSONValue, fail: (String) -> SafeTensorsError) throws -> [String: String] {
        guard case let .object(fields) = value else { throw fail("expected an object") }
        var result: [String: String] = [:]
        for (key, field) in fields {
            guard case let .string(s) = field else { throw fail("value of \"\(key)\" is not a string") }
            result[key] = s
        }
        return result
    }

    private static func parseEntry(
        name: String, value: JSONValue, dataSize: Int,
        fail: (String?, SafeTensorsError.Kind) -> SafeTensorsError
    ) throws -> TensorInfo {
        guard case let .object(fields) = value else {
            throw fail(name, .invalidEntry("expected an object with dtype, shape and data_offsets"))
        }
        guard case let .string(dtypeName)? = fields["dtype"] else {
            throw fail(name, .invalidEntry("expected \"dtype\" to be a string"))
        }
        guard let dtype = DType(rawValue: dtypeName) else { throw fail(name, .unknownDType(dtypeName)) }
        guard case let .array(shapeValues)? = fields["shape"] else {
            throw fail(name, .invalidEntry("expected \"shape\" to be an array of non-negative integers"))
        }
        var shape: [Int] = []
        for dim in shapeValues {
            guard let d = dim.nonNegativeInteger, let di = Int(exactly: d) else {
                throw fail(name, .invalidEntry("expected \"shape\" to be an array of non-negative integers"))
            }
            shape.append(di)
        }
        guard case let .array(offsetValues)? = fields["data_offsets"], offsetValues.count == 2,
            let begin = offsetValues[0].nonNegativeInteger, let end = offsetValues[1].nonNegativeInteger
        else {
            throw fail(name, .invalidEntry("expected \"data_offsets\" to be [begin, end] of non-negative integers"))
        }
        guard begin <= end else { throw fail(name, .invalidOffsets(begin: begin, end: end)) }
        guard end <= UInt64(dataSize) else { throw fail(name, .offsetsOutOfBounds(end: end, dataSize: dataSize)) }
        let span = Int(end - begin)
        let elementCount = TensorDeclaration.elementCount(shape)
        let expectedBytes = elementCount.flatMap { n -> Int? in
            let (bytes, overflow) = n.multipliedReportingOverflow(by: dtype.byteSize)
            return overflow ? nil : bytes
        }
        guard let elementCount, expectedBytes == span else {
            throw fail(name, .shapeMismatch(shape: shape, dtype: dtype, expectedBytes: expectedBytes, actualBytes: span))
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: Int(begin)..<Int(end), elementCount: elementCount)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let DecodingError.dataCorrupted(context):
            let underlying = (context.underlyingError as? NSError).map { " (\($0.localizedDescription))" } ?? ""
            return context.debugDescription + underlying
        default:
            return "\(error)"
        }
    }
}
