import Foundation

import BamboTestSupport

/// The CLI tests' names for the built `bambo` executable and its runs (BamboTestSupport).
typealias BamboProcess = BuiltBambo
typealias BamboRun = BamboTestSupport.BamboRun

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("bambo-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
