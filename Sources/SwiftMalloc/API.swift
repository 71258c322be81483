// Layer 5: the C API, exported as swiftmalloc_* (the reserved names are one-jump
// forwarders in SwiftMallocShims/forward.c). malloc and free carry the fast paths:
// a thread-cache pop, and a page-map lookup plus a push. Everything else is in
// Allocator.swift, reached through @inline(never) slow paths.
import SwiftMallocShims

@inline(__always) private func fail(_ code: Int32) -> UnsafeMutableRawPointer? {
    swm_set_errno(code)
    return nil
}

@_cdecl("swiftmalloc_malloc")
public func swiftmalloc_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    let n = UInt(bitPattern: size)
    if n <= lookupMaxSize {
        let tc = swm_tls_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
        let p = tc.pop(tc.sizeClass(forSmall: n))
        if p != 0 { return UnsafeMutableRawPointer(bitPattern: p) }
    }
    return mallocSlow(n)
}

/// malloc while the sampling profiler runs (the exported `malloc` jumps here
/// instead): the same fast path, charging the bytes to the thread's countdown; the
/// allocation that crosses it takes the slow path, which samples it.
@_cdecl("swm_malloc_sampled")
func swm_malloc_sampled(_ size: Int) -> UnsafeMutableRawPointer? {
    let n = UInt(bitPattern: size)
    if n <= lookupMaxSize {
        let tc = swm_tls_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
        let remaining = tc.pointee.sampleCountdown &- Int(bitPattern: n)
        if remaining > 0 {
            let p = tc.pop(tc.sizeClass(forSmall: n))
            if p != 0 {
                tc.pointee.sampleCountdown = remaining
                return UnsafeMutableRawPointer(bitPattern: p)
            }
        }
    }
    return mallocSlow(n)
}

@inline(never)
func mallocSlow(_ n: UInt) -> UnsafeMutableRawPointer? {
    guard let heap = currentHeap() else { return fail(ENOMEM) }
    heap.startPurgerIfWanted()
    return heap.allocate(n) ?? fail(ENOMEM)
}

@_cdecl("swiftmalloc_free")
public func swiftmalloc_free(_ ptr: UnsafeMutableRawPointer?) {
    guard let ptr else { return }
    let p = UInt(bitPattern: ptr)
    // Only a small span has fastLimit > 0 (large, huge and free-run descriptors keep
    // 0, and so does a span holding sampled blocks), so the block-start test below
    // also sends every other kind to the slow path.
    if let span = spanOwning(p) {
        let offset = p &- span.pointee.start
        let index = (offset &* UInt(span.pointee.reciprocal)) >> 32
        let tc = swm_tls_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
        let key = tc.pointee.freeKey
        if index &* UInt(span.pointee.blockSize) == offset && index < UInt(span.pointee.fastLimit) && freeMark(p) != key {
                let b = tc.bin(Int(truncatingIfNeeded: span.pointee.sizeClass))
                if b.pointee.count < b.pointee.limit {
                    setNextFree(p, b.pointee.head)
                    setFreeMark(p, key)
                    b.pointee.head = p
                    b.pointee.count &+= 1
                    return
                }
        }
    }
    freeSlow(p, call: "free()")
}

@inline(never)
func freeSlow(_ p: UInt, call: StaticString) {
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
    // Huge blocks are fresh mappings and already zero.
    if total < heap.pointee.config.hugeThreshold {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Int(total))
    }
    return p
}

@_cdecl("swiftmalloc_realloc")
public func swiftmalloc_realloc(_ ptr: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let ptr else { return swiftmalloc_malloc(size) }
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
    guard let p = heap.allocateAligned(UInt(bitPattern: size), alignment: a) else { return ENOMEM }
    memptr?.pointee = p
    return 0
}

/// memalign and aligned_alloc as glibc 2.36: an alignment that is not a power of two
/// is rounded up to one; one above 2^63 fails with EINVAL.
@inline(never)
func alignedAllocate(_ alignment: UInt, _ size: UInt) -> UnsafeMutableRawPointer? {
    var a = alignment
    if a > (UInt(1) << 63) { return fail(EINVAL) }
    if !isPowerOfTwo(a) { a = a <= 1 ? 1 : UInt(1) << (UInt(swm_log2(UInt64(a))) &+ 1) }
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
    swiftmalloc_free(ptr)
}

@_cdecl("swiftmalloc_free_aligned_sized")
public func swiftmalloc_free_aligned_sized(_ ptr: UnsafeMutableRawPointer?, _ alignment: Int, _ size: Int) {
    swiftmalloc_free(ptr)
}
