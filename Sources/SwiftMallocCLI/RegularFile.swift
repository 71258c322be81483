// Opening the files a profile names (modules), which may be anything: only a
// regular file is opened for reading. The open itself does not block (a FIFO
// opened for reading would wait for a writer), and a file that is not regular
// is closed again at once.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum RegularFile {
    /// A handle for reading `path`, or nil when it is not a readable regular file.
    static func open(_ path: String) -> FileHandle? {
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return nil
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Whether `path` is a regular file (after links) this process may read.
    static func isReadable(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, R_OK) == 0
    }

    /// Whether `path` exists and is not a regular file (a directory, a FIFO, a device).
    static func existsAndIsNotRegular(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG
    }
}
