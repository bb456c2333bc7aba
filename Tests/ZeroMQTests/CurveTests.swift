import Foundation
import Testing
@testable import ZeroMQ

@Suite struct Z85AndKeyTests {
    @Test func libzmqHasCurve() {
        #expect(LibZMQ.has("curve"))
        #expect(!LibZMQ.has("no-such-capability"))
        #expect(LibZMQ.version.major == 4 && LibZMQ.version.minor >= 3)
    }

    @Test func z85MatchesTheRFC32TestVector() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(try Z85.encode(bytes) == "HelloWorld")
        #expect(try Z85.decode("HelloWorld") == bytes)
    }

    @Test func z85RoundTripsAndRejectsBadInput() throws {
        for seed in 1...20 {
            let bytes = [UInt8](pseudoRandomBytes(count: 4 * seed, seed: UInt64(seed)))
            let encoded = try Z85.encode(bytes)
            #expect(encoded.count == 5 * seed)
            #expect(try Z85.decode(encoded) == bytes)
        }
        #expect(throws: CurveKeyError.self) { try Z85.encode([1, 2, 3]) }
        #expect(throws: CurveKeyError.self) { try Z85.decode("Hell") }
        #expect(throws: CurveKeyError.self) { try Z85.decode("Hello,orld") }  // ',' is not in the alphabet
    }

    @Test func keyPairsDerivePublicKeysAndRejectWrongLengths() throws {
        let pair = try CurveKeyPair.generate()
        #expect(try pair.secretKey.publicKey() == pair.publicKey)
        #expect(try CurveKeyPair(secretKey: CurveSecretKey(z85: pair.secretKey.z85)) == pair)
        #expect(try CurveKey(z85: pair.publicKey.z85) == pair.publicKey)
        #expect(try CurveKey(bytes: pair.publicKey.bytes) == pair.publicKey)
        #expect(pair.publicKey.z85.count == 40)
        #expect(!"\(pair.secretKey)".contains(pair.secretKey.z85))
        #expect(try CurveKeyPair.generate() != pair)
        #expect(throws: CurveKeyError.self) { try CurveKey(bytes: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: CurveKeyError.self) { try CurveKey(z85: "HelloWorld") }
    }

    @Test func keyFilesRoundTripWithPrivateSecretFiles() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pair = try CurveKeyPair.generate()
        let secretPath = directory + "/worker.key"
        let publicPath = directory + "/worker.pub"
        try pair.write(toFile: secretPath)
        try pair.publicKey.write(toFile: publicPath)
        #expect(try fileMode(secretPath) == 0o600)
        #expect(try fileMode(publicPath) == 0o644)
        #expect(try CurveKeyPair(contentsOfFile: secretPath) == pair)
        #expect(try CurveKey(contentsOfFile: publicPath) == pair.publicKey)
        #expect(try CurveKey(contentsOfFile: secretPath) == pair.publicKey)
        let contents = try String(contentsOfFile: secretPath, encoding: .utf8)
        #expect(contents.contains("public: \(pair.publicKey.z85)\n") && contents.contains("secret: \(pair.secretKey.z85)\n"))

        // No silent overwrite; a public file is not a key pair; a readable secret file is refused.
        #expect(throws: CurveKeyError.self) { try pair.write(toFile: secretPath) }
        try CurveKeyPair.generate().write(toFile: secretPath, overwrite: true)
        #expect(try CurveKeyPair(contentsOfFile: secretPath) != pair)
        #expect(try fileMode(secretPath) == 0o600)
        #expect(throws: CurveKeyError.self) { try CurveKeyPair(contentsOfFile: publicPath) }
        chmod(secretPath, 0o644)
        let readable = try #require(throws: CurveKeyError.self) { try CurveKeyPair(contentsOfFile: secretPath) }
        #expect(readable.message.contains(secretPath) && readable.message.contains("chmod 600"))
    }

    @Test func malformedKeyFilesNameTheFileAndLine() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pair = try CurveKeyPair.generate()
        let other = try CurveKeyPair.generate()
        let cases: [(String, String)] = [
            // A fixed value: a random Z85 key may itself start with ':'.
            ("# comment\n\npublic rq:M>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n", ":3: expected 'public: <z85>'"),
            ("public: \(pair.publicKey.z85)\nprivate: x\n", ":2: unknown field 'private'"),
            ("public: \(pair.publicKey.z85)\npublic: \(pair.publicKey.z85)\n", ":2: a second 'public:'"),
            ("public: short\n", "'public': a CURVE public key in Z85 has 40 characters"),
            ("# nothing\n", "no 'public:' line"),
        ]
        for (index, (body, expected)) in cases.enumerated() {
            let path = "\(directory)/bad\(index).pub"
            try body.write(toFile: path, atomically: true, encoding: .utf8)
            let error = try #require(throws: CurveKeyError.self) { try CurveKey(contentsOfFile: path) }
            #expect(error.message.contains(path) && error.message.contains(expected), "\(error.message)")
        }
        let mismatched = "\(directory)/mismatch.key"
        try "public: \(other.publicKey.z85)\nsecret: \(pair.secretKey.z85)\n".write(toFile: mismatched, atomically: true, encoding: .utf8)
        chmod(mismatched, 0o600)
        let error = try #require(throws: CurveKeyError.self) { try CurveKeyPair(contentsOfFile: mismatched) }
        #expect(error.message.contains("does not match"))
    }

    @Test func allowListDirectoryReadsPublicFilesOnly() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try CurveKeyPair.generate()
        let second = try CurveKeyPair.generate()
        try first.publicKey.write(toFile: directory + "/a.pub")
        try second.publicKey.write(toFile: directory + "/b.pub")
        try "not a key".write(toFile: directory + "/README", atomically: true, encoding: .utf8)
        #expect(try CurveKey.allowList(directory: directory) == [first.publicKey, second.publicKey])

        try first.write(toFile: directory + "/leaked.pub")
        let error = try #require(throws: CurveKeyError.self) { try CurveKey.allowList(directory: directory) }
        #expect(error.message.contains("leaked.pub") && error.message.contains("secret"))
        #expect(throws: CurveKeyError.self) { try CurveKey.allowList(directory: directory + "/missing") }
    }
}

