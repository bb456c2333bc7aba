import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Key files. Text, UTF-8, one `name: value` per line; blank lines and lines starting with `#` are
// ignored. Two names exist:
//
//     # ZeroMQ CURVE key pair. Keep it secret: mode 0600.
//     public: rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
//     secret: JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6
//
// A *secret key file* has both lines (the public key must match the secret one) and is written
// with mode 0600; reading refuses one that group or others may access. A *public key file* has
// only the `public:` line (mode 0644). An allow-list directory holds public key files named
// `*.pub`; other files there are ignored, and a `.pub` file holding a secret is refused.

extension CurveKeyPair {
    /// Reads a secret key file.
    public init(contentsOfFile path: String) throws {
        let entries = try KeyFileText.read(path)
        guard let secretText = entries.secret else {
            throw CurveKeyError("\(path): no 'secret:' line (a public key file where a secret key file was expected)")
        }
        try KeyFileText.checkPrivate(path)
        do {
            self = try CurveKeyPair(secretKey: CurveSecretKey(z85: secretText))
        } catch let error as CurveKeyError {
            throw CurveKeyError("\(path): 'secret': \(error.message)")
        }
        if let publicText = entries.public, publicText != publicKey.z85 {
            throw CurveKeyError("\(path): 'public' does not match the public key of 'secret'")
        }
    }

    /// Writes a secret key file (both keys), mode 0600, atomically (write to a temporary file, then rename).
    public func write(toFile path: String, overwrite: Bool = false) throws {
        let text = "# ZeroMQ CURVE key pair. Keep it secret: mode 0600.\npublic: \(publicKey.z85)\nsecret: \(secretKey.z85)\n"
        try KeyFileText.write(text, to: path, mode: 0o600, overwrite: overwrite)
    }
}

extension CurveKey {
    /// Reads the `public:` line of a public or secret key file.
    public init(contentsOfFile path: String) throws {
        let entries = try KeyFileText.read(path)
        guard let publicText = entries.public else { throw CurveKeyError("\(path): no 'public:' line") }
        do {
            self = try CurveKey(z85: publicText)
        } catch let error as CurveKeyError {
            throw CurveKeyError("\(path): 'public': \(error.message)")
        }
    }

    /// Writes a public key file (mode 0644), atomically.
    public func write(toFile path: String, overwrite: Bool = false) throws {
        let text = "# ZeroMQ CURVE public key.\npublic: \(z85)\n"
        try KeyFileText.write(text, to: path, mode: 0o644, overwrite: overwrite)
    }

    /// The public keys of every `*.pub` file in `directory` (an allow-list).
    public static func allowList(directory: String) throws -> Set<CurveKey> {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CurveKeyError("\(directory): cannot list the allow-list directory (\(error.localizedDescription))")
        }
        var keys = Set<CurveKey>()
        for name in names.sorted() where name.hasSuffix(".pub") && !name.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(name)
            if try KeyFileText.read(path).secret != nil {
                throw CurveKeyError("\(path): holds a secret key; an allow-list directory takes public key files only")
            }
            keys.insert(try CurveKey(contentsOfFile: path))
        }
        return keys
    }
}

private enum KeyFileText {
    struct Entries { var `public`: String?; var secret: String? }

    static func read(_ path: String) throws -> Entries {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CurveKeyError("\(path): cannot read key file (\(error.localizedDescription))")
        }
        guard data.count <= 64 * 1024 else { throw CurveKeyError("\(path): \(data.count) bytes is too large for a key file") }
        guard let text = String(data: data, encoding: .utf8) else { throw CurveKeyError("\(path): not UTF-8 text") }
        var entries = Entries()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let where_ = "\(path):\(index + 1)"
            // `name:` then the value (Z85 itself contains ':', so the name is the leading word).
            let nameEnd = line.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } ?? line.endIndex
            let name = String(line[..<nameEnd])
            let rest = line[nameEnd...].drop { $0 == " " || $0 == "\t" }
            guard !name.isEmpty, rest.first == ":" else {
                throw CurveKeyError("\(where_): expected 'public: <z85>' or 'secret: <z85>', got '\(line.prefix(60))'")
            }
            let value = rest.dropFirst().trimmingCharacters(in: .whitespaces)
            switch name {
            case "public":
                guard entries.public == nil else { throw CurveKeyError("\(where_): a second 'public:' line") }
                entries.public = value
            case "secret":
                guard entries.secret == nil else { throw CurveKeyError("\(where_): a second 'secret:' line") }
                entries.secret = value
            default:
                throw CurveKeyError("\(where_): unknown field '\(name.prefix(40))' (expected 'public' or 'secret')")
            }
        }
        return entries
    }

    /// Refuses a secret key file that group or others may access.
    static func checkPrivate(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw CurveKeyError("\(path): stat failed (errno \(errno))") }
        let mode = info.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw CurveKeyError("\(path): secret key file has mode \(String(mode, radix: 8)); it must be private (chmod 600)")
        }
    }

    static func write(_ text: String, to path: String, mode: mode_t, overwrite: Bool) throws {
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw CurveKeyError("\(path): exists already; refusing to overwrite a key file")
        }
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw CurveKeyError("\(temporary): cannot create (errno \(errno))") }
        var failure: String?
        if fchmod(fd, mode) != 0 { failure = "fchmod failed (errno \(errno))" }  // whatever the umask
        let bytes = Array(text.utf8)
        if failure == nil {
            let written = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
            if written != bytes.count { failure = "write failed (errno \(errno))" }
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync failed (errno \(errno))" }
        close(fd)
        if failure == nil {
            if overwrite {
                if rename(temporary, path) != 0 { failure = "rename to \(path) failed (errno \(errno))" }
            } else {
                // link() refuses an existing target atomically (no window between check and write).
                if link(temporary, path) != 0 {
                    failure = errno == EEXIST ? "exists already; refusing to overwrite a key file" : "link failed (errno \(errno))"
                }
                unlink(temporary)
            }
        }
        if let failure {
            unlink(temporary)
            throw CurveKeyError("\(path): \(failure)")
        }
    }
}

/// POSIX `write`, named apart from the `write(toFile:)` methods above.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
