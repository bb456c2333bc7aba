/// The element types of the safetensors format, spelled as in the file header.
///
/// `BF16`, `F16` and `F32` convert to and from `Float` (see ``FloatCodec``); every other type is
/// carried as raw bytes.
public enum DType: String, Codable, Sendable, CaseIterable, Hashable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3fnuz = "F8_E4M3FNUZ"
    case f8e5m2fnuz = "F8_E5M2FNUZ"
    case c64 = "C64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64, .c64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz: 1
        }
    }

    /// Whether values of this type are read as and written from `Float` (BF16, F16, F32).
    public var isFloatConvertible: Bool {
        switch self {
        case .f32, .f16, .bf16: true
        default: false
        }
    }
}
