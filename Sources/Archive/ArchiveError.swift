import Foundation

/// What went wrong with an archive. Every case names the file or the value at fault.
public enum ArchiveError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file exists but is not a BAMBO archive (not SQLite, or another application's database).
    case notAnArchive(path: String, reason: String)
    /// The archive was written by a newer BAMBO: it has schema migrations this version does not know.
    case newerSchema(path: String, unknownMigrations: [String])
    /// Another process (or another `Archive` in this one) already has the archive open as its writer.
    case inUse(path: String, lockFile: String)
    /// `OpenMode.existing` was asked for and there is no file.
    case missing(path: String)
    /// `createStudy` on an archive that already holds a study.
    case studyExists(path: String, name: String)
    /// An operation that needs the study before `createStudy`.
    case noStudy(path: String)
    /// `savePartition` with a partition different from the one stored.
    case partitionDiffers(path: String)
    /// No trial with this id.
    case unknownTrial(Int64)
    /// The trial is not in a state that allows the operation (e.g. dispatching a completed trial).
    case invalidTransition(trial: Int64, state: TrialState, operation: String)
    /// An argument is invalid: the field and what was expected.
    case invalidArgument(field: String, reason: String)
    /// SQLite failed while opening the archive (permissions, a full disk, a lock held too long…).
    case sqlite(path: String, message: String)
    /// A stored value could not be read back (a damaged or hand-edited archive).
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case .notAnArchive(let path, let reason):
            return "\(path): not a BAMBO archive (\(reason))"
        case .newerSchema(let path, let unknown):
            return "\(path): written by a newer BAMBO (unknown schema migrations: \(unknown.joined(separator: ", "))); upgrade bambo to open it"
        case .inUse(let path, let lockFile):
            return "\(path): already open for writing by another coordinator (\(lockFile) is locked)"
        case .missing(let path):
            return "\(path): no such archive"
        case .studyExists(let path, let name):
            return "\(path): already holds study \"\(name)\""
        case .noStudy(let path):
            return "\(path): holds no study yet"
        case .partitionDiffers(let path):
            return "\(path): a different partition is already stored; a study's partition never changes"
        case .unknownTrial(let id):
            return "no trial \(id) in the archive"
        case .invalidTransition(let trial, let state, let operation):
            return "trial \(trial) is \(state.rawValue): cannot \(operation)"
        case .invalidArgument(let field, let reason):
            return "\(field): \(reason)"
        case .sqlite(let path, let message):
            return "\(path): \(message)"
        case .corrupt(let path, let reason):
            return "\(path): damaged archive: \(reason)"
        }
    }
}
