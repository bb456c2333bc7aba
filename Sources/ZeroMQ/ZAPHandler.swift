import Foundation

/// One ZAP authentication request (RFC 27), as libzmq sends it for a connecting peer.
public struct ZAPRequest: Sendable, Equatable {
    /// The server socket's `zapDomain` (empty if unset).
    public let domain: String
    /// The peer's address (IP for TCP).
    public let address: String
    /// The peer's routing id as the server socket knows it (often empty).
    public let routingID: Data
    /// `"NULL"`, `"PLAIN"` or `"CURVE"`.
    public let mechanism: String
    /// For CURVE: the client's long-term public key.
    public let clientKey: CurveKey?
}

/// What a `ZAPHandler` answered.
public struct ZAPDecision: Sendable, Equatable {
    public let request: ZAPRequest
    public let allowed: Bool
    /// ZAP status: 200 allowed, 400 refused, 500 malformed request.
    public let statusCode: Int
    /// Why, in words (sent back as the ZAP status text).
    public let reason: String
}

/// A ZAP handler (RFC 27) that admits CURVE clients whose public key is on an allow-list.
///
/// It binds a REP socket to `inproc://zeromq.zap.01` in its context and answers on its own
/// thread (a `SocketLoop`). Create it **before** any CURVE server socket of the context accepts
/// connections: with no ZAP handler bound, libzmq lets every CURVE client in. Only one handler
/// can run per context (the second bind fails with `EADDRINUSE`).
///
/// Policy: mechanism CURVE and a client key on the allow-list → 200; anything else (another
/// mechanism, an unknown key, a domain other than `domain` when one is given) → 400; a malformed
/// request → 500. Accepted clients get their key's Z85 text as ZAP user id. Every decision is
/// passed to `onDecision` on the handler's thread (keep it quick: log, count).
public final class ZAPHandler: Sendable {
    /// The RFC 27 endpoint.
    public static let endpoint = "inproc://zeromq.zap.01"

    private let loop: SocketLoop
    private let socketID: SocketLoop.SocketID
    private let keys: Locked<Set<CurveKey>>

    /// - Parameters:
    ///   - allowedKeys: client public keys to admit (replace later with `setAllowedKeys` / `reloadAllowedKeys`).
    ///   - domain: serve only this ZAP domain; nil: any.
    ///   - onDecision: told of every decision, on the handler thread.
    public init(context: Context, allowedKeys: Set<CurveKey>, domain: String? = nil,
                onDecision: @escaping @Sendable (ZAPDecision) -> Void = { _ in }) throws {
        let keys = Locked(allowedKeys)
        self.keys = keys
        loop = try SocketLoop(context: context, name: "zeromq-zap")
        do {
            socketID = try loop.performAndWait { sockets in
                let socket = try Socket(sockets.context, type: .reply)
                try socket.set(.linger, .zero)
                try socket.bind(ZAPHandler.endpoint)
                return sockets.add(socket, receive: .handler({ message, sockets in
                    let decision = ZAPHandler.decide(message.frames, domain: domain, allowed: keys.withLock { $0 })
                    _ = try? sockets.socket(message.socket).send(decision.reply)
                    if let decision = decision.decision { onDecision(decision) }
                }))
            }
        } catch {
            loop.close()
            throw error
        }
    }

    deinit { close() }

    /// The keys admitted now.
    public var allowedKeys: Set<CurveKey> { keys.withLock { $0 } }

    /// Replaces the allow-list; applies to handshakes from now on.
    public func setAllowedKeys(_ newKeys: Set<CurveKey>) { keys.withLock { $0 = newKeys } }

    /// Replaces the allow-list with the public keys of the `*.pub` files in `directory`
    /// (see `CurveKey.allowList(directory:)`). On error the old list stays.
    @discardableResult
    public func reloadAllowedKeys(fromDirectory directory: String) throws -> Set<CurveKey> {
        let loaded = try CurveKey.allowList(directory: directory)
        setAllowedKeys(loaded)
        return loaded
    }

    /// Stops answering and unbinds (idempotent). CURVE servers of the context then admit everyone:
    /// close them first.
    public func close() {
        // Unbind first: it frees the inproc endpoint at once (closing alone frees it asynchronously).
        let socketID = self.socketID
        _ = try? loop.performAndWait { try $0.socket(socketID).unbind(ZAPHandler.endpoint) }
        loop.close()
    }

    /// The reply frames for one request, and the decision to report (none for a malformed request
    /// that cannot be attributed).
    static func decide(_ frames: [Data], domain: String?, allowed: Set<CurveKey>) -> (reply: [Data], decision: ZAPDecision?) {
        func reply(_ requestID: Data, _ code: Int, _ text: String, userID: String = "") -> [Data] {
            [Data("1.0".utf8), requestID, Data(String(code).utf8), Data(text.utf8), Data(userID.utf8), Data()]
        }
        guard frames.count >= 6, String(decoding: frames[0], as: UTF8.self) == "1.0" else {
            let requestID = frames.count > 1 ? frames[1] : Data()
            return (reply(requestID, 500, "malformed ZAP request"), nil)
        }
        let requestID = frames[1]
        let mechanism = String(decoding: frames[5], as: UTF8.self)
        let credentials = Array(frames.dropFirst(6))
        var clientKey: CurveKey?
        if mechanism == "CURVE" {
            guard credentials.count == 1, let key = try? CurveKey(bytes: [UInt8](credentials[0])) else {
                return (reply(requestID, 500, "malformed CURVE credentials"), nil)
            }
            clientKey = key
        }
        let request = ZAPRequest(domain: String(decoding: frames[2], as: UTF8.self),
                                 address: String(decoding: frames[3], as: UTF8.self),
                                 routingID: frames[4], mechanism: mechanism, clientKey: clientKey)
        let (allowedNow, reason): (Bool, String)
        if let domain, request.domain != domain {
            (allowedNow, reason) = (false, "domain '\(request.domain)' is not served")
        } else if let clientKey {
            (allowedNow, reason) = allowed.contains(clientKey) ? (true, "OK") : (false, "client key not on the allow-list")
        } else {
            (allowedNow, reason) = (false, "mechanism \(mechanism) is not accepted (CURVE only)")
        }
        let code = allowedNow ? 200 : 400
        let decision = ZAPDecision(request: request, allowed: allowedNow, statusCode: code, reason: reason)
        return (reply(requestID, code, reason, userID: allowedNow ? clientKey?.z85 ?? "" : ""), decision)
    }
}
