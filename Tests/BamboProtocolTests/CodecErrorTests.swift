import Foundation
import Testing

@testable import BamboProtocol

@Suite("Frames and bodies that must be rejected")
struct CodecErrorTests {
    let heartbeat = Data(#"{"activeTrials":[]}"#.utf8)

    @Test("wrong number of frames is MALFORMED", arguments: [0, 1, 2, 4, 5])
    func frameCount(_ count: Int) {
        let all = frames("HEARTBEAT", heartbeat) + [Data("extra".utf8), Data()]
        #expect(throws: ProtocolError.malformed(type: nil, field: nil, reason: "expected 3 frames (protocol id, type, body), got \(count)")) {
            try WireCodec.decode(frames: Array(all.prefix(count)), from: .worker)
        }
    }

    @Test("another protocol id or version is BAD_VERSION", arguments: ["BAMBO/2", "BAMBO/1.0", "bambo/1", "", "ZMQ"])
    func badVersion(_ version: String) throws {
        let error = try #require(throws: ProtocolError.self) {
            try WireCodec.decode(frames: frames("HEARTBEAT", heartbeat, version: version), from: .worker)
        }
        #expect(error == .badVersion(received: version))
        #expect(error.code == .badVersion)
        #expect(error.errorBody.message.contains("expected \"BAMBO/1\""))
    }

    @Test("unknown types, and types the sender may not send, are UNKNOWN_TYPE")
    func unknownType() throws {
        #expect(throws: ProtocolError.unknownType(received: "TASKS", sender: .coordinator)) {
            try WireCodec.decode(frames: frames("TASKS", Data("{}".utf8)), from: .coordinator)
        }
        #expect(throws: ProtocolError.unknownType(received: "ready", sender: .worker)) {
            try WireCodec.decode(frames: frames("ready", Data("{}".utf8)), from: .worker)
        }
        // A worker may not send TASK; a coordinator may not send RESULT.
        let task = try Data(contentsOf: protocolFolder.appendingPathComponent("examples/task.linear.json"))
        let error = try #require(throws: ProtocolError.self) { try WireCodec.decode(frames: frames("TASK", task), from: .worker) }
        #expect(error == .unknownType(received: "TASK", sender: .worker))
        #expect(error.description == "frame 1: TASK is not a message a worker sends")
        #expect(throws: ProtocolError.unknownType(received: "RESULT", sender: .coordinator)) {
            try WireCodec.decode(frames: frames("RESULT", Data("{}".utf8)), from: .coordinator)
        }
    }

    @Test("frames over their limits are TOO_LARGE")
    func tooLarge() throws {
        #expect(throws: ProtocolError.tooLarge(type: nil, frame: 0, bytes: 17, limit: 16)) {
            try WireCodec.decode(frames: frames("HEARTBEAT", heartbeat, version: String(repeating: "B", count: 17)), from: .worker)
        }
        #expect(throws: ProtocolError.tooLarge(type: nil, frame: 1, bytes: 33, limit: 32)) {
            try WireCodec.decode(frames: frames(String(repeating: "X", count: 33), heartbeat), from: .worker)
        }
        // 1 MiB for everything but RESULT: a heartbeat padded with whitespace to 1 MiB + 1 byte.
        let big = heartbeat + Data(repeating: 0x20, count: (1 << 20) + 1 - heartbeat.count)
        #expect(throws: ProtocolError.tooLarge(type: .heartbeat, frame: 2, bytes: (1 << 20) + 1, limit: 1 << 20)) {
            try WireCodec.decode(frames: frames("HEARTBEAT", big), from: .worker)
        }
        #expect(try WireCodec.decode(frames: frames("HEARTBEAT", big.dropLast()), from: .worker) == .workerHeartbeat(.init(activeTrials: [])))
        // RESULT may be up to 64 MiB.
        #expect(throws: ProtocolError.tooLarge(type: .result, frame: 2, bytes: (64 << 20) + 1, limit: 64 << 20)) {
            try WireCodec.decode(frames: frames("RESULT", Data(count: (64 << 20) + 1)), from: .worker)
        }
    }

    @Test("a RESULT of several MiB (per-item records) is accepted, and encoding refuses one over 64 MiB")
    func largeResult() throws {
        let item = ItemRecord(benchmark: "b", id: "0", response: String(repeating: "x", count: 1 << 20), extracted: nil, correct: false, tokens: 1)
        var body = ResultBody(trial: 1, attempt: 1, metrics: Metrics(benchmarks: ["b": .init(accuracy: 0, tokens: 1)]),
                              durations: .init(merge: 0, evaluate: 0), items: Array(repeating: item, count: 3))
        let encoded = try WireCodec.encode(.result(body))
        #expect(encoded[2].count > 3 << 20)
        #expect(try WireCodec.decode(frames: encoded, from: .worker) == .result(body))

        body.items = Array(repeating: item, count: 65)
        let error = try #require(throws: ProtocolError.self) { try WireCodec.encode(.result(body)) }
        guard case .tooLarge(.result, 2, _, 64 << 20) = error else {
            Issue.record("expected tooLarge for frame 2, got \(error)")
            return
        }
    }

    @Test("bodies that are not a UTF-8 JSON object are MALFORMED", arguments: [
        Data(), Data("   ".utf8), Data("not json".utf8), Data("[1, 2]".utf8), Data("\"text\"".utf8), Data("{\"activeTrials\": [}".utf8),
        Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]),  // {"\xFF\xFE":1} — invalid UTF-8
    ])
    func notAnObject(_ body: Data) throws {
        let error = try #require(throws: ProtocolError.self) { try WireCodec.decode(frames: frames("HEARTBEAT", body), from: .worker) }
        guard case .malformed(.heartbeat, nil, _) = error else {
            Issue.record("expected MALFORMED for the whole body, got \(error)")
            return
        }
        #expect(error.code == .malformed)
        #expect(error.errorBody.inReplyTo == "HEARTBEAT")
    }

    @Test("a missing required field is MALFORMED naming the field", arguments: [
        ("ready.fresh.json", ["capabilities"] as [PathStep], "capabilities"),
        ("ready.fresh.json", ["capabilities", "slots"], "capabilities.slots"),
        ("worker-heartbeat.busy.json", ["activeTrials", 1, "attempt"], "activeTrials[1].attempt"),
        ("task.linear.json", ["models", 1, "path"], "models[1].path"),
        ("task.linear.json", ["merge", "seed"], "merge.seed"),
        ("task.linear.json", ["evaluator", "kind"], "evaluator.kind"),
        ("result.with-items.json", ["items", 1, "extracted"], "items[1].extracted"),
        ("result.metrics-only.json", ["metrics", "benchmarks", "gsm8k", "tokens"], "metrics.benchmarks.gsm8k.tokens"),
        ("failure.eval-failed.json", ["logTail"], "logTail"),
        ("welcome.default.json", ["leaseBeats"], "leaseBeats"),
        ("ack.accepted.json", ["outcome"], "outcome"),
        ("error.malformed.json", ["code"], "code"),
    ])
    func missingField(_ file: String, _ path: [PathStep], _ field: String) throws {
        let body = try jsonData(try example(file).setting(path, to: nil))
        let error = try #require(decodeError(String(file.prefix { $0 != "." }), body))
        guard case .malformed(_, let reported, let reason) = error else {
            Issue.record("expected MALFORMED, got \(error)")
            return
        }
        #expect(reported == field)
        #expect(reason.contains("missing required field"))
    }

    @Test("wrong-typed or out-of-range fields are MALFORMED naming the field", arguments: [
        ("ready.fresh.json", ["pid"] as [PathStep], "123" as JSONValue, "pid"),
        ("ready.fresh.json", ["pid"], 0, "pid"),
        ("ready.fresh.json", ["worker"], "has space", "worker"),
        ("ready.fresh.json", ["worker"], 7, "worker"),
        ("ready.fresh.json", ["capabilities", "slots"], 1.5, "capabilities.slots"),
        ("ready.fresh.json", ["capabilities", "slots"], 0, "capabilities.slots"),
        ("ready.fresh.json", ["capabilities", "gpus"], "0", "capabilities.gpus"),
        ("ready.fresh.json", ["capabilities", "gpus", 1], 1, "capabilities.gpus[1]"),
        ("ready.fresh.json", ["capabilities", "version"], nil as JSONValue, "capabilities.version"),
        ("ready.reconnect.json", ["activeTrials", 0, "trial"], 0, "activeTrials[0].trial"),
        ("progress.merge.json", ["phase"], "compile", "phase"),
        ("progress.merge.json", ["done"], -1, "done"),
        ("progress.merge.json", ["done"], 399, "done"),
        ("progress.merge.json", ["total"], "many", "total"),
        ("progress.merge.json", ["message"], .string(String(repeating: "m", count: 1025)), "message"),
        ("result.metrics-only.json", ["metrics", "benchmarks", "gsm8k", "accuracy"], 1.5, "metrics.benchmarks.gsm8k.accuracy"),
        ("result.metrics-only.json", ["metrics", "benchmarks", "gsm8k", "tokens"], -3, "metrics.benchmarks.gsm8k.tokens"),
        ("result.metrics-only.json", ["metrics", "benchmarks", "gsm8k", "items"], "500", "metrics.benchmarks.gsm8k.items"),
        ("result.metrics-only.json", ["metrics", "benchmarks"], [:], "metrics.benchmarks"),
        ("result.metrics-only.json", ["durations", "merge"], "fast", "durations.merge"),
        ("result.metrics-only.json", ["trial"], 0, "trial"),
        ("result.metrics-only.json", ["attempt"], "1", "attempt"),
        ("result.with-items.json", ["items", 0, "correct"], "yes", "items[0].correct"),
        ("result.with-items.json", ["items", 0, "benchmark"], "gsm8k", "items[0].benchmark"),
        ("result.with-items.json", ["items", 1, "tokens"], 2.5, "items[1].tokens"),
        ("failure.eval-failed.json", ["code"], "eval failed", "code"),
        ("failure.eval-failed.json", ["reason"], "", "reason"),
        ("bye.sigterm.json", ["reason"], [], "reason"),
        ("welcome.default.json", ["heartbeatInterval"], 0, "heartbeatInterval"),
        ("welcome.default.json", ["leaseBeats"], true, "leaseBeats"),
        ("welcome.default.json", ["protocolVersion"], "2.0", "protocolVersion"),
        ("task.linear.json", ["weights"], [0.5, 0.5], "weights"),
        ("task.linear.json", ["weights", 2], 1.2, "weights[2]"),
        ("task.linear.json", ["weights", 0], "0", "weights[0]"),
        ("task.linear.json", ["partition", "blocks", 1], [7, 13], "partition.blocks[1]"),
        ("task.linear.json", ["partition", "blocks", 2], [14], "partition.blocks[2]"),
        ("task.linear.json", ["partition", "layers"], 40, "partition.blocks"),
        ("task.linear.json", ["models"], [["name": "only", "path": "/m"]], "models"),
        ("task.linear.json", ["merge", "dtype"], "int8", "merge.dtype"),
        ("task.linear.json", ["merge", "params"], [], "merge.params"),
        ("task.linear.json", ["evaluator"], "exec", "evaluator"),
        ("task.linear.json", ["evaluator", "kind"], 3, "evaluator.kind"),
        ("task.with-base-and-deadline.json", ["deadline"], -5, "deadline"),
        ("task.with-base-and-deadline.json", ["base", "path"], "", "base.path"),
        ("cancel.study-finished.json", ["attempt"], 0, "attempt"),
        ("ack.accepted.json", ["outcome"], "maybe", "outcome"),
        ("shutdown.budget.json", ["reason"], .string(String(repeating: "r", count: 4097)), "reason"),
        ("error.malformed.json", ["code"], "malformed", "code"),
    ] as [(String, [PathStep], JSONValue, String)])
    func wrongTypedField(_ file: String, _ path: [PathStep], _ value: JSONValue, _ field: String) throws {
        let body = try jsonData(try example(file).setting(path, to: value))
        let error = try #require(decodeError(String(file.prefix { $0 != "." }), body), "\(file) with \(field) = \(value) was accepted")
        guard case .malformed(_, let reported, _) = error else {
            Issue.record("expected MALFORMED, got \(error)")
            return
        }
        #expect(reported == field, "\(error)")
        #expect(error.errorBody.message.contains(field))
    }

    @Test("a wrong type is described for people")
    func readableReason() throws {
        let body = try jsonData(try example("ready.fresh.json").setting(["capabilities", "slots"], to: "two"))
        let error = try #require(decodeError("ready", body))
        #expect(error.description == "READY capabilities.slots: expected an integer, found a string")
    }

    @Test("unknown fields are ignored and null optional fields count as absent")
    func unknownFieldsIgnored() throws {
        let plain = try example("task.linear.json")
        let extended = plain
            .setting(["futureField"], to: ["nested": [1, 2, 3]])
            .setting(["merge", "futureOption"], to: true)
            .setting(["base"], to: .null)
            .setting(["deadline"], to: .null)
        let kind = exampleKinds["task"]!
        let a = try WireCodec.decode(frames: frames("TASK", try jsonData(plain)), from: kind.sender)
        let b = try WireCodec.decode(frames: frames("TASK", try jsonData(extended)), from: kind.sender)
        #expect(a == b)
    }

    @Test("extra benchmark metrics are kept, unlike unknown fields elsewhere")
    func extraMetricsKept() throws {
        let message = try WireCodec.decode(frames: frames("RESULT", try jsonData(try example("result.metrics-only.json"))), from: .worker)
        guard case .result(let body) = message else {
            Issue.record("not a RESULT")
            return
        }
        let math = try #require(body.metrics.benchmarks["math500"])
        #expect(math.items == 500)
        #expect(math.extra == ["passAt1": 0.634, "truncated": 3])
    }

    @Test("encoding refuses messages a peer would reject")
    func encodeValidates() throws {
        let ready = ReadyBody(worker: "w1", pid: 1, host: "h", capabilities: .init(slots: 0, gpus: [], backends: [], evaluators: ["exec"], version: "0"))
        #expect(throws: ProtocolError.malformed(type: .ready, field: "capabilities.slots", reason: "expected an integer >= 1, got 0")) {
            try WireCodec.encode(.ready(ready))
        }
        let nan = ResultBody(trial: 1, attempt: 1, metrics: Metrics(benchmarks: ["b": .init(accuracy: .nan, tokens: 1)]),
                             durations: .init(merge: 0, evaluate: 0))
        let error = try #require(throws: ProtocolError.self) { try WireCodec.encode(.result(nan)) }
        guard case .malformed(.result, "metrics.benchmarks.b.accuracy", _) = error else {
            Issue.record("expected MALFORMED accuracy, got \(error)")
            return
        }
    }

    @Test("encoded JSON has sorted keys and no whitespace")
    func deterministicJSON() throws {
        let ready = ReadyBody(worker: "w1", pid: 42, host: "h",
                              capabilities: .init(slots: 2, gpus: ["0"], backends: ["vllm"], evaluators: ["exec"], version: "0.1.0"))
        let body = try WireCodec.encode(.ready(ready))[2]
        #expect(String(decoding: body, as: UTF8.self)
            == #"{"capabilities":{"backends":["vllm"],"evaluators":["exec"],"gpus":["0"],"slots":2,"version":"0.1.0"},"host":"h","pid":42,"worker":"w1"}"#)
        #expect(try WireCodec.encode(.coordinatorHeartbeat)[2] == Data("{}".utf8))
    }

    @Test("a decoding error becomes an ERROR message that itself encodes and decodes")
    func errorReply() throws {
        let errors: [ProtocolError] = [
            .badVersion(received: "BAMBO/9"), .unknownType(received: "NOPE", sender: .worker),
            .malformed(type: .ready, field: "pid", reason: "expected an integer"),
            .tooLarge(type: .result, frame: 2, bytes: 99_999_999, limit: 64 << 20),
        ]
        for error in errors {
            let reply = try WireCodec.encode(.error(error.errorBody))
            #expect(try WireCodec.decode(frames: reply, from: .coordinator) == .error(error.errorBody))
            #expect(error.errorBody.code == error.code)
        }
        #expect(ProtocolError.malformed(type: .ready, field: "pid", reason: "x").errorBody.inReplyTo == "READY")
        #expect(ProtocolError.unknownType(received: "TASKS", sender: .worker).errorBody.inReplyTo == "TASKS")
        #expect(ProtocolError.badVersion(received: "BAMBO/2").errorBody.inReplyTo == nil)
    }

    @Test("failure codes say whether they count against the trial")
    func failureCodes() {
        #expect(!FailureCode.cancelled.countsAgainstTrial)
        #expect(!FailureCode.abandoned.countsAgainstTrial)
        #expect(!FailureCode.busy.countsAgainstTrial)
        #expect(!FailureCode("BUSY").countsAgainstTrial)
        #expect(FailureCode.evalFailed.countsAgainstTrial)
        #expect(FailureCode("SOMETHING_NEW").countsAgainstTrial)
    }

    @Test("worker names follow the routing-id rule", arguments: [
        ("gpu-node-07", true), ("a", true), ("laptop:cpu@x.y_z", true), (String(repeating: "w", count: 128), true),
        ("", false), ("-leading", false), ("has space", false), ("ümlaut", false), (String(repeating: "w", count: 129), false),
    ])
    func workerNames(_ name: String, _ valid: Bool) {
        #expect(isValidWorkerName(name) == valid)
    }
}
