// Layer 5: the C API, exported as swiftmalloc_* (the reserved names are one-jump
// forwarders in SwiftMallocShims/forward.c). malloc and free carry the fast paths:
// a thread-cache pop, and a page-map lookup plus a push. Everything else is in
// Allocator.swift, reached through @inline(never) slow paths.
import SwiftMallocShims

@inline(__always) private func fail(_ code: Int32) -> UnsafeMutableRawPointer? {
    swm_set_errno(code)
    return nil
}

// malloc, free and the sampled malloc are named with @_silgen_name rather than
// @_cdecl: the symbol is then the function body itself, not a thunk that jumps to
// it. Their signatures (integers and pointers in, one pointer out) are passed and
// returned in the same registers by the Swift and C conventions on x86-64 and
// AArch64; the C and program tests call them through the C header.
@_silgen_name("swiftmalloc_malloc")
public func swiftmalloc_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    let n = UInt(bitPattern: size)
    let tc = swm_tls_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
    let p = tc.pop(forRequest: n)
    if p != 0 { return UnsafeMutableRawPointer(bitPattern: p) }
    return mallocSlow(n)
}

/// malloc while the sampling profiler runs (the exported `malloc` jumps here
/// instead): the same fast path, charging the bytes to the thread's countdown; the
/// allocation that crosses it takes the slow path, which samples it.
@_silgen_name("swm_malloc_sampled")
func swm_malloc_sampled(_ size: Int) -> UnsafeMutableRawPointer? {
    let n = UInt(bitPattern: size)
    let tc = swm_tls_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
    // Charged first, in memory: one subtract whose sign flag is the test.
    tc.pointee.sampleCountdown &-= Int(bitPattern: n)
    if tc.pointee.sampleCountdown >= 0 {
        let p = tc.pop(forRequest: n)
        if p != 0 { return UnsafeMutableRawPointer(bitPattern: p) }
    }
    return sampledMallocOut(size, UnsafeMutableRawPointer(tc))
}

/// swm_malloc_sampled_out (unwind.c), declared as a Swift function so that the
/// fast path leaves with a jump, as to any Swift function, rather than a call: the
/// C function then sees the program as its caller and can capture its stack
/// before the allocator's frames are on it. An integer and a pointer in, a pointer
/// out: the same registers in both conventions, and the C function keeps the
/// registers Swift's convention reserves (r12, r13), which C preserves.
@_silgen_name("swm_malloc_sampled_out")
func sampledMallocOut(_ size: Int, _ cache: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer?

/// malloc under full profiling, once the profiled entry (unwind.c) has captured
/// its caller's stack: `depth` frames in `tc`'s frame scratch, with hash `hash`
/// (depth 0: no stack). A small request goes straight to the thread's tracked bin
/// with that stack's site; anything else takes the allocator's general path with it.
@_silgen_name("swm_malloc_captured")
func swm_malloc_captured(_ size: Int, _ cache: UnsafeMutableRawPointer, _ depth: Int32, _ hash: UInt64) -> UnsafeMutableRawPointer? {
    let n = UInt(bitPattern: size)
    let tc = cache.assumingMemoryBound(to: ThreadCache.self)
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self), let profiler = heap.pointee.profiler else {
        return swiftmalloc_malloc(size)
    }
    let site = profiler.site(captured: tc.frames, Int(depth), hash: hash, memo: tc)
    if n <= maxSmallSize && !heap.pointee.config.direct {
        let cls = SizeClasses.index(for: n)
        let p = heap.allocateTrackedFromBin(cls, requested: n, site: site, tc: tc, profiler: profiler)
        if p != 0 { return UnsafeMutableRawPointer(bitPattern: p) }
        heap.startPurgerIfWanted()
        let q = heap.allocateTracked(cls, requested: n, site: site)
        if q != 0 { return UnsafeMutableRawPointer(bitPattern: q) }
        // Out of memory: the general path gives back what is free and tries again.
        return heap.allocate(n, site: site) ?? fail(ENOMEM)
    }
    heap.startPurgerIfWanted()
    return heap.allocate(n, site: site) ?? fail(ENOMEM)
}

