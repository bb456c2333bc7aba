import Foundation

// The rules of Protocol/README.md §4 that types alone do not express: ranges, lengths, patterns and
// cross-field rules. The codec applies them when decoding and before encoding, so a peer never sends
// what the other would reject.

/// A broken rule: the field's path and what was expected.
struct FieldProblem: Error {
    var field: String
    var reason: String
}

/// Throws unless `condition` holds.
private func check(_ condition: Bool, _ field: @autoclosure () -> String, _ reason: @autoclosure () -> String) throws(FieldProblem) {
    if !condition { throw FieldProblem(field: field(), reason: reason()) }
}

/// Length in Unicode code points, as JSON Schema's `maxLength` counts.
private func length(_ text: String) -> Int { text.unicodeScalars.count }

private func checkLength(_ text: String, _ field: String, min: Int = 0, max: Int) throws(FieldProblem) {
    let count = length(text)
    if min > 0 && count < min { throw FieldProblem(field: field, reason: "must not be empty") }
    try check(count <= max, field, "at most \(max) characters, got \(count)")
}

private func checkIDs(trial: Int64, attempt: Int, prefix: String = "") throws(FieldProblem) {
    try check(trial >= 1 && trial <= maxSafeInteger, prefix + "trial", "expected an integer >= 1, got \(trial)")
    try check(attempt >= 1, prefix + "attempt", "expected an integer >= 1, got \(attempt)")
}

private func checkCode(_ code: String, _ field: String) throws(FieldProblem) {
    let valid = !code.isEmpty && code.utf8.count <= 64
        && code.utf8.first.map { $0 >= 0x41 && $0 <= 0x5A } == true
        && code.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    try check(valid, field, "expected an upper-case code like EVAL_FAILED, got \"\(code)\"")
}

private func checkNumber(_ value: Double, _ field: String, min: Double, max: Double = .infinity, exclusiveMin: Bool = false) throws(FieldProblem) {
    let aboveMin = exclusiveMin ? value > min : value >= min
    let bound = max.isFinite ? "in [\(min), \(max)]" : (exclusiveMin ? "> \(min)" : ">= \(min)")
    try check(value.isFinite && aboveMin && value <= max, field, "expected a number \(bound), got \(value)")
}

private let maxSafeInteger: Int64 = 9_007_199_254_740_991

/// Whether `name` is a valid worker name (and ZeroMQ routing id): `^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`.
public func isValidWorkerName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...128).contains(bytes.count) else { return false }
    func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
    return alnum(bytes[0]) && bytes.dropFirst().allSatisfy { alnum($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x3A || $0 == 0x40 || $0 == 0x2D }
}

extension Message {
    /// Checks the rules of the spec that go beyond types.
    func validate() throws(FieldProblem) {
        switch self {
        case .ready(let body):
            try check(isValidWorkerName(body.worker), "worker", "expected 1-128 characters [A-Za-z0-9._:@-] starting with a letter or digit, got \"\(body.worker)\"")
            try check(body.pid >= 1, "pid", "expected an integer >= 1, got \(body.pid)")
            try checkLength(body.host, "host", min: 1, max: 255)
            try check(body.capabilities.slots >= 1, "capabilities.slots", "expected an integer >= 1, got \(body.capabilities.slots)")
            for (index, ref) in (body.activeTrials ?? []).enumerated() {
                try checkIDs(trial: ref.trial, attempt: ref.attempt, prefix: "activeTrials[\(index)].")
            }
        case .workerHeartbeat(let body):
            for (index, ref) in body.activeTrials.enumerated() {
                try checkIDs(trial: ref.trial, attempt: ref.attempt, prefix: "activeTrials[\(index)].")
            }
        case .progress(let body):
            try checkIDs(trial: body.trial, attempt: body.attempt)
            try check(body.done >= 0, "done", "expected an integer >= 0, got \(body.done)")
            try check(body.total >= 0, "total", "expected an integer >= 0, got \(body.total)")
            try check(body.total == 0 || body.done <= body.total, "done", "must not exceed total (\(body.total)), got \(body.done)")
            if let message = body.message { try checkLength(message, "message", max: 1024) }
        case .result(let body):
            try checkIDs(trial: body.trial, attempt: body.attempt)
            try check(!body.metrics.benchmarks.isEmpty, "metrics.benchmarks", "expected at least one benchmark")
            for (name, metrics) in body.metrics.benchmarks.sorted(by: { $0.key < $1.key }) {
                let path = "metrics.benchmarks.\(name)"
                try check(!name.isEmpty, "metrics.benchmarks", "benchmark names must not be empty")
                try checkNumber(metrics.accuracy, path + ".accuracy", min: 0, max: 1)
                try checkNumber(metrics.tokens, path + ".tokens", min: 0)
                if let items = metrics.items { try check(items >= 0, path + ".items", "expected an integer >= 0, got \(items)") }
                for (key, value) in metrics.extra {
                    try check(value.isFinite, path + "." + key, "numbers must be finite")
                }
            }
            try checkNumber(body.durations.merge, "durations.merge", min: 0)
            try checkNumber(body.durations.evaluate, "durations.evaluate", min: 0)
            for (index, item) in (body.items ?? []).enumerated() {
                try check(body.metrics.benchmarks[item.benchmark] != nil, "items[\(index)].benchmark",
                          "\"\(item.benchmark)\" is not a benchmark in metrics.benchmarks")
                try check(item.tokens >= 0, "items[\(index)].tokens", "expected an integer >= 0, got \(item.tokens)")
            }
        case .failure(let body):
            try checkIDs(trial: body.trial, attempt: body.attempt)
            try checkCode(body.code.rawValue, "code")
            try checkLength(body.reason, "reason", min: 1, max: 4096)
            try checkLength(body.logTail, "logTail", max: 65536)
        case .bye(let body):
            try checkLength(body.reason, "reason", max: 4096)
        case .welcome(let body):
            try checkLength(body.study, "study", min: 1, max: 4096)
            try checkNumber(body.heartbeatInterval, "heartbeatInterval", min: 0, exclusiveMin: true)
            try check(body.leaseBeats >= 1, "leaseBeats", "expected an integer >= 1, got \(body.leaseBeats)")
            let revision = body.protocolVersion.split(separator: ".", omittingEmptySubsequences: false)
            try check(revision.count == 2 && revision[0] == "1" && !revision[1].isEmpty && revision[1].allSatisfy(\.isASCII) && revision[1].allSatisfy(\.isNumber),
                      "protocolVersion", "expected \"1.MINOR\", got \"\(body.protocolVersion)\"")
        case .task(let body):
            try validateTask(body)
        case .coordinatorHeartbeat:
            break
        case .cancel(let body):
            try checkIDs(trial: body.trial, attempt: body.attempt)
            try checkLength(body.reason, "reason", max: 4096)
        case .ack(let body):
            try checkIDs(trial: body.trial, attempt: body.attempt)
        case .shutdown(let body):
            try checkLength(body.reason, "reason", max: 4096)
        case .error(let body):
            try checkCode(body.code.rawValue, "code")
            try checkLength(body.message, "message", max: 4096)
            if let type = body.inReplyTo { try checkLength(type, "inReplyTo", max: 32) }
            try check((body.trial == nil) == (body.attempt == nil), body.trial == nil ? "trial" : "attempt",
                      "expected \"trial\" and \"attempt\" together or neither")
            if let ref = body.attemptRef { try checkIDs(trial: ref.trial, attempt: ref.attempt) }
        }
    }
}