@Suite struct CurveAuthenticationTests {
    /// A CURVE ROUTER on loopback with a ZAP allow-list of one client key.
    struct Server {
        let context: Context
        let zap: ZAPHandler
        let decisions: Locked<[ZAPDecision]>
        let router: Socket
        let endpoint: String
        let keys: CurveKeyPair

        init(allowed: Set<CurveKey>) throws {
            context = try Context()
            let decisions = Locked<[ZAPDecision]>([])
            self.decisions = decisions
            zap = try ZAPHandler(context: context, allowedKeys: allowed) { decision in decisions.withLock { $0.append(decision) } }
            keys = try CurveKeyPair.generate()
            let keys = self.keys
            (router, endpoint) = try boundSocket(context, .router) { try $0.makeCurveServer(secretKey: keys.secretKey) }
        }

        func client(_ pair: CurveKeyPair, trusting serverKey: CurveKey? = nil, id: String) throws -> Socket {
            try connectedSocket(context, .dealer, to: endpoint) {
                try $0.set(.routingID, text(id))
                try $0.makeCurveClient(keyPair: pair, serverKey: serverKey ?? keys.publicKey)
            }
        }

        /// Waits (bounded) until `count` decisions have been reported.
        func decisions(atLeast count: Int) throws -> [ZAPDecision] {
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                let now = decisions.withLock { $0 }
                if now.count >= count { return now }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return decisions.withLock { $0 }
        }
    }

    @Test func anAllowedClientTalksToTheServer() throws {
        let allowed = try CurveKeyPair.generate()
        let server = try Server(allowed: [allowed.publicKey])
        let client = try server.client(allowed, id: "allowed")
        try client.send([text("result"), pseudoRandomBytes(count: 100_000, seed: 3)])
        let received = try #require(try server.router.receiveMessage(timeout: .seconds(5)))
        #expect(received.frames == [text("allowed"), text("result"), pseudoRandomBytes(count: 100_000, seed: 3)])
        #expect(received.userID == allowed.publicKey.z85)  // who sent it, as ZAP admitted it
        #expect(received.peerAddress == "127.0.0.1")
        try server.router.send([text("allowed"), text("task")])
        #expect(try client.receive(timeout: .seconds(5)) == [text("task")])
        let decision = try #require(try server.decisions(atLeast: 1).first)
        #expect(decision.allowed && decision.statusCode == 200)
        #expect(decision.request.clientKey == allowed.publicKey && decision.request.mechanism == "CURVE")
        #expect(decision.request.address == "127.0.0.1")
    }