/// The sampled malloc's slow path, after swm_malloc_sampled_out. The slow path
/// charges the countdown itself (Profiler.capture): take back what the fast path
/// charged, so no byte counts twice.
@_silgen_name("swm_malloc_sampled_slow")
func swm_malloc_sampled_slow(_ size: Int, _ cache: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    let tc = cache.assumingMemoryBound(to: ThreadCache.self)
    tc.pointee.sampleCountdown &+= size
    return mallocSlow(UInt(bitPattern: size))
}

@inline(never)
func mallocSlow(_ n: UInt) -> UnsafeMutableRawPointer? {
    guard let heap = currentHeap() else { return fail(ENOMEM) }
    heap.startPurgerIfWanted()
    return heap.allocate(n) ?? fail(ENOMEM)
}

/// The free fast path: page map → span → one multiply and rotate decide that `ptr`
/// is the start of a carved block of an ordinary small span, or a granule of a
/// mixed span (BlockDivisor; every other span has fastLimit 0), the free key says
/// it is not already free, and it goes on the thread's bin for the span: its
/// class's, or for a mixed span the unsorted bin, whose blocks are checked and
/// sorted into their classes' bins later (ThreadCache.sortUnsorted). NULL fails
/// a lookup test (page 0 is never ours) and returns at the exit to the slow path;
/// anything else takes the slow path, which reports bad pointers.
///
/// The exported `free` enters swm_free_flat, which reads the page's entry from the
/// flat map, once start-up has reserved it (PageMap.swift); swiftmalloc_free, the
/// prefixed API's, reads it too where it exists (two instructions more, to test
/// for it), and otherwise walks root and leaf, as `free` does before start-up or
/// without the reservation.
@_silgen_name("swiftmalloc_free")
public func swiftmalloc_free(_ ptr: UnsafeMutableRawPointer?) {
    free(ptr, call: "free()")
}

/// free, naming `call` in what it reports about a bad pointer.
@inline(__always)
private func free(_ ptr: UnsafeMutableRawPointer?, call: StaticString) {
    let p = UInt(bitPattern: ptr)
    if let flat = swm_page_flat_get() { return freeFast(p, swm_page_flat_span(flat, p).unsafelyUnwrapped.assumingMemoryBound(to: Span.self), call: call) }
    // The root index is masked rather than range-checked: an address above the
    // 47-bit space aliases some leaf, but then p - span.start is at least 2^47 minus
    // the span's end, never a carved block's offset, so it fails the test below.
    let root = pageMapRoot[Int(truncatingIfNeeded: (p >> (pageShift &+ leafBits)) & ((1 << (addressBits &- pageShift &- leafBits)) &- 1))]
    if let leaf = root {
        let entry = leaf[Int(truncatingIfNeeded: (p >> pageShift) & ((1 << leafBits) &- 1))]
        freeFast(p, UnsafeMutablePointer<Span>(bitPattern: swm_page_entry_base_get() &+ entry).unsafelyUnwrapped, call: call)
    } else {
        freeSlowOrNull(p, call: call)
    }
}

@_silgen_name("swm_free_flat")
func swm_free_flat(_ ptr: UnsafeMutableRawPointer?) {
    let p = UInt(bitPattern: ptr)
    // An address outside the window aliases an entry inside it; as above, the
    // block-start test then fails and the slow path looks it up through the root.
    freeFast(p, swm_page_flat_span_unretired(p).unsafelyUnwrapped.assumingMemoryBound(to: Span.self), call: "free()")
}

/// `span` is the page's descriptor, or the zero descriptor (fastLimit 0) where the
/// page is not ours.
@inline(__always)
private func freeFast(_ p: UInt, _ span: UnsafeMutablePointer<Span>, call: StaticString) {
    let index = BlockDivisor.quotient(p &- span.pointee.start, inverse: span.pointee.divInverse, shift: span.pointee.divShift)
    if index < span.pointee.fastLimit {
        let tc = swm_tls_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
        let mark = tc.pointee.freeKey ^ p
        if freeMarkWord(p) != mark {
            let offset = UInt(span.pointee.binOffset)
            let b = tc.bin(atOffset: offset)
            b.pointee.room &-= 1
            if b.pointee.room >= 0 {
                setNextFree(p, b.pointee.head)
                setFreeMarkWord(p, mark)
                b.pointee.head = p
                return
            }
            return freeFullBin(p, tc, offset, call: call)
        }
    }
    freeSlowOrNull(p, call: call)
}

