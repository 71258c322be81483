// Paths the exit reports are written to: a template from the environment
// (SWIFTMALLOC_REPORT, SWIFTMALLOC_STATS_FILE) kept in a fixed buffer, with `%p`
// replaced by the process id when a report is written, so each process of a
// program that forks gets its own file; and the opening of those files when the
// process has no descriptor left under its limit. Never allocates.
import SwiftMallocShims

/// The longest template taken: with each of at most 4 `%p` replaced by a pid (at
/// most 10 digits) and the suffix of the file written beside it
/// (`.<pid>.<tid>.tmp`), the path fits the 256-byte buffers that hold it.
let reportTemplateLimit = 190

/// Whether `template` fits those buffers (see reportTemplateLimit).
func reportTemplateFits(_ template: UnsafePointer<CChar>) -> Bool {
    var i = 0, pids = 0
    while template[i] != 0 {
        if template[i] == 37 && template[i &+ 1] == 112 { pids &+= 1 }   // "%p"
        i &+= 1
        if i > reportTemplateLimit { return false }
    }
    return pids <= 4
}

/// Writes `value` in decimal at out[o...] (at most 20 bytes), advancing o.
func appendDecimal(_ value: UInt, _ out: UnsafeMutablePointer<CChar>, _ o: inout Int) {
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var v = value
    var n = 0
    withUnsafeMutableBytes(of: &digits) { d in
        repeat { d[n] = UInt8(48 &+ v % 10); v /= 10; n &+= 1 } while v > 0
        while n > 0 { n &-= 1; out[o] = CChar(bitPattern: d[n]); o &+= 1 }
    }
}

/// A report path template, NUL-terminated; empty: none was given.
struct PathTemplate {
    private var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    var isEmpty: Bool { bytes.0 & 0xFF == 0 }

    /// Copies `template`, the value of variable `name`; one that does not fit is
    /// refused with a line on stderr saying so and what happens `instead`.
    mutating func set(_ template: UnsafePointer<CChar>, from name: StaticString, instead: StaticString) {
        if !reportTemplateFits(template) {
            withLine { out in
                out.text("swiftmalloc: ")
                out.text(name)
                out.text(" is longer than ")
                out.decimal(UInt(reportTemplateLimit))
                out.text(" bytes or has more than 4 %p: ")
                out.text(instead)
                out.byte(10)
            }
            return
        }
        withUnsafeMutableBytes(of: &bytes) { out in
            var i = 0
            while i < out.count &- 1 && template[i] != 0 { out[i] = UInt8(bitPattern: template[i]); i &+= 1 }
            out[i] = 0
        }
    }

    /// The path for this process into `out` (`capacity` bytes, at least 256): the
    /// template, or `fallback` when it is empty, with each `%p` replaced by the pid.
    mutating func expand(fallback: StaticString, into out: UnsafeMutablePointer<CChar>, capacity: Int) {
        withUnsafeMutableBytes(of: &bytes) { t in
            var template = t.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)
            if template[0] == 0 { template = UnsafeMutablePointer<UInt8>(mutating: fallback.utf8Start) }
            var o = 0
            var i = 0
            while template[i] != 0 && o < capacity &- 24 {
                if template[i] == 37 && template[i &+ 1] == 112 {   // "%p"
                    appendDecimal(UInt(swm_getpid()), out, &o)
                    i &+= 2
                } else {
                    out[o] = CChar(bitPattern: template[i])
                    o &+= 1
                    i &+= 1
                }
            }
            out[o] = 0
        }
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// Opens a report's file with `open`. When the process holds every descriptor
    /// its soft limit allows (EMFILE: a program that leaks them), the limit is raised
    /// by up to four if the hard limit leaves room, else the reports' own duplicate of
    /// stderr is closed if that frees a number under the limit; `room` says which,
    /// for restoreRoom once the file is closed. errno is open's.
    func openMakingRoom(_ open: () -> Int32) -> (fd: Int32, room: RoomMade) {
        let fd = open()
        if fd >= 0 || swm_get_errno() != EMFILE { return (fd, .none) }
        var saved: UInt = 0
        if swm_nofile_raise(&saved) != 0 { return (open(), .limitRaised(saved)) }
        let limit = swm_nofile_soft()
        if pointee.reportFD <= 2 || UInt(pointee.reportFD) >= limit { swm_set_errno(EMFILE); return (-1, .none) }
        _ = swm_close(pointee.reportFD)
        return (open(), .reportFDClosed)
    }

    /// Undoes what openMakingRoom did, after the file is closed; errno is kept.
    func restoreRoom(_ room: RoomMade) {
        let error = swm_get_errno()
        switch room {
        case .none: break
        case .limitRaised(let saved): swm_nofile_restore(saved)
        case .reportFDClosed: pointee.reportFD = swm_dup_stderr()
        }
        swm_set_errno(error)
    }
}

/// What openMakingRoom did to open a file past the descriptor limit.
enum RoomMade {
    case none
    case limitRaised(UInt)
    case reportFDClosed
}
