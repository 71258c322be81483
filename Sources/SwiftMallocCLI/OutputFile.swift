// Writing a report to the file `--output` names.
//
// A regular file (or a new one) is replaced whole: the text goes to a
// temporary file beside it, which is renamed over it, so a reader never sees
// half a report. Anything else that exists (a FIFO, /dev/stdout, a terminal)
// is written through. Failures are one-line errors naming the path and the
// system's reason.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum OutputFile {
    static func write(_ text: String, to path: String) throws {
        func failure(_ reason: String) -> ProfileError { ProfileError("cannot write \(path): \(reason)") }
        func systemReason(_ code: Int32) -> String { String(cString: strerror(code)) }
        let data = Data(text.utf8)

        var info = stat()
        if stat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { throw failure("it is a directory") }
            if (info.st_mode & S_IFMT) != S_IFREG {
                let fd = open(path, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { throw failure(systemReason(errno)) }
                defer { close(fd) }
                if let error = StandardStreams.writeAll(data, to: fd) { throw failure(systemReason(error)) }
                return
            }
        }

        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw failure(systemReason(errno)) }
        var error = StandardStreams.writeAll(data, to: fd)
        if close(fd) != 0, error == nil { error = errno }
        if error == nil, rename(temporary, path) != 0 { error = errno }
        if let error {
            unlink(temporary)
            throw failure(systemReason(error))
        }
    }
}
