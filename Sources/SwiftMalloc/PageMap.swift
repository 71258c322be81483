// Layer 1: the page map. Answers in O(1), for any address, which span owns its
// page, or "not ours". Two levels over the 47-bit user address space: a root of
// 2^17 pointers (a static 1 MiB array in .bss, touched only where used) and leaves
// of 2^18 entries (2 MiB each, one per GiB of address space, made on first use).
//
// The flat map: the leaves of the 16 TiB window holding the heap's first mapping
// (where the system places every mapping of a process that has not used most of
// that window) are not mapped one by one but lie end to end in one 32 GiB
// reservation that reads as zeros and commits nothing; a leaf is made writable
// when it is first needed, and the root points at it as at any leaf. So for an
// address p in the window, flat[(p >> 12) mod 2^32] is its entry, one load from a
// base that does not depend on p: the free fast path reads it so (API.swift). An
// address outside the window aliases some entry of it, whose span then fails the
// fast path's block-start test (a block of that span is inside the window), and
// the slow path looks it up through the root. Under an address-space limit
// (RLIMIT_AS) there is no reservation: every leaf is mapped on its own and free
// takes the two-level lookup.
//
// Invariant: entry[page] is non-zero iff the page is (a) any page of a small span,
// (b) the first or last page of a large span or free run, (c) the first page of a
// huge span; a non-zero entry is the address of that span's current descriptor.
// Writers hold the page heap lock; readers read without a lock: an entry a thread
// reads for a block it legitimately holds was published before the block was.
import SwiftMallocShims

let addressBits: UInt = 47
let leafBits: UInt = 18
/// The flat map covers 2^flatIndexBits pages: a 16 TiB window, 32 GiB of entries.
let flatIndexBits: UInt = 32
let flatWindowShift: UInt = pageShift &+ flatIndexBits

/// Reserves the flat map for the window holding `address` (once, at start-up, before
/// any leaf exists). Without it the page map is two-level only. Not under an
/// address-space limit: 32 GiB of it would go to a reservation the program
/// never sees.
func reserveFlatPageMap(around address: UInt) {
    if swm_address_space_limited() != 0 { return }
    let guardBytes = Int(SWM_PAGE_FLAT_GUARD)
    guard let reserved = swm_os_reserve_zeros(Int(truncatingIfNeeded: UInt(8) << flatIndexBits) &+ guardBytes) else { return }
    swm_page_flat_set(reserved + guardBytes, address & ~((UInt(1) << flatWindowShift) &- 1))
}

/// Gives back the flat map's reservation but its leaves, once an address-space limit
/// set after start-up (setrlimit, or `prlimit` from outside) refuses the allocator a
/// mapping: the 32 GiB of it would stand against every later one. Called on the
/// way to ENOMEM (Heap.allocateAfterTrim), before the allocation is tried again.
/// Takes the page heap lock.
///
/// Order: `free` is switched to its two-level entry and lookups see no flat map
/// before any of it is unmapped, and makeLeaf, under the same lock, makes fresh
/// leaves from then on. The leaves stay where they are (the root points at them),
/// and so do the guard page (the zero descriptor, and entries' encoding base) and
/// the map's first page, which `free(NULL)` reads. A thread still running the old
/// entry reads entries of blocks it holds, in leaves that stay; only a bad pointer
/// (or one outside the window) then may meet a hole, where it would have aborted.
func retireFlatPageMap(_ heap: UnsafeMutablePointer<Heap>) {
    guard swm_page_flat_get() != nil, swm_address_space_limited() != 0 else { return }
    let pageHeap = heap.pageHeapPointer
    swm_lock(&pageHeap.pointee.lock)
    defer { swm_unlock(&pageHeap.pointee.lock) }
    guard let flat = swm_page_flat_get() else { return }
    swm_use_general_free()
    swm_page_flat_retire()
    let pieceBytes = (UInt(1) << leafBits) &* 8
    let pieces = UInt(1) << (flatIndexBits &- leafBits)
    let firstRoot = Int(truncatingIfNeeded: swm_page_window_get() >> (pageShift &+ leafBits))
    let base = UInt(bitPattern: flat)
    let root = pageMapRoot
    // Unmaps [from, to) of the reservation, never its first page.
    func unmap(_ from: UInt, _ to: UInt) {
        let start = max(from, base &+ pageSize)
        if to > start { OSPages.unmap(UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped, to &- start) }
    }
    var holeStart: UInt? = nil
    var i: UInt = 0
    while i < pieces {
        let piece = base &+ i &* pieceBytes
        let isLeaf = UInt(bitPattern: root[firstRoot &+ Int(i)]) == piece
        if isLeaf, let h = holeStart { unmap(h, piece); holeStart = nil }
        if !isLeaf && holeStart == nil { holeStart = piece }
        i &+= 1
    }
    if let h = holeStart { unmap(h, base &+ pieces &* pieceBytes) }
}

