// Messages without allocation: text is assembled in caller-provided memory and
// written with write(2). Used for the one-line bad-free reports and for stats.
import SwiftMallocShims

/// An append-only text buffer over memory the caller owns; flushes to `fd` when full.
struct TextBuffer {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var length: Int = 0
    let fd: Int32
    /// A stdio stream to write to instead of `fd` (malloc_info); its writes may
    /// allocate, so text goes to a stream only with no allocator lock held.
    let stream: UnsafeMutableRawPointer?
    /// Whether a write to `fd` or `stream` failed.
    var failed = false

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int, fd: Int32) {
        self.base = base
        self.capacity = capacity
        self.fd = fd
        self.stream = nil
    }

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int, stream: UnsafeMutableRawPointer) {
        self.base = base
        self.capacity = capacity
        self.fd = -1
        self.stream = stream
    }

    mutating func flush() {
        if length > 0 {
            if let s = stream {
                if swm_stream_write(s, base, length) != 0 { failed = true }
            } else {
                if swm_write_fd(fd, base, length) != 0 { failed = true }
            }
        }
        length = 0
    }

    mutating func byte(_ b: UInt8) {
        if length == capacity { flush() }
        base[length] = b
        length &+= 1
    }

    mutating func text(_ s: StaticString) {
        let p = s.utf8Start
        var i = 0
        while i < s.utf8CodeUnitCount { byte(p[i]); i &+= 1 }
    }

    /// A NUL-terminated C string.
    mutating func cString(_ s: UnsafePointer<CChar>) {
        var i = 0
        while s[i] != 0 { byte(UInt8(bitPattern: s[i])); i &+= 1 }
    }

    mutating func decimal(_ value: UInt, width: Int = 0) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        var n = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[count] = UInt8(48 &+ n % 10)
                n /= 10
                count &+= 1
            } while n > 0
            var pad = width &- count
            while pad > 0 { byte(32); pad &-= 1 }
            while count > 0 { count &-= 1; byte(raw[count]) }
        }
    }

    mutating func hex(_ value: UInt) {
        text("0x")
        var started = false
        var shift = 60
        while shift >= 0 {
            let d = UInt8((value >> UInt(shift)) & 15)
            if d != 0 || started || shift == 0 {
                started = true
                byte(d < 10 ? 48 &+ d : 87 &+ d)
            }
            shift &-= 4
        }
    }

    /// `part / whole` as a percentage with one decimal, right-aligned in `width`.
    mutating func percent(_ part: UInt, of whole: UInt, width: Int = 0) {
        if whole == 0 {
            var pad = width &- 1
            while pad > 0 { byte(32); pad &-= 1 }
            byte(45)
            return
        }
        let tenths = (part &* 1000 &+ whole / 2) / whole
        let intDigits = tenths / 10 >= 100 ? (tenths / 10 >= 1000 ? 4 : 3) : (tenths / 10 >= 10 ? 2 : 1)
        var pad = width &- intDigits &- 3
        while pad > 0 { byte(32); pad &-= 1 }
        decimal(tenths / 10)
        byte(46)
        decimal(tenths % 10)
        byte(37)
    }

    /// Bytes in a human unit (B, KiB, MiB, GiB) with one decimal above bytes.
    mutating func bytes(_ n: UInt) {
        if n < 1024 { decimal(n); text(" B"); return }
        var unit: StaticString = "KiB"
        var div: UInt = 1024
        if n >= 1 << 30 { unit = "GiB"; div = 1 << 30 } else if n >= 1 << 20 { unit = "MiB"; div = 1 << 20 }
        let tenths = (n &* 10 &+ div / 2) / div
        decimal(tenths / 10)
        byte(46)
        decimal(tenths % 10)
        byte(32)
        text(unit)
    }
}

/// Runs `body` with 256 zeroed bytes of stack (no allocation).
func withStackBytes256<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return withUnsafeMutableBytes(of: &storage) { body($0) }
}

