import DynamicJSON

/// Safetensors headers, shard indexes and `config.json` are read as JSON with exact integers.
public typealias JSONValue = ExactJSONValue
