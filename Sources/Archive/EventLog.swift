import BamboProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The archive's events as JSON lines (Protocol/README.md §9) in a file beside the archive, for
/// `bambo log --follow` and for people with `tail -f`.
///
/// The event table is the truth; the file is its mirror, written only after the transaction that
/// inserted the events has committed, in `seq` order, by the one writer. When the file is opened it
/// is repaired against the table: a torn last line or lines the table does not hold (a power loss
/// lost the transaction) are cut, and events the file lacks (a crash between commit and write) are
/// appended. So after `Archive.open` the file always holds exactly the table's events.
///
/// Durability (`SyncPolicy`): by default each transaction's lines are handed to the kernel with one
/// `write` and not fsync'd — they survive a crash of the process (`kill -9`), and what a power loss
/// takes is rewritten from the table at the next open. `.fsyncEachWrite` fsyncs after every write.
public final class EventLog: @unchecked Sendable {
    /// When the file is flushed to stable storage.
    public enum SyncPolicy: Sendable, Hashable {
        /// Never fsync'd explicitly (the kernel writes back); the table repairs the file at open. Default.
        case kernelBuffered
        /// `fsync` after each transaction's events.
        case fsyncEachWrite
    }

    /// The JSONL file.
    public let url: URL
    public let syncPolicy: SyncPolicy
    private let lock = NSLock()
    private let handle: FileHandle
    private var lastWritten: Int64
    private var closed = false

    /// The file beside the archive at `archive`: `study.sqlite` → `study.events.jsonl`.
    public static func url(besideArchive archive: URL) -> URL {
        let base = archive.pathExtension.isEmpty ? archive : archive.deletingPathExtension()
        return base.appendingPathExtension("events.jsonl")
    }

    /// Opens (creating) the file and repairs it against the stored events: `storedCount` is the
    /// table's highest seq, `fetch(after)` returns the stored events with seq > `after` in order.
    /// Takes an exclusive `flock` on the file: a second writer of the same archive gets
    /// `ArchiveError.inUse` (for `archivePath`).
    init(url: URL, archivePath: String, syncPolicy: SyncPolicy, storedCount: Int64, fetch: (Int64) throws -> [EventRecord]) throws {
        self.url = url
        self.syncPolicy = syncPolicy
        let manager = FileManager.default
        if !manager.fileExists(atPath: url.path) {
            guard manager.createFile(atPath: url.path, contents: nil) else {
                throw ArchiveError.invalidArgument(field: url.path, reason: "cannot create the event log file")
            }
        }
        handle = try FileHandle(forUpdating: url)
        // The writer's lock: held while the file is open, released by the kernel if the process dies.
        guard flock(handle.fileDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            try? handle.close()
            throw ArchiveError.inUse(path: archivePath, lockFile: url.path)
        }
        let contents = try handle.readToEnd() ?? Data()
        let (keep, last) = EventLog.validPrefix(of: contents, upTo: storedCount)
        if keep < contents.count {
            try handle.truncate(atOffset: UInt64(keep))
        }
        try handle.seekToEnd()
        lastWritten = last
        if last < storedCount {
            try write(try fetch(last))
        }
    }

    deinit {
        if !closed { try? handle.close() }
    }

    /// The highest seq in the file.
    public var lastSeq: Int64 {
        lock.withLock { lastWritten }
    }

    /// Appends events that were just committed. When the file is behind (an earlier write failed),
    /// `fetch(after)` supplies the missing ones from the table first.
    func append(_ events: [EventRecord], fetch: (Int64) throws -> [EventRecord]) throws {
        guard let first = events.first else { return }
        try lock.withLock {
            guard !closed else { return }
            if first.seq == lastWritten + 1 {
                try write(events)
            } else if first.seq > lastWritten + 1 {
                try write(try fetch(lastWritten))
            }
        }
    }

    /// Writes consecutive events (seq = lastWritten + 1, …) as one `write`. Caller holds the lock or is init.
    private func write(_ events: [EventRecord]) throws {
        guard !events.isEmpty else { return }
        var data = Data()
        var expected = lastWritten + 1
        for event in events {
            guard event.seq == expected else {
                throw ArchiveError.corrupt(path: url.path, reason: "event \(event.seq) follows \(expected - 1) in the event table")
            }
            data.append(try event.jsonLine())
            data.append(UInt8(ascii: "\n"))
            expected += 1
        }
        try handle.write(contentsOf: data)
        if syncPolicy == .fsyncEachWrite {
            try handle.synchronize()
        }
        lastWritten = expected - 1
    }

    /// Flushes the file to stable storage now.
    public func synchronize() throws {
        try lock.withLock {
            if !closed { try handle.synchronize() }
        }
    }

    /// Flushes and closes the file, releasing the writer's lock. Later appends are ignored.
    func close() throws {
        try lock.withLock {
            guard !closed else { return }
            closed = true
            try handle.synchronize()
            try handle.close()
        }
    }

    /// The length of the longest prefix of whole lines holding events 1, 2, … ≤ `upTo`, and its last seq.
    static func validPrefix(of contents: Data, upTo maxSeq: Int64) -> (bytes: Int, lastSeq: Int64) {
        var keep = 0
        var last: Int64 = 0
        var start = contents.startIndex
        while let newline = contents[start...].firstIndex(of: UInt8(ascii: "\n")) {
            guard let event = try? EventRecord(jsonLine: contents[start..<newline]),
                  event.seq == last + 1, event.seq <= maxSeq
            else { break }
            last = event.seq
            start = contents.index(after: newline)
            keep = start - contents.startIndex
        }
        return (keep, last)
    }

    /// Reads every event of a JSONL event file; a torn last line is ignored.
    public static func read(from url: URL) throws -> [EventRecord] {
        let contents = try Data(contentsOf: url)
        var events: [EventRecord] = []
        var start = contents.startIndex
        var line = 1
        while let newline = contents[start...].firstIndex(of: UInt8(ascii: "\n")) {
            do {
                events.append(try EventRecord(jsonLine: contents[start..<newline]))
            } catch {
                throw ArchiveError.corrupt(path: url.path, reason: "line \(line) is not an event: \(error)")
            }
            start = contents.index(after: newline)
            line += 1
        }
        return events
    }
}
