/// An error reading or writing safetensors data. The message names the file, the tensor (when one
/// is at fault) and what was expected.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, with the values involved.
    public enum Kind: Equatable, Sendable {
        /// The file could not be opened, mapped, read or written (`errno` and the failing call).
        case io(operation: String, errno: Int32)
        /// The file is shorter than the 8-byte header length prefix.
        case fileTooSmall(size: Int)
        /// The header length exceeds the sanity bound.
        case headerTooLarge(length: UInt64, limit: Int)
        /// The header length runs past the end of the file.
        case headerBeyondFile(length: UInt64, fileSize: Int)
        /// The header is not valid JSON (or not UTF-8).
        case invalidJSON(String)
        /// The header's top level is not a JSON object.
        case headerNotAnObject
        /// A tensor entry is malformed (missing or wrongly typed field).
        case invalidEntry(String)
        /// A dtype string this library does not know.
        case unknownDType(String)
        /// `data_offsets` are not `[begin, end]` with begin ≤ end.
        case invalidOffsets(begin: UInt64, end: UInt64)
        /// shape × dtype size differs from the byte range (or overflows).
        case shapeMismatch(shape: [Int], dtype: DType, expectedBytes: Int?, actualBytes: Int)
        /// The byte range runs past the end of the data section.
        case offsetsOutOfBounds(end: UInt64, dataSize: Int)
        /// Two tensors' byte ranges overlap.
        case overlappingTensors(other: String)
        /// Bytes between two tensors (or before the first) belong to no tensor.
        case gapInData(begin: Int, end: Int)
        /// The tensors do not reach the end of the data section.
        case dataNotCovered(coveredBytes: Int, dataSize: Int)
        /// `__metadata__` is not an object of strings.
        case invalidMetadata(String)
        /// A tensor that was asked for is not in the file or checkpoint.
        case tensorNotFound
        /// The tensor's dtype cannot be converted to or from `Float`.
        case notFloatConvertible(DType)
        /// A caller's buffer does not hold exactly the elements asked for.
        case bufferSizeMismatch(expected: Int, actual: Int)
        /// An element range outside the tensor.
        case elementRangeOutOfBounds(lower: Int, upper: Int, count: Int)
        /// The checkpoint's index file is malformed.
        case invalidIndex(String)
        /// The directory holds neither `model.safetensors` nor `model.safetensors.index.json`.
        case noCheckpointFound
        /// The same tensor name appears in more than one place.
        case duplicateTensor(file2: String)
        /// A writer was given a declaration it cannot write (name, shape, metadata).
        case invalidDeclaration(String)
        /// A write that does not match what was declared (wrong tensor, too many or too few bytes).
        case writeMismatch(String)
        /// `config.json` is missing or not a JSON object.
        case invalidConfig(String)
    }

    /// The file involved (path as given).
    public var file: String
    /// The tensor at fault, when there is one.
    public var tensor: String?
    public var kind: Kind

    public init(file: String, tensor: String? = nil, _ kind: Kind) {
        self.file = file
        self.tensor = tensor
        self.kind = kind
    }

    public var description: String {
        var where_ = "safetensors file \(file)"
        if let tensor { where_ += ", tensor \"\(tensor)\"" }
        return "\(where_): \(explanation)"
    }

    private var explanation: String {
        switch kind {
        case let .io(operation, errno):
            return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case let .fileTooSmall(size):
            return "file is \(size) bytes; expected at least 8 bytes (the little-endian header length)"
        case let .headerTooLarge(length, limit):
            return "header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerBeyondFile(length, fileSize):
            return "header length \(length) runs past the end of the file (\(fileSize) bytes, expected at most \(max(0, fileSize - 8)))"
        case let .invalidJSON(detail):
            return "header is not valid JSON: \(detail)"
        case .headerNotAnObject:
            return "header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}"
        case let .invalidEntry(detail):
            return "malformed entry: \(detail)"
        case let .unknownDType(name):
            return "unknown dtype \"\(name)\"; expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .invalidOffsets(begin, end):
            return "data_offsets [\(begin), \(end)] must satisfy begin <= end"
        case let .shapeMismatch(shape, dtype, expected, actual):
            let exp = expected.map { "\($0) bytes" } ?? "a size that overflows"
            return "shape \(shape) of \(dtype.rawValue) needs \(exp), but data_offsets span \(actual) bytes"
        case let .offsetsOutOfBounds(end, dataSize):
            return "data_offsets end \(end) is beyond the data section of \(dataSize) bytes"
        case let .overlappingTensors(other):
            return "byte range overlaps that of tensor \"\(other)\""
        case let .gapInData(begin, end):
            return "bytes \(begin)..<\(end) of the data section belong to no tensor; expected tensors to cover it without gaps"
        case let .dataNotCovered(covered, dataSize):
            return "tensors cover \(covered) bytes but the data section has \(dataSize); expected exact coverage"
        case let .invalidMetadata(detail):
            return "__metadata__ must map strings to strings: \(detail)"
        case .tensorNotFound:
            return "no such tensor"
        case let .notFloatConvertible(dtype):
            return "dtype \(dtype.rawValue) cannot be converted to Float; expected BF16, F16 or F32"
        case let .bufferSizeMismatch(expected, actual):
            return "buffer holds \(actual) elements; expected \(expected)"
        case let .elementRangeOutOfBounds(lower, upper, count):
            return "element range \(lower)..<\(upper) is outside the tensor's \(count) elements"
        case let .invalidIndex(detail):
            return "invalid shard index: \(detail)"
        case .noCheckpointFound:
            return "expected model.safetensors or model.safetensors.index.json in the directory"
        case let .duplicateTensor(file2):
            return "tensor appears again in \(file2); each tensor must be stored once"
        case let .invalidDeclaration(detail):
            return "invalid tensor declaration: \(detail)"
        case let .writeMismatch(detail):
            return "write does not match the declared tensors: \(detail)"
        case let .invalidConfig(detail):
            return "config: \(detail)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
