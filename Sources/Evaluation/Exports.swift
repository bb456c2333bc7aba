// The harness's JSON values are DynamicJSON's: users of Evaluation see `JSONValue` without importing it.
@_exported import DynamicJSON