@inline(__always)
private func freeSlowOrNull(_ p: UInt, call: StaticString) {
    // free(NULL), which programs call often, ends here.
    if p == 0 { return }
    freeSlow(p, call: call)
}

/// free in tracking mode (the exported `free` jumps here instead, see
/// Lifecycle.readEnvironment): every small span has fastLimit 0 then, so the fast
/// path above would fail its first test and find the span again on the slow path.
/// This looks it up once and checks that it is a block start of an ordinary small
/// span; freeTracked then checks that its record is live (a block in a tracked bin
/// carries its record's address, not the free key). Anything else takes the slow
/// path, which reports bad pointers.
@_silgen_name("swm_free_tracked")
func swm_free_tracked(_ ptr: UnsafeMutableRawPointer?) {
    let p = UInt(bitPattern: ptr)
    // The flat map where there is one (an alias for an address outside its window
    // fails blockIndex, which is exact).
    let flat = swm_page_flat_get()
    let found = flat != nil ? decodeEntry(swm_page_flat_entry(flat, p)) : spanOwning(p)
    if let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self),
       let span = found, span.pointee.state == .small,
       !span.pointee.forSampling, let index = span.pointee.blockIndex(of: p), let tc = heap.currentCache() {
        return heap.freeTracked(p, span: span, index: index, tc: tc, call: "free()")
    }
    freeSlow(p, call: "free()")
}

/// The fast path found the bin full (or limited to 0) after taking a slot: give
/// the slot back, then free the slow way.
@inline(never)
func freeFullBin(_ p: UInt, _ tc: UnsafeMutablePointer<ThreadCache>, _ binOffset: UInt, call: StaticString) {
    tc.bin(atOffset: binOffset).pointee.room &+= 1
    freeSlow(p, call: call)
}

@inline(never)
func freeSlow(_ p: UInt, call: StaticString) {
    if p == 0 { return }
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { reportBadPointer(call, p, .notOurs) }
    heap.free(p, call: call)
}

@_cdecl("swiftmalloc_calloc")
public func swiftmalloc_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let (total, overflow) = UInt(bitPattern: count).multipliedReportingOverflow(by: UInt(bitPattern: size))
    if overflow || total > maxRequest { return fail(ENOMEM) }
    guard let heap = currentHeap() else { return fail(ENOMEM) }
    heap.startPurgerIfWanted()
    guard let p = heap.allocate(total) else { return fail(ENOMEM) }
    // Huge blocks are fresh mappings and already zero. Whether this one is huge is
    // read from the block, not the threshold: another thread's mallopt may have
    // moved the threshold past `total` since the block was placed.
    if total <= maxSmallSize || spanOwning(UInt(bitPattern: p))?.pointee.state != .huge {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Int(total))
    }
    return p
}

@_cdecl("swiftmalloc_realloc")
public func swiftmalloc_realloc(_ ptr: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    // realloc(NULL, n) is malloc(n), but by the general path while a profiler runs:
    // the fast path does not charge the sampling profiler's countdown.
    guard let ptr else { return swm_heap_get()?.assumingMemoryBound(to: Heap.self).pointee.profiler != nil ? mallocSlow(UInt(bitPattern: size)) : swiftmalloc_malloc(size) }
    if size == 0 {
        freeSlow(UInt(bitPattern: ptr), call: "realloc()")
        return nil
    }
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else {
        reportBadPointer("realloc()", UInt(bitPattern: ptr), .notOurs)
    }
    heap.startPurgerIfWanted()
    if let q = heap.reallocate(UInt(bitPattern: ptr), UInt(bitPattern: size)) { return q }
    return fail(ENOMEM)
}

@_cdecl("swiftmalloc_reallocarray")
public func swiftmalloc_reallocarray(_ ptr: UnsafeMutableRawPointer?, _ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let (total, overflow) = UInt(bitPattern: count).multipliedReportingOverflow(by: UInt(bitPattern: size))
    if overflow || total > maxRequest { return fail(ENOMEM) }
    return swiftmalloc_realloc(ptr, Int(bitPattern: total))
}

@inline(__always) private func isPowerOfTwo(_ x: UInt) -> Bool { x != 0 && x & (x &- 1) == 0 }