/// A new leaf for root index `r`: its piece of the flat map, made writable, when the
/// GiB lies in the window; otherwise, or when the system refuses that (a sandbox
/// without mprotect), fresh pages: the flat map's piece then stays zero, so `free`
/// finds no span there and takes the slow path, which reads the root. Caller holds
/// the page heap lock.
private func makeLeaf(_ r: Int) -> UnsafeMutablePointer<UInt>? {
    let gib = UInt(bitPattern: r)
    if let flat = swm_page_flat_get(), gib >> (flatWindowShift &- pageShift &- leafBits) == swm_page_window_get() >> flatWindowShift {
        let leaf = flat + Int(truncatingIfNeeded: (gib << leafBits) & ((UInt(1) << flatIndexBits) &- 1))
        if swm_os_make_writable(UnsafeMutableRawPointer(leaf), Int(truncatingIfNeeded: UInt(1) << leafBits &* 8)) == 0 {
            return leaf
        }
    }
    guard let fresh = OSPages.map(UInt(1) << leafBits &* 8) else { return nil }
    return fresh.bindMemory(to: UInt.self, capacity: 1 << Int(leafBits))
}

/// The static root: leaf pointers, nil where no page of that GiB was ever ours.
@inline(__always) var pageMapRoot: UnsafeMutablePointer<UnsafeMutablePointer<UInt>?> {
    UnsafeMutableRawPointer(swm_page_root_get()).assumingMemoryBound(to: UnsafeMutablePointer<UInt>?.self)
}

/// The descriptor of the span owning `address`'s page, or nil: the lookup every
/// free starts with (also inlined by hand into the free fast path).
@inline(__always) func spanOwning(_ address: UInt) -> UnsafeMutablePointer<Span>? {
    if address >> addressBits != 0 { return nil }
    guard let leaf = pageMapRoot[Int(truncatingIfNeeded: address >> (pageShift &+ leafBits))] else { return nil }
    return decodeEntry(leaf[Int(truncatingIfNeeded: (address >> pageShift) & ((1 << leafBits) &- 1))])
}

/// An entry is its descriptor's address minus swm_page_entry_base (fixed before the
/// first leaf is made), 0 for none: see SwiftMallocShims.h.
@inline(__always) func decodeEntry(_ entry: UInt) -> UnsafeMutablePointer<Span>? {
    if entry == 0 { return nil }
    return UnsafeMutablePointer<Span>(bitPattern: swm_page_entry_base_get() &+ entry)
}

@inline(__always) func encodeEntry(_ span: UnsafeMutablePointer<Span>?) -> UInt {
    guard let span else { return 0 }
    return UInt(bitPattern: span) &- swm_page_entry_base_get()
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
            guard let fresh = makeLeaf(r) else { return false }
            leaf = fresh
            root[r] = leaf
        }
        leaf.unsafelyUnwrapped[Int(truncatingIfNeeded: (address >> pageShift) & ((1 << leafBits) &- 1))] = encodeEntry(span)
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
                guard let fresh = makeLeaf(r) else { return false }
                root[r] = fresh
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
