// Layer 1: the page map. Answers in O(1), for any address, which span owns its
// page, or "not ours". Two levels over the 47-bit user address space: a root of
// 2^17 pointers (a static 1 MiB array in .bss, touched only where used) and leaves
// of 2^18 entries (2 MiB each, one per GiB of address space, mapped on first use).
// Nothing is reserved up front beyond the root, so `ulimit -v` is respected.
//
// Invariant: entry[page] is non-zero iff the page is (a) any page of a small span,
// (b) the first or last page of a large span or free run, (c) the first page of a
// huge span; a non-zero entry is the address of that span's current descriptor.
// Writers hold the page heap lock; readers read without a lock: an entry a thread
// reads for a block it legitimately holds was published before the block was.
import SwiftMallocShims

let addressBits: UInt = 47
let leafBits: UInt = 18

/// The static root: leaf pointers, nil where no page of that GiB was ever ours.
@inline(__always) var pageMapRoot: UnsafeMutablePointer<UnsafeMutablePointer<UInt>?> {
    UnsafeMutableRawPointer(swm_page_root_get()).assumingMemoryBound(to: UnsafeMutablePointer<UInt>?.self)
}

/// The descriptor of the span owning `address`'s page, or nil: the lookup every
/// free starts with (also inlined by hand into the free fast path).
@inline(__always) func spanOwning(_ address: UInt) -> UnsafeMutablePointer<Span>? {
    if address >> addressBits != 0 { return nil }
    guard let leaf = pageMapRoot[Int(truncatingIfNeeded: address >> (pageShift &+ leafBits))] else { return nil }
    return UnsafeMutablePointer<Span>(bitPattern: leaf[Int(truncatingIfNeeded: (address >> pageShift) & ((1 << leafBits) &- 1))])
}

/// The page map's operations. It holds no state of its own (the root is static and
/// the leaves hang off it); callers reach it through the heap, under the page heap
/// lock for every write.
struct PageMap {
    @inline(__always) func span(at address: UInt) -> UnsafeMutablePointer<Span>? { spanOwning(address) }

    /// Sets the entry of one page, mapping its leaf if needed. Caller holds the page
    /// heap lock. False when a leaf cannot be mapped.
    mutating func set(page address: UInt, to span: UnsafeMutablePointer<Span>?) -> Bool {
        let r = Int(truncatingIfNeeded: address >> (pageShift &+ leafBits))
        let root = pageMapRoot
        var leaf = root[r]
        if leaf == nil {
            if span == nil { return true }
            guard let fresh = OSPages.map(UInt(1) << leafBits &* 8) else { return false }
            leaf = fresh.bindMemory(to: UInt.self, capacity: 1 << Int(leafBits))
            root[r] = leaf
        }
        leaf.unsafelyUnwrapped[Int(truncatingIfNeeded: (address >> pageShift) & ((1 << leafBits) &- 1))] =
            UInt(bitPattern: span)
        return true
    }

    /// Whether the leaves covering [start, end) exist.
    func isReserved(from start: UInt, to end: UInt) -> Bool {
        let root = pageMapRoot
        var a = start & ~((UInt(1) << (pageShift &+ leafBits)) &- 1)
        while a < end {
            if root[Int(truncatingIfNeeded: a >> (pageShift &+ leafBits))] == nil { return false }
            a &+= UInt(1) << (pageShift &+ leafBits)
        }
        return true
    }

    /// Makes sure the leaves covering [start, end) exist, so later `set` calls in that
    /// range cannot fail.
    mutating func reserve(from start: UInt, to end: UInt) -> Bool {
        let root = pageMapRoot
        var a = start & ~((UInt(1) << (pageShift &+ leafBits)) &- 1)
        while a < end {
            let r = Int(truncatingIfNeeded: a >> (pageShift &+ leafBits))
            if root[r] == nil {
                guard let fresh = OSPages.map(UInt(1) << leafBits &* 8) else { return false }
                root[r] = fresh.bindMemory(to: UInt.self, capacity: 1 << Int(leafBits))
            }
            a &+= UInt(1) << (pageShift &+ leafBits)
        }
        return true
    }

    /// Points every page of [start, start + pages) at `span` (leaves must exist).
    mutating func setRange(_ start: UInt, pages: UInt, to span: UnsafeMutablePointer<Span>?) {
        var i: UInt = 0
        while i < pages {
            _ = set(page: start &+ (i << pageShift), to: span)
            i &+= 1
        }
    }
}
