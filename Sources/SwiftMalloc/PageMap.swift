// Layer 1: the page map. Answers in O(1), for any address, which span owns its
// page, or "not ours". Two levels over the 47-bit user address space: a root of
// 2^17 pointers (1 MiB of address space, touched only where used) and leaves of
// 2^18 entries (2 MiB each, one per GiB of address space, mapped on first use).
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
let rootBits: UInt = 17   // addressBits - pageShift - leafBits

struct PageMap {
    var root: UnsafeMutablePointer<UnsafeMutablePointer<UInt>?>? = nil

    /// Maps the root; false when the system refuses.
    mutating func initialize() -> Bool {
        guard let r = OSPages.map(UInt(1) << rootBits &* 8) else { return false }
        root = r.bindMemory(to: UnsafeMutablePointer<UInt>?.self, capacity: 1 << Int(rootBits))
        return true
    }

    @inline(__always) func span(at address: UInt) -> UnsafeMutablePointer<Span>? {
        if address >> addressBits != 0 { return nil }
        guard let leaf = root.unsafelyUnwrapped[Int(truncatingIfNeeded: address >> (pageShift &+ leafBits))] else { return nil }
        let entry = leaf[Int(truncatingIfNeeded: (address >> pageShift) & ((1 << leafBits) &- 1))]
        return UnsafeMutablePointer<Span>(bitPattern: entry)
    }

    /// Sets the entry of one page, mapping its leaf if needed. Caller holds the page
    /// heap lock. False when a leaf cannot be mapped.
    mutating func set(page address: UInt, to span: UnsafeMutablePointer<Span>?) -> Bool {
        let r = Int(truncatingIfNeeded: address >> (pageShift &+ leafBits))
        var leaf = root.unsafelyUnwrapped[r]
        if leaf == nil {
            if span == nil { return true }
            guard let fresh = OSPages.map(UInt(1) << leafBits &* 8) else { return false }
            leaf = fresh.bindMemory(to: UInt.self, capacity: 1 << Int(leafBits))
            root.unsafelyUnwrapped[r] = leaf
        }
        leaf.unsafelyUnwrapped[Int(truncatingIfNeeded: (address >> pageShift) & ((1 << leafBits) &- 1))] =
            UInt(bitPattern: span)
        return true
    }

    /// Makes sure the leaves covering [start, end) exist, so later `set` calls in that
    /// range cannot fail.
    mutating func reserve(from start: UInt, to end: UInt) -> Bool {
        var a = start & ~((UInt(1) << (pageShift &+ leafBits)) &- 1)
        while a < end {
            let r = Int(truncatingIfNeeded: a >> (pageShift &+ leafBits))
            if root.unsafelyUnwrapped[r] == nil {
                guard let fresh = OSPages.map(UInt(1) << leafBits &* 8) else { return false }
                root.unsafelyUnwrapped[r] = fresh.bindMemory(to: UInt.self, capacity: 1 << Int(leafBits))
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
