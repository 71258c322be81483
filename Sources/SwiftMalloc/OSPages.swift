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

    /// Zeroed pages at exactly `address`, or nil when that range is not free.
    static func map(_ bytes: UInt, at address: UInt) -> UnsafeMutableRawPointer? {
        guard let at = UnsafeMutableRawPointer(bitPattern: address) else { return nil }
        return swm_os_map_at(at, Int(bitPattern: bytes))
    }

    /// Transparent huge pages are 2 MiB on x86-64 and arm64 with 4 KiB pages.
    static let hugePageBytes: UInt = 2 << 20

    /// Allows (or forbids) transparent huge pages on the 2 MiB pages that lie wholly
    /// inside [start, start+bytes). Allowed only inside large blocks, where the
    /// program asked for all of it: faulting a block in then takes one fault per
    /// 2 MiB instead of 512. Ranges without a whole huge page are left alone.
    static func adviseHugePages(_ start: UInt, _ bytes: UInt, _ on: Bool) {
        let lo = (start &+ hugePageBytes &- 1) & ~(hugePageBytes &- 1)
        let hi = (start &+ bytes) & ~(hugePageBytes &- 1)
        if hi > lo {
            _ = swm_os_hugepage(UnsafeMutableRawPointer(bitPattern: lo).unsafelyUnwrapped, Int(bitPattern: hi &- lo), on ? 1 : 0)
        }
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
