// A report written as it is made, in pieces of about a megabyte, to standard
// output or to the file `--output` names: a report of a large profile (a JSON
// document with a million sites is gigabytes) is never held whole in memory.
//
// A regular file (or a new one) is replaced whole: the text goes to a
// temporary file beside it, which is renamed over it when the report is
// complete, so a reader never sees half a report. Anything else that exists
// (a FIFO, /dev/stdout, a terminal) is written through. Failures are one-line
// errors naming the path and the system's reason; on standard output, a reader
// that went away ends the tool with status 141 (StandardStreams.writeOutput).

import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

final class ReportOutput {
    /// nil for standard output.
    private let path: String?
    private let fd: Int32
    /// The file renamed over `path` when done; nil when written through.
    private let temporary: String?
    private var buffer: [UInt8] = []
    private var closed = false
    static let chunk = 1 << 20

    private init(path: String?, fd: Int32, temporary: String?) {
        self.path = path
        self.fd = fd
        self.temporary = temporary
        buffer.reserveCapacity(ReportOutput.chunk + (1 << 16))
    }

    /// Standard output when `path` is nil or "-", else the file.
    static func open(_ path: String?) throws -> ReportOutput {
        guard let path, path != "-" else {
            if StandardStreams.closedAtStart.contains(1) {
                throw ProfileError("cannot write the output: standard output is closed")
            }
            return ReportOutput(path: nil, fd: 1, temporary: nil)
        }
        var info = stat()
        if stat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { throw failure(path, "it is a directory") }
            if (info.st_mode & S_IFMT) != S_IFREG {
                let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { throw failure(path, systemReason(errno)) }
                return ReportOutput(path: path, fd: fd, temporary: nil)
            }
        }
        // A predictable name: whatever is there (a crashed run's file, or a link
        // planted by someone who can write the directory) goes first, and O_EXCL
        // refuses a link made in between rather than write through it.
        let temporary = "\(path).tmp-\(getpid())"
        _ = unlink(temporary)
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw failure(path, systemReason(errno)) }
        return ReportOutput(path: path, fd: fd, temporary: temporary)
    }

    private static func failure(_ path: String, _ reason: String) -> ProfileError {
        ProfileError("cannot write \(path): \(reason)")
    }

    private static func systemReason(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Adds text; written out once a megabyte has gathered.
    func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= ReportOutput.chunk { try flush() }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        let error = buffer.withUnsafeBytes { StandardStreams.writeAll($0, to: fd) }
        buffer.removeAll(keepingCapacity: true)
        guard let error else { return }
        abandon()
        guard let path else {
            if error == EPIPE { throw ExitCode(141) }
            throw ProfileError("cannot write the output: \(ReportOutput.systemReason(error))")
        }
        throw ReportOutput.failure(path, ReportOutput.systemReason(error))
    }

    /// Writes what is left and puts the file in place.
    func finish() throws {
        try flush()
        guard !closed else { return }
        closed = true
        guard let path, fd != 1 else { return }
        var error: Int32? = nil
        if close(fd) != 0 { error = errno }
        if let temporary {
            if error == nil, rename(temporary, path) != 0 { error = errno }
            if error != nil { unlink(temporary) }
        }
        if let error { throw ReportOutput.failure(path, ReportOutput.systemReason(error)) }
    }

    /// Gives up: closes the file and removes the temporary one.
    func abandon() {
        guard !closed else { return }
        closed = true
        guard fd != 1 else { return }
        close(fd)
        if let temporary { unlink(temporary) }
    }
}
