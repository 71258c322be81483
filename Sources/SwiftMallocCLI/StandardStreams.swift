// This process's standard streams, written with write(2) so that a failure is
// an error to report, never a trap.
//
// A descriptor among 0, 1 and 2 that was closed when the tool started is
// opened on /dev/null at once: otherwise the next file or pipe the tool opens
// would take its number, and messages meant for stderr would go into it.
// Output meant for a standard output that was closed is refused with an error.

import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum StandardStreams {
    /// The standard descriptors (0, 1, 2) that were closed at start-up and now
    /// hold /dev/null. Written once, before anything else runs.
    nonisolated(unsafe) private(set) static var closedAtStart: Set<Int32> = []

    /// Fills closed standard descriptors with /dev/null; call first thing.
    static func claimClosedDescriptors() {
        for fd: Int32 in [0, 1, 2] where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            let null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY)
            guard null >= 0 else { continue }
            if null != fd {
                dup2(null, fd)
                close(null)
            }
            closedAtStart.insert(fd)
        }
    }

    /// Writes all of `data` to `fd`; the errno of the first failed write.
    static func writeAll(_ data: Data, to fd: Int32) -> Int32? {
        data.withUnsafeBytes { writeAll($0, to: fd) }
    }

    /// Writes all of `buffer` to `fd`; the errno of the first failed write.
    static func writeAll(_ buffer: UnsafeRawBufferPointer, to fd: Int32) -> Int32? {
        guard var next = buffer.baseAddress else { return nil }
        var left = buffer.count
        while left > 0 {
            let n = write(fd, next, left)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            next += n
            left -= n
        }
        return nil
    }

    /// Writes the tool's output to standard output. A closed or failing stdout
    /// is an error; a reader that went away (EPIPE, with SIGPIPE ignored, else
    /// the signal ends the process first) ends the tool quietly with status 141,
    /// as SIGPIPE would, so that a pipeline such as `report … | head` reads the same
    /// either way.
    static func writeOutput(_ text: String) throws {
        if closedAtStart.contains(1) {
            throw ProfileError("cannot write the output: standard output is closed")
        }
        guard let error = writeAll(Data(text.utf8), to: 1) else { return }
        if error == EPIPE { throw ExitCode(141) }
        throw ProfileError("cannot write the output: \(String(cString: strerror(error)))")
    }

    /// Writes a message to standard error; failures are ignored (there is
    /// nowhere left to report them, and they must not change the exit status).
    static func writeMessage(_ text: String) {
        _ = writeAll(Data(text.utf8), to: 2)
    }
}
