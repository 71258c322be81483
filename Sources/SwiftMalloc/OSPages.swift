// Layer 0: pages from the operating system. Every byte the allocator holds comes
// through here, so the counters below are the ground truth of "required" memory.
import SwiftMallocShims

/// The OS page: the unit of the page map, of page runs, and of memory given back.
let pageShift: UInt = 12
let pageSize: UInt = 4096
let pageMask: UInt = 4095

@inline(__always) func pagesFor(bytes: UInt) -> UInt { (bytes &+ pageMask) >> pageShift }

enum OSPages {
    /// Zeroed, page-aligned memory, or nil when the system refuses (errno set by mmap).
    static func map(_ bytes: UInt) -> UnsafeMutableRawPointer? {
        swm_os_map(Int(bitPattern: bytes))
    }

    static func unmap(_ p: UnsafeMutableRawPointer, _ bytes: UInt) {
        _ = swm_os_unmap(p, Int(bitPattern: bytes))
    }

    /// Returns the physical pages behind [p, p+bytes) to the system; the range stays
    /// mapped and reads back as zeros (MADV_DONTNEED, so RSS falls at once).
    static func purge(_ p: UnsafeMutableRawPointer, _ bytes: UInt) {
        _ = swm_os_purge(p, Int(bitPattern: bytes))
    }

    /// Maps `bytes` aligned to `alignment` (a power of two above the page size) by
    /// over-mapping and trimming both ends.
    static func mapAligned(_ bytes: UInt, alignment: UInt) -> UnsafeMutableRawPointer? {
        if alignment <= pageSize { return map(bytes) }
        let (total, overflow) = bytes.addingReportingOverflow(alignment)
        if overflow { return nil }
        guard let raw = map(total) else { return nil }
        let base = UInt(bitPattern: raw)
        let aligned = (base &+ alignment &- 1) & ~(alignment &- 1)
        let lead = aligned &- base
        if lead > 0 { unmap(raw, lead) }
        let tail = total &- lead &- bytes
        if tail > 0 { unmap(UnsafeMutableRawPointer(bitPattern: aligned &+ bytes)!, tail) }
        return UnsafeMutableRawPointer(bitPattern: aligned)
    }
}
