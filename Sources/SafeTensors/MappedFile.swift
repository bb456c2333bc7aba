#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Unmapped when released.
final class MappedFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    let path: String
    let size: Int
    private let base: UnsafeMutableRawPointer?

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeTensorsError(file: path, .io(operation: "open", errno: errno)) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SafeTensorsError(file: path, .io(operation: "fstat", errno: errno)) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError(file: path, .io(operation: "open (not a regular file)", errno: EINVAL))
        }
        size = Int(status.st_size)
        if size == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw SafeTensorsError(file: path, .io(operation: "mmap", errno: errno))
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// The file's bytes; valid while this object is alive.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0) }, count: size)
    }

    /// Tells the kernel the given byte range will be read soon (`willNeed`: the pages covering it),
    /// or that it is no longer needed (only the pages lying wholly inside it, so neighbouring data
    /// that other threads may be reading is untouched; dropped pages are re-read from the file on
    /// the next access, so this affects memory use, never the data).
    func advise(_ range: Range<Int>, willNeed: Bool) {
        guard let base, !range.isEmpty, range.lowerBound >= 0, range.upperBound <= size else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = willNeed ? range.lowerBound / page * page : (range.lowerBound + page - 1) / page * page
        let end = willNeed ? range.upperBound : range.upperBound / page * page
        guard end > start else { return }
        _ = madvise(base + start, end - start, willNeed ? MADV_WILLNEED : MADV_DONTNEED)
    }
}
