import ArgumentParser
import Foundation
import Optimization

/// `bambo ask-tell`: a line-oriented JSON session on stdin/stdout for any black box.
struct AskTellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask-tell",
        abstract: "Drive the multi-objective optimizer from any script: JSON lines on stdin, answers on stdout.",
        discussion: """
        All objectives are maximized; x lies in [0,1]^dim. One JSON object per line:

          {"dim": 3, "objectives": 2, "seed": 0, "acquisition": "qehvi", "refPoint": [-1, -1], "initial": 8}
              first line (refPoint and initial optional; also "mcSamples", "restarts",
              "rawSamples"); answered {"ok": true}
          {"tell": [{"x": [0.1, 0.2, 0.3], "y": [1.5, -2.0]}]}
              answered {"ok": true, "observations": n}
          {"ask": 4, "pending": [[0.5, 0.5, 0.5]]}
              answered {"x": [[...], [...], [...], [...]]}: the initial Sobol design until
              `initial` observations were told, then qEHVI/qNEHVI proposals given the pending
              points (dispatched, not yet told)

        A malformed line is answered {"error": "..."} and the session goes on. EOF ends it. \
        Every answer is one line, flushed at once.
        """)

    func run() throws {
        var session = AskTellSession()
        while let line = readLine(strippingNewline: true) {
            guard let answer = session.respond(to: line) else { continue }
            FileHandle.standardOutput.write(Data((answer + "\n").utf8))
        }
    }
}
