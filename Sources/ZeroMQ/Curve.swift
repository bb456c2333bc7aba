import CZeroMQ
import Foundation

/// A problem with a CURVE key, its Z85 text or a key file; `message` names the file and field.
public struct CurveKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Z85 (ZeroMQ RFC 32): 4 bytes ↔ 5 printable characters.
public enum Z85 {
    /// Encodes bytes whose count is a multiple of 4.
    public static func encode(_ bytes: [UInt8]) throws -> String {
        guard bytes.count % 4 == 0 else {
            throw CurveKeyError("Z85 encodes a multiple of 4 bytes; got \(bytes.count)")
        }
        var text = [CChar](repeating: 0, count: bytes.count / 4 * 5 + 1)
        guard zmq_z85_encode(&text, bytes, bytes.count) != nil else {
            throw CurveKeyError("zmq_z85_encode failed for \(bytes.count) bytes")
        }
        return nulTerminated(text)
    }

    /// Decodes Z85 text whose length is a multiple of 5, made only of the Z85 alphabet.
    public static func decode(_ text: String) throws -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count % 5 == 0 else {
            throw CurveKeyError("Z85 text must have a multiple of 5 characters; got \(utf8.count)")
        }
        guard !utf8.contains(0) else { throw CurveKeyError("Z85 text contains a NUL character") }
        var bytes = [UInt8](repeating: 0, count: utf8.count / 5 * 4)
        let decoded = text.withCString { zmq_z85_decode(&bytes, $0) }
        guard decoded != nil else {
            throw CurveKeyError("not valid Z85 text: \(utf8.count > 50 ? String(text.prefix(50)) + "…" : text)")
        }
        return bytes
    }
}

/// Parses 32 raw bytes, or 40 characters of Z85.
private func keyBytes(_ bytes: [UInt8], what: String) throws -> [UInt8] {
    guard bytes.count == 32 else { throw CurveKeyError("a \(what) has 32 bytes; got \(bytes.count)") }
    return bytes
}

private func keyBytes(z85 text: String, what: String) throws -> [UInt8] {
    guard text.utf8.count == 40 else {
        throw CurveKeyError("a \(what) in Z85 has 40 characters; got \(text.utf8.count)")
    }
    return try Z85.decode(text)
}

/// A CURVE public key (32 bytes): a socket's own, a server's, or an allowed client's.
public struct CurveKey: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) throws { self.bytes = try keyBytes(bytes, what: "CURVE public key") }
    public init(z85: String) throws { self.bytes = try keyBytes(z85: z85, what: "CURVE public key") }
    /// The 40-character Z85 text.
    public var z85: String { try! Z85.encode(bytes) }  // 32 bytes always encode
    public var description: String { z85 }
}

/// A CURVE secret key (32 bytes). Its description never shows the key.
public struct CurveSecretKey: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) throws { self.bytes = try keyBytes(bytes, what: "CURVE secret key") }
    public init(z85: String) throws { self.bytes = try keyBytes(z85: z85, what: "CURVE secret key") }
    public var z85: String { try! Z85.encode(bytes) }
    public var description: String { "CurveSecretKey(redacted)" }

    /// The matching public key (`zmq_curve_public`).
    public func publicKey() throws -> CurveKey {
        var publicText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicText, z85) == 0 else {
            throw ZMQError.last("zmq_curve_public")
        }
        return try CurveKey(z85: nulTerminated(publicText))
    }
}

/// A CURVE key pair.
public struct CurveKeyPair: Hashable, Sendable {
    public let publicKey: CurveKey
    public let secretKey: CurveSecretKey

    /// The pair of a secret key (its public key is derived).
    public init(secretKey: CurveSecretKey) throws {
        self.secretKey = secretKey
        self.publicKey = try secretKey.publicKey()
    }

    /// A fresh random key pair (`zmq_curve_keypair`; fails with `ENOTSUP` if libzmq lacks CURVE).
    public static func generate() throws -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicText, &secretText) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        return try CurveKeyPair(secretKey: CurveSecretKey(z85: nulTerminated(secretText)))
    }
}

extension Socket {
    /// Makes this socket a CURVE server with the given secret key. Start a `ZAPHandler` on the same
    /// context first: without one libzmq accepts every client key.
    public func makeCurveServer(secretKey: CurveSecretKey) throws {
        try set(.curveServer, true)
        try set(.curveSecretKey, secretKey)
    }

    /// Makes this socket a CURVE client with its own key pair, trusting `serverKey`. Call before `connect`.
    public func makeCurveClient(keyPair: CurveKeyPair, serverKey: CurveKey) throws {
        try set(.curveServerKey, serverKey)
        try set(.curvePublicKey, keyPair.publicKey)
        try set(.curveSecretKey, keyPair.secretKey)
    }
}

/// The text before the first NUL of a C character buffer.
private func nulTerminated(_ characters: [CChar]) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
