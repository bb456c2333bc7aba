import Foundation
import Testing
@testable import SafeTensors

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// The error `body` throws, as a `SafeTensorsError` (records an issue when it does not throw one).
func captureError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> SafeTensorsError? {
    do {
        try body()
        Issue.record("expected a SafeTensorsError, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SafeTensorsError {
        return error
    } catch {
        Issue.record("expected a SafeTensorsError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// A small deterministic generator (splitmix64) for test data.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

var fixturesURL: URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        out.append(UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16)!)
    }
    return out
}