@_cdecl("swiftmalloc_posix_memalign")
public func swiftmalloc_posix_memalign(_ memptr: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: Int, _ size: Int) -> Int32 {
    let a = UInt(bitPattern: alignment)
    if !isPowerOfTwo(a) || a % 8 != 0 { return EINVAL }
    guard let heap = currentHeap() else { return ENOMEM }
    heap.startPurgerIfWanted()
    // ENOMEM in errno as well, as glibc leaves it (POSIX asks only for the result).
    guard let p = heap.allocateAligned(UInt(bitPattern: size), alignment: a) else { swm_set_errno(ENOMEM); return ENOMEM }
    memptr?.pointee = p
    return 0
}

/// The alignment memalign and aligned_alloc give a block asked for with `alignment`,
/// as glibc 2.36: one that is not a power of two is rounded up to one (0 to 1);
/// nil above 2^63, which they refuse.
func effectiveAlignment(_ alignment: UInt) -> UInt? {
    if alignment > (UInt(1) << 63) { return nil }
    if isPowerOfTwo(alignment) { return alignment }
    return alignment <= 1 ? 1 : UInt(1) << (UInt(swm_log2(UInt64(alignment))) &+ 1)
}

/// memalign and aligned_alloc (see effectiveAlignment; EINVAL where it is nil).
@inline(never)
func alignedAllocate(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
    guard let a = effectiveAlignment(alignment) else { return fail(EINVAL) }
    guard let heap = currentHeap() else { return fail(ENOMEM) }
    heap.startPurgerIfWanted()
    guard let p = heap.allocateAligned(size, alignment: a) else { return fail(ENOMEM) }
    return p
}

@_cdecl("swiftmalloc_aligned_alloc")
public func swiftmalloc_aligned_alloc(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    alignedAllocate(UInt(bitPattern: alignment), UInt(bitPattern: size))
}

@_cdecl("swiftmalloc_memalign")
public func swiftmalloc_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    alignedAllocate(UInt(bitPattern: alignment), UInt(bitPattern: size))
}

@_cdecl("swiftmalloc_valloc")
public func swiftmalloc_valloc(_ size: Int) -> UnsafeMutableRawPointer? {
    alignedAllocate(pageSize, UInt(bitPattern: size))
}

@_cdecl("swiftmalloc_pvalloc")
public func swiftmalloc_pvalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    let (rounded, overflow) = UInt(bitPattern: size).addingReportingOverflow(pageMask)
    if overflow { return fail(ENOMEM) }
    return alignedAllocate(pageSize, max(rounded & ~pageMask, pageSize))
}

@_cdecl("swiftmalloc_usable_size")
public func swiftmalloc_usable_size(_ ptr: UnsafeMutableRawPointer?) -> Int {
    guard let ptr else { return 0 }
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else {
        reportBadPointer("malloc_usable_size()", UInt(bitPattern: ptr), .notOurs)
    }
    let span = heap.validatedSpan(UInt(bitPattern: ptr), call: "malloc_usable_size()")
    return Int(bitPattern: heap.usableSize(of: UInt(bitPattern: ptr), span: span))
}

@_cdecl("swiftmalloc_free_sized")
public func swiftmalloc_free_sized(_ ptr: UnsafeMutableRawPointer?, _ size: Int) {
    checkSizedFree(ptr, size: UInt(bitPattern: size), alignment: 1, call: "free_sized()")
    free(ptr, call: "free_sized()")
}

@_cdecl("swiftmalloc_free_aligned_sized")
public func swiftmalloc_free_aligned_sized(_ ptr: UnsafeMutableRawPointer?, _ alignment: Int, _ size: Int) {
    checkSizedFree(ptr, size: UInt(bitPattern: size), alignment: UInt(bitPattern: alignment), call: "free_aligned_sized()")
    free(ptr, call: "free_aligned_sized()")
}

/// Check mode: a sized free must give the size the block was allocated with (and
/// the alignment it was allocated with, which its address has: aligned_alloc's
/// effective one, see effectiveAlignment), as C23 requires; a mismatch, which the caller's
/// bookkeeping got wrong, is reported. Other modes rely on neither.
@inline(__always)
private func checkSizedFree(_ ptr: UnsafeMutableRawPointer?, size: UInt, alignment: UInt, call: StaticString) {
    guard let ptr, let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self), heap.pointee.config.check else { return }
    heap.checkSizedFree(UInt(bitPattern: ptr), size: size, alignment: alignment, call: call)
}
