// The protocol's JSON values are DynamicJSON's: users of BamboProtocol see `JSONValue` without importing it.
@_exported import DynamicJSON
