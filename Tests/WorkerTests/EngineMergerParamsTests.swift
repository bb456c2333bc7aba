import BamboProtocol
import Foundation
import Merging
import Testing
import Worker

/// TASK `merge.params` as the worker's merge engine reads them: numbers, booleans, and lists with
/// one number per block.
@Suite struct EngineMergerParamsTests {
    func task(_ params: [String: JSONValue], directory: URL) -> TaskBody {
        TaskBody(
            trial: 1, attempt: 1, weights: [0.1, 0.3, 0.6, 0.9], partition: PartitionSpec(blocks: [[0, 1], [2, 3]], layers: 4),
            models: [ModelRef(name: "a", path: directory.path), ModelRef(name: "b", path: directory.path)],
            base: ModelRef(name: "base", path: directory.path),
            merge: MergeSpec(method: "dare_ties", dtype: .bfloat16, params: params, seed: 3), evaluator: ["kind": "exec"])
    }

    @Test func perBlockListsBecomePerBlockParameters() throws {
        let directory = FileManager.default.temporaryDirectory
        let request = try EngineMerger().request(
            for: task(["density": [0.9, 0.5, 0.3, 0.9], "lambda": 1.5, "rescale": false], directory: directory),
            output: directory.appendingPathComponent("unused"))
        #expect(request.parameters == MergeParameters(density: [0.9, 0.5, 0.3, 0.9], lambda: 1.5, rescale: false))
        #expect(try request.parameters.resolved(for: .dareTies, blockCount: 4).map(\.density) == [0.9, 0.5, 0.3, 0.9])
    }

    @Test func badListsNameTheField() {
        let directory = FileManager.default.temporaryDirectory
        let cases: [([String: JSONValue], String)] = [
            (["density": [0.9, "x", 0.3, 0.9]], "merge.params.density[1]: expected a number"),
            (["normalize": [1, 0, 1, 1]], "merge.params.normalize: "),
            (["density": ["a": 1]], "merge.params.density: expected a number, a list of numbers (one per block) or a boolean"),
        ]
        for (params, expected) in cases {
            do {
                _ = try EngineMerger().request(for: task(params, directory: directory), output: directory.appendingPathComponent("unused"))
                Issue.record("\(params) should be refused")
            } catch {
                #expect(error.code == .badTask && error.reason.hasPrefix(expected), "\(error.reason)")
            }
        }
    }
}