/// Runs `body` with a stack buffer of 256 bytes writing to `fd`, then flushes.
@inline(never)
func withLine(fd: Int32 = 2, _ body: (inout TextBuffer) -> Void) {
    withStackBytes256 { raw in
        var out = TextBuffer(base: raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self), capacity: raw.count, fd: fd)
        body(&out)
        out.flush()
    }
}

/// "could not write the WHAT to PATH (ENAME)": a report or the statistics that
/// could not be written, with errno `error`'s name when it has one.
func writeFailureLine(_ out: inout TextBuffer, _ what: StaticString, path: UnsafePointer<CChar>, error: Int32) {
    out.text("swiftmalloc: could not write the ")
    out.text(what)
    out.text(" to ")
    out.cString(path)
    if let name = swm_errno_name(error) {
        out.text(" (")
        out.cString(name)
        out.byte(41)
    }
    out.byte(10)
}

/// What went wrong with a pointer handed to free/realloc/malloc_usable_size.
/// A raw-value enum: a plain one gets a synthesized Hashable conformance whose
/// witnesses pull in the standard library's hash seeding, and with it a libc
/// symbol (arc4random_buf) that only glibc 2.36 and later have.
enum PointerError: UInt8 {
    case notOurs          // the page map does not know the address
    case insideBlock      // ours, but not the start of a block
    case doubleFree       // the block is already free
}

/// Reports a bad pointer in one line on stderr and aborts: never returns.
@inline(never)
func reportBadPointer(_ call: StaticString, _ address: UInt, _ error: PointerError) -> Never {
    withLine { out in
        out.text("swiftmalloc: ")
        out.text(call)
        out.text(": ")
        switch error {
        case .notOurs: out.text("invalid pointer ")
        case .insideBlock: out.text("invalid pointer ")
        case .doubleFree: out.text("double free of ")
        }
        out.hex(address)
        switch error {
        case .notOurs: out.text(" (not allocated by swiftmalloc, or already freed)\n")
        case .insideBlock: out.text(" (points inside a block, not at its start)\n")
        case .doubleFree: out.text(" (block is already free)\n")
        }
    }
    swm_abort()
}

/// A sized free whose size is not the block's requested size, or whose alignment
/// (non-zero here) the block's address does not have: report and abort.
@inline(never)
func reportSizedFreeMismatch(_ call: StaticString, _ block: UInt, requested: UInt, size: UInt, alignment: UInt) -> Never {
    withLine { out in
        out.text("swiftmalloc: ")
        out.text(call)
        out.text(": block ")
        out.hex(block)
        out.text(" of ")
        out.decimal(requested)
        out.text(" bytes freed as ")
        out.decimal(size)
        out.text(" bytes")
        if alignment != 0 {
            out.text(" aligned to ")
            out.decimal(alignment)
        }
        out.text(" (not how it was allocated)\n")
    }
    swm_abort()
}

/// A freed block's pattern was overwritten at byte `offset` (a write after free):
/// report and abort.
@inline(never)
func reportCorruption(_ block: UInt, at offset: UInt) -> Never {
    withLine { out in
        out.text("swiftmalloc: heap corruption: the freed block ")
        out.hex(block)
        out.text(" was written after it was freed (the pattern written into it on free is damaged at offset ")
        out.decimal(offset)
        out.text(")\n")
    }
    swm_abort()
}

/// Bytes past a block's requested size were changed: report and abort.
@inline(never)
func reportOverflow(_ call: StaticString, _ block: UInt, requested: UInt, at offset: UInt) -> Never {
    withLine { out in
        out.text("swiftmalloc: ")
        out.text(call)
        out.text(": heap buffer overflow: block ")
        out.hex(block)
        out.text(" of ")
        out.decimal(requested)
        out.text(" bytes was written past its end (at offset ")
        out.decimal(offset)
        out.text(")\n")
    }
    swm_abort()
}

/// An internal invariant failed: report and abort.
@inline(never)
func internalFailure(_ what: StaticString, _ value: UInt = 0) -> Never {
    withLine { out in
        out.text("swiftmalloc: internal error: ")
        out.text(what)
        out.text(" ")
        out.hex(value)
        out.byte(10)
    }
    swm_abort()
}
