import Foundation
import Testing
@testable import BamboProtocol

/// The worker heartbeat's direct reader must agree with the general decoder wherever it answers.
@Suite struct HeartbeatFastPathTests {
    let bodies = [
        #"{"activeTrials":[]}"#,
        #"{"activeTrials":[{"trial":5,"attempt":1}]}"#,
        #"{"activeTrials":[{"attempt":2,"trial":12},{"trial":13,"attempt":1},{"trial":9007199254740992,"attempt":3}]}"#,
        #"{"activeTrials":[{"trial":5.0,"attempt":1}]}"#,
        // Not plainly well formed: the direct reader declines and the general decoder decides.
        #"{"activeTrials":[{"trial":5.5,"attempt":1}]}"#,
        #"{"activeTrials":[{"trial":"5","attempt":1}]}"#,
        #"{"activeTrials":[{"trial":5}]}"#,
        #"{"activeTrials":[{"trial":5,"attempt":1,"extra":true}]}"#,
        #"{"activeTrials":[5]}"#,
        #"{"activeTrials":{}}"#,
        #"{"activeTrials":[],"note":"x"}"#,
        #"{}"#,
        #"{"activeTrials":[{"trial":1e300,"attempt":1}]}"#,
    ]

    @Test("Direct and general decoding agree on every body the direct reader accepts")
    func agreesWithTheDecoder() throws {
        var accepted = 0
        for text in bodies {
            let json = try JSONValue(json: Data(text.utf8))
            let general = try? JSONValueDecoder().decode(WorkerHeartbeatBody.self, from: json)
            if let direct = WorkerHeartbeatBody(plainlyWellFormed: json) {
                accepted += 1
                #expect(direct == general, "\(text)")
            }
        }
        #expect(accepted == 4)
    }

    @Test("Through the codec: declined bodies still get the general decoder's verdict")
    func codecVerdicts() throws {
        for text in bodies {
            let frames = [Data("BAMBO/1".utf8), Data("HEARTBEAT".utf8), Data(text.utf8)]
            let json = try JSONValue(json: Data(text.utf8))
            // The verdict without the direct reader: the general decoder, then the spec's rules.
            let general = Result { () throws -> Message in
                let message = Message.workerHeartbeat(try JSONValueDecoder().decode(WorkerHeartbeatBody.self, from: json))
                try message.validate()
                return message
            }
            let viaCodec = Result { try WireCodec.decode(frames: frames, from: .worker) }
            switch (general, viaCodec) {
            case (.success(let expected), .success(let message)): #expect(message == expected, "\(text)")
            case (.failure, .failure): break
            default: Issue.record("\(text): general \(general), codec \(viaCodec)")
            }
        }
    }
}
