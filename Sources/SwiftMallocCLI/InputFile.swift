// Reading a whole input file: a regular file, or a stream (a FIFO, a process
// substitution such as `<(zcat f.gz)`, a terminal) read to its end, or
// standard input when the path is "-".

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum InputFile {
    /// The path that stands for standard input.
    static let standardInput = "-"

    /// How `path` is named in messages.
    static func displayName(_ path: String) -> String {
        path == standardInput ? "(standard input)" : path
    }

    /// Every byte of `path` up to its end; errors are one line naming the path.
    /// `accepts` sees the bytes read so far after each read until it returns true
    /// (it throws to refuse the input), so that an input that is no profile at all
    /// (`/dev/zero`, a large binary file) is refused after its first bytes rather
    /// than read whole.
    static func read(_ path: String, accepts: (Data, _ atEnd: Bool) throws -> Bool = { _, _ in true }) throws -> Data {
        let name = displayName(path)
        let fd: Int32
        if path == standardInput {
            fd = 0
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { throw ProfileError("\(name): no such file") }
                throw ProfileError("\(name): cannot read the file: \(String(cString: strerror(errno)))")
            }
        }
        defer { if fd != 0 { close(fd) } }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw ProfileError("\(name): is a directory, not a profile file")
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var accepted = false
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ProfileError("\(name): cannot read the file: \(String(cString: strerror(errno)))")
            }
            data.append(contentsOf: buffer[0..<n])
            if !accepted { accepted = try accepts(data, false) }
        }
        if !accepted { _ = try accepts(data, true) }
        return data
    }
}