    @Test func aClientOffTheAllowListGetsNothingThroughAndIsReported() throws {
        let allowed = try CurveKeyPair.generate()
        let intruder = try CurveKeyPair.generate()
        let server = try Server(allowed: [allowed.publicKey])
        let client = try server.client(intruder, id: "intruder")
        let monitor = try client.monitor(events: [.handshakeFailedAuth, .handshakeSucceeded])
        try client.send([text("let me in")])
        let event = try #require(try monitor.wait(for: [.handshakeFailedAuth, .handshakeSucceeded], timeout: .seconds(5)))
        #expect(event.kind == .handshakeFailedAuth && event.value == 400)
        #expect(try server.router.receive(timeout: .milliseconds(500)) == nil)
        let refused = try #require(try server.decisions(atLeast: 1).first)
        #expect(!refused.allowed && refused.statusCode == 400)
        #expect(refused.request.clientKey == intruder.publicKey)
        #expect(refused.reason.contains("allow-list"))

        // Reloading the allow-list from a directory admits it (a fresh connection).
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try intruder.publicKey.write(toFile: directory + "/intruder.pub")
        #expect(try server.zap.reloadAllowedKeys(fromDirectory: directory) == [intruder.publicKey])
        let admitted = try server.client(intruder, id: "admitted")
        try admitted.send([text("now")])
        #expect(try server.router.receive(timeout: .seconds(5)) == [text("admitted"), text("now")])
    }

    @Test func aClientTrustingTheWrongServerKeyFails() throws {
        let allowed = try CurveKeyPair.generate()
        let server = try Server(allowed: [allowed.publicKey])
        let serverMonitor = try server.router.monitor(events: [.handshakeFailedProtocol, .handshakeFailedNoDetail, .handshakeSucceeded])
        let impostorKey = try CurveKeyPair.generate().publicKey
        let client = try server.client(allowed, trusting: impostorKey, id: "confused")
        try client.send([text("hello?")])
        let event = try #require(try serverMonitor.wait(for: [.handshakeFailedProtocol, .handshakeFailedNoDetail, .handshakeSucceeded],
                                                       timeout: .seconds(5)))
        #expect(event.kind != .handshakeSucceeded)
        #expect(try server.router.receive(timeout: .milliseconds(500)) == nil)
        #expect(server.decisions.withLock { $0 }.isEmpty)  // it never got as far as ZAP
    }

    /// The pitfall `ZAPHandler` exists for: with no handler bound, libzmq admits every CURVE client.
    @Test func withoutAZAPHandlerAnyClientKeyIsAdmitted() throws {
        let context = try Context()
        let serverKeys = try CurveKeyPair.generate()
        let (router, endpoint) = try boundSocket(context, .router) { try $0.makeCurveServer(secretKey: serverKeys.secretKey) }
        let stranger = try connectedSocket(context, .dealer, to: endpoint) {
            try $0.makeCurveClient(keyPair: try CurveKeyPair.generate(), serverKey: serverKeys.publicKey)
        }
        try stranger.send([text("anyone")])
        #expect(try router.receive(timeout: .seconds(5))?.last == text("anyone"))
    }

    @Test func zapDecisionsForMalformedAndNonCurveRequests() throws {
        let key = try CurveKeyPair.generate().publicKey
        let malformed = ZAPHandler.decide([text("1.0"), text("id")], domain: nil, allowed: [key])
        #expect(malformed.decision == nil && malformed.reply[2] == text("500"))
        let plain = ZAPHandler.decide([text("1.0"), text("7"), text(""), text("127.0.0.1"), Data(), text("NULL")],
                                      domain: nil, allowed: [key])
        #expect(plain.decision?.allowed == false && plain.reply[1] == text("7") && plain.reply[2] == text("400"))
        let curve = [text("1.0"), text("8"), text("other"), text("127.0.0.1"), Data(), text("CURVE"), Data(key.bytes)]
        #expect(ZAPHandler.decide(curve, domain: nil, allowed: [key]).reply[2] == text("200"))
        #expect(ZAPHandler.decide(curve, domain: nil, allowed: [key]).reply[4] == text(key.z85))
        #expect(ZAPHandler.decide(curve, domain: "bambo", allowed: [key]).reply[2] == text("400"))
    }

    @Test func onlyOneZAPHandlerPerContext() throws {
        let context = try Context()
        let first = try ZAPHandler(context: context, allowedKeys: [])
        #expect(throws: ZMQError.self) { try ZAPHandler(context: context, allowedKeys: []) }
        first.close()
        _ = try ZAPHandler(context: context, allowedKeys: [])  // the endpoint is free again
    }
}