private func validateTask(_ body: TaskBody) throws(FieldProblem) {
    try checkIDs(trial: body.trial, attempt: body.attempt)
    let partition = body.partition
    try check(partition.layers >= 1, "partition.layers", "expected an integer >= 1, got \(partition.layers)")
    try check(!partition.blocks.isEmpty, "partition.blocks", "expected at least one block")
    var next = 0
    for (index, block) in partition.blocks.enumerated() {
        let path = "partition.blocks[\(index)]"
        try check(block.count == 2, path, "expected [first, last], got \(block.count) numbers")
        try check(block[0] == next, path, "expected the block to start at layer \(next) (blocks are contiguous from 0), got \(block[0])")
        try check(block[1] >= block[0], path, "last (\(block[1])) is before first (\(block[0]))")
        next = block[1] + 1
    }
    try check(next == partition.layers, "partition.blocks", "blocks end at layer \(next - 1), expected \(partition.layers - 1) (layers = \(partition.layers))")
    try check(body.weights.count == partition.dimension, "weights",
              "expected \(partition.dimension) numbers (embedding, \(partition.blocks.count) blocks, head), got \(body.weights.count)")
    for (index, weight) in body.weights.enumerated() {
        try checkNumber(weight, "weights[\(index)]", min: 0, max: 1)
    }
    try check(body.models.count == 2, "models", "expected exactly 2 models in BAMBO/1, got \(body.models.count)")
    for (index, model) in body.models.enumerated() {
        try checkLength(model.name, "models[\(index)].name", min: 1, max: 4096)
        try checkLength(model.path, "models[\(index)].path", min: 1, max: 4096)
    }
    if let base = body.base {
        try checkLength(base.name, "base.name", min: 1, max: 4096)
        try checkLength(base.path, "base.path", min: 1, max: 4096)
    }
    try checkLength(body.merge.method, "merge.method", min: 1, max: 256)
    try check(body.merge.seed >= 0, "merge.seed", "expected an integer >= 0, got \(body.merge.seed)")
    for (key, value) in body.merge.params {
        try check(value.isFinite, "merge.params.\(key)", "numbers must be finite")
    }
    guard let kindValue = body.evaluator["kind"] else {
        throw FieldProblem(field: "evaluator.kind", reason: "missing required field")
    }
    guard case .string(let kind) = kindValue, !kind.isEmpty else {
        throw FieldProblem(field: "evaluator.kind", reason: "expected a non-empty string naming the evaluator")
    }
    for (key, value) in body.evaluator {
        try check(value.isFinite, "evaluator.\(key)", "numbers must be finite")
    }
    if let deadline = body.deadline {
        try checkNumber(deadline, "deadline", min: 0, exclusiveMin: true)
    }
}

extension JSONValue {
    /// Whether every number in the value is finite (JSON cannot carry NaN or infinity).
    var isFinite: Bool {
        switch self {
        case .number(let value): value.isFinite
        case .array(let values): values.allSatisfy(\.isFinite)
        case .object(let members): members.values.allSatisfy(\.isFinite)
        case .null, .bool, .string: true
        }
    }
}
