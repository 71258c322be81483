// Layer 4 logic behind the C API: the slow paths for small blocks (cache refill,
// tracking, thread-exit mode), large blocks (page runs) and huge blocks (own
// mappings), pointer validation, realloc and aligned allocation.
import SwiftMallocShims

/// Largest size the C API accepts (PTRDIFF_MAX), as glibc.
let maxRequest: UInt = 0x7fff_ffff_ffff_ffff

extension UnsafeMutablePointer where Pointee == Heap {
    /// The calling thread's cache, created on its first call; nil after the thread's
    /// cache was torn down at exit, or when caching is off.
    @inline(__always) func currentCache() -> UnsafeMutablePointer<ThreadCache>? {
        let raw = swm_tls_cache_get()
        if raw != swm_empty_cache_get() { return raw?.assumingMemoryBound(to: ThreadCache.self) }
        if swm_tls_state_get() == 0 { return createThreadCache() }
        return nil
    }

    // ---- small blocks ------------------------------------------------------------------
    /// A block of class `cls` (0 when out of memory).
    func allocateSmall(_ cls: Int, requested: UInt, site givenSite: UInt32? = nil) -> UInt {
        if pointee.config.direct { return allocateDirect(cls, requested: requested, site: givenSite) }
        if pointee.config.tracking { return allocateTracked(cls, requested: requested, site: givenSite) }
        var site = givenSite
        // Sampling profiler: the allocation that crosses the thread's byte countdown
        // is sampled; every other one is an ordinary block (site 0: not captured again).
        if let profiler = pointee.profiler {
            let captured = site ?? profiler.capture(size: requested)
            if captured != 0 { return allocateSampled(cls, requested: requested, site: captured, profiler) }
            site = 0
        }
        if let tc = currentCache() {
            let p = tc.pop(cls)
            if p != 0 { return p }
            return tc.refill(cls, heap: self)
        }
        return allocateDirect(cls, requested: requested, site: site)
    }

    /// A sampled allocation (`site` != 0): its block comes from a span reserved for
    /// sampled blocks, whose frees all reach the slow path (so ordinary frees stay on
    /// the fast path).
    @inline(never)
    func allocateSampled(_ cls: Int, requested: UInt, site: UInt32, _ profiler: UnsafeMutablePointer<Profiler>) -> UInt {
        let central = self.central(cls, shard: currentShard)
        swm_lock(&central.pointee.lock)
        let p = central.takeForSampling(cls, heap: self)
        if p != 0 {
            let span = spanOwning(p).unsafelyUnwrapped
            if span.pointee.blockInfo == nil {
                span.pointee.blockInfo = internalPointer.newInfo(count: Int(span.pointee.capacity))
            }
            if let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p) {
                info[index] = BlockInfo(requested: UInt32(truncatingIfNeeded: requested), site: site)
            }
        }
        swm_unlock(&central.pointee.lock)
        if p != 0 {
            profiler.recordAllocation(site: site, cls: cls, size: requested, held: UInt(pointee.classTable[cls].size), heap: self)
        }
        return p
    }

    /// Frees a block of a span reserved for sampled blocks: back to its span, and
    /// the profiler hears of it.
    private func freeSampled(_ p: UInt, span: UnsafeMutablePointer<Span>) {
        let central = lockOwner(of: span)
        var freed = BlockInfo()
        // Read before the put, which may give the emptied span back.
        let held = UInt(span.pointee.blockSize), cls = Int(span.pointee.sizeClass)
        if let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p) {
            freed = info[index]
            info[index] = BlockInfo()
        }
        central.put(p, span: span, heap: self)
        swm_unlock(&central.pointee.lock)
        if freed.isLive, let profiler = pointee.profiler {
            profiler.recordFree(site: freed.site, cls: cls, size: UInt(freed.requested), held: held, heap: self)
        }
    }

    /// Tracking mode: a block from the thread's tracked bins (the fast path never sees
    /// them), with its requested size and call site recorded in the span's BlockInfo.
    /// The block is exclusively ours, so its record is written without a lock.
    @inline(never)
    func allocateTracked(_ cls: Int, requested: UInt, site givenSite: UInt32?) -> UInt {
        guard let tc = currentCache() else { return allocateDirect(cls, requested: requested, site: givenSite) }
        let profiler = pointee.profiler
        let site = givenSite ?? (profiler?.capture(size: requested) ?? 0)
        let b = tc.trackedBin(cls)
        if b.pointee.head == 0 && !tc.refillBin(b, cls, heap: self) { return 0 }
        let p = popTracked(b, requested: requested, site: site)
        noteClassRequested(central(cls, shard: Int(truncatingIfNeeded: tc.pointee.shard)), requested)
        noteRequested(Int(bitPattern: requested))
        profiler?.recordAllocation(site: site, cls: cls, size: requested, held: UInt(pointee.classTable[cls].size), heap: self)
        return p
    }

    /// Full profiling's common case: the newest block of the thread's tracked bin for
    /// `cls`, recorded with `site`, or 0 when the bin is empty (allocateTracked then
    /// refills it). The profiler keeps the requested totals (`config.requestedByProfiler`).
    @_transparent
    func allocateTrackedFromBin(_ cls: Int, requested: UInt, site: UInt32, tc: UnsafeMutablePointer<ThreadCache>,
                                profiler: UnsafeMutablePointer<Profiler>) -> UInt {
        let b = tc.trackedBin(cls)
        if b.pointee.head == 0 { return 0 }
        let p = popTracked(b, requested: requested, site: site)
        profiler.recordTracked(site: site, cls: cls, size: requested, held: UInt(pointee.classTable[cls].size), allocated: true,
                               tc: tc, heap: self)
        return p
    }

    /// Pops the newest block of non-empty tracked bin `b` and writes its record at the
    /// BlockInfo entry whose address the block carries (ThreadCache.pushTracked,
    /// Central.take): no page-map or span lookup. The next block's line is
    /// prefetched: by the bin's next allocation it has usually been evicted.
    @inline(__always)
    private func popTracked(_ b: UnsafeMutablePointer<CacheBin>, requested: UInt, site: UInt32) -> UInt {
        let p = b.pointee.head
        let slot = UnsafeMutablePointer<BlockInfo>(bitPattern: freeMark(p)).unsafelyUnwrapped
        let next = nextFree(p)
        swm_prefetch(next)
        b.pointee.head = next
        b.pointee.room &+= 1
        setFreeMark(p, 0)
        slot.pointee = BlockInfo(requested: UInt32(truncatingIfNeeded: requested), site: site)
        return p
    }

    /// One block straight from the central list, recording its requested size (and,
    /// when profiling, its call site) when tracking is on.
    @inline(never)
    func allocateDirect(_ cls: Int, requested: UInt, site givenSite: UInt32? = nil) -> UInt {
        let profiler = pointee.profiler
        let site = givenSite ?? (profiler?.capture(size: requested) ?? 0)
        let central = self.central(cls, shard: currentShard)
        var list = BlockList()
        swm_lock(&central.pointee.lock)
        _ = central.take(1, cls, into: &list, heap: self)
        let p = list.head
        if p != 0 {
            setFreeMark(p, 0)
            if pointee.config.tracking {
                let span = pageMapPointer.pointee.span(at: p).unsafelyUnwrapped
                if span.pointee.blockInfo == nil {
                    span.pointee.blockInfo = internalPointer.newInfo(count: Int(span.pointee.capacity))
                }
                // A tracked block always has its record (frees check it): without
                // memory for the span's records the block goes back, out of memory.
                guard let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p) else {
                    central.put(p, span: span, heap: self)
                    swm_unlock(&central.pointee.lock)
                    return 0
                }
                info[index] = BlockInfo(requested: UInt32(truncatingIfNeeded: requested), site: site)
                noteClassRequested(central, requested)
                noteRequested(Int(bitPattern: requested))
            }
            if pointee.config.check { fillCanary(p, from: requested, to: UInt(pointee.classTable[cls].size)) }
        }
        swm_unlock(&central.pointee.lock)
        if p != 0, let profiler {
            profiler.recordAllocation(site: site, cls: cls, size: requested, held: UInt(pointee.classTable[cls].size), heap: self)
        }
        return p
    }

    /// Frees small block `p` (already validated as a block start of `span`).
    func freeSmall(_ p: UInt, span: UnsafeMutablePointer<Span>, call: StaticString) {
        let cls = Int(span.pointee.sizeClass)
        if span.pointee.forSampling { return freeSampled(p, span: span) }
        if pointee.config.tracking && !pointee.config.direct, let tc = currentCache(),
           let index = span.pointee.blockIndex(of: p) {
            return freeTracked(p, span: span, index: index, tc: tc, call: call)
        }
        if !pointee.config.direct, let tc = currentCache() {
            tc.push(p, tc.bin(cls), cls, heap: self)
            return
        }
        let central = lockOwner(of: span)
        let info = span.pointee.blockInfo, index = span.pointee.blockIndex(of: p)
        var freed = BlockInfo()
        if let info, let index { freed = info[index] }
        // Already free: in check mode (no caches) its span's bitmap says so; with
        // tracked caches (this thread's is gone) its record is not live, since a
        // block in some tracked bin carries no free key.
        if pointee.config.direct ? central.isFree(p, span: span) : pointee.config.tracking && !freed.isLive {
            swm_unlock(&central.pointee.lock)
            reportBadPointer(call, p, .doubleFree)
        }
        if let info, let index {
            let requested = UInt(freed.requested)
            if pointee.config.check && freed.isLive {
                checkCanary(call, p, requested: requested, to: UInt(span.pointee.blockSize))
            }
            if freed.isLive {
                noteClassRequested(central, 0 &- requested)
                noteRequested(0 &- Int(bitPattern: requested))
            }
            info[index] = BlockInfo()
        }
        let held = UInt(span.pointee.blockSize)
        central.put(p, span: span, heap: self)
        swm_unlock(&central.pointee.lock)
        if freed.isLive, let profiler = pointee.profiler {
            profiler.recordFree(site: freed.site, cls: cls, size: UInt(freed.requested), held: held, heap: self)
        }
    }

    /// Tracking mode, with a thread cache: `p` (block `index` of ordinary small span
    /// `span`) goes on the thread's tracked bin, and its record is cleared. A block
    /// without a live record is not allocated: a double free (a block in a tracked
    /// bin carries its record's address, not the free key, so this is the test).
    @inline(__always)
    func freeTracked(_ p: UInt, span: UnsafeMutablePointer<Span>, index: Int, tc: UnsafeMutablePointer<ThreadCache>,
                     call: StaticString) {
        let cls = Int(span.pointee.sizeClass)
        guard let info = span.pointee.blockInfo, info[index].isLive else { reportBadPointer(call, p, .doubleFree) }
        let freed = info[index]
        info[index] = BlockInfo()
        if !pointee.config.requestedByProfiler {
            noteClassRequested(central(of: span), 0 &- UInt(freed.requested))
            noteRequested(0 &- Int(freed.requested))
        }
        tc.pushTracked(p, tc.trackedBin(cls), cls, slot: info + index, heap: self)
        if let profiler = pointee.profiler {
            profiler.recordTracked(site: freed.site, cls: cls, size: UInt(freed.requested), held: UInt(span.pointee.blockSize),
                                   allocated: false, tc: tc, heap: self)
        }
    }

    // ---- large and huge blocks ------------------------------------------------------------
    /// A block of whole pages aligned to `alignment` (a power of two >= pageSize).
    func allocatePages(_ n: UInt, alignment: UInt, site givenSite: UInt32? = nil) -> UnsafeMutableRawPointer? {
        if n > maxRequest { return nil }
        let pages = max(pagesFor(bytes: sizing(n)), 1)
        let site = givenSite ?? (pointee.profiler?.capture(size: n) ?? 0)
        if n >= pointee.config.hugeThreshold || alignment > (UInt(1) << 20) {
            return allocateHuge(n, pages: pages, alignment: alignment, site: site)
        }
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        guard let span = pageHeap.allocate(pages: pages, alignPages: alignment >> pageShift, heap: self) else {
            swm_unlock(&pageHeap.pointee.lock)
            return nil
        }
        span.pointee.state = .large
        span.pointee.requested = n
        span.pointee.site = site
        let map = pageMapPointer
        _ = map.pointee.set(page: span.pointee.start, to: span)
        _ = map.pointee.set(page: span.pointee.end &- pageSize, to: span)
        pointee.largeCount &+= 1
        pointee.largePages &+= pages
        pointee.largeRequested &+= n
        noteHeld()
        swm_unlock(&pageHeap.pointee.lock)
        if pointee.config.hugePages { OSPages.adviseHugePages(span.pointee.start, pages << pageShift, true) }
        if pointee.config.check { fillCanary(span.pointee.start, from: n, to: pages << pageShift) }
        if pointee.config.tracking { noteRequested(Int(bitPattern: n)) }
        pointee.profiler?.recordAllocation(site: site, cls: 0, size: n, held: pages << pageShift, heap: self)
        return UnsafeMutableRawPointer(bitPattern: span.pointee.start)
    }

    private func allocateHuge(_ n: UInt, pages: UInt, alignment: UInt, site: UInt32) -> UnsafeMutableRawPointer? {
        let bytes = pages << pageShift
        var mapped = OSPages.mapAligned(bytes, alignment: alignment)
        if mapped == nil {
            // Address space may be held by wholly free page-heap chunks: return them, retry.
            let pageHeap = pageHeapPointer
            swm_lock(&pageHeap.pointee.lock)
            let released = pageHeap.releaseFreeChunks(heap: self)
            swm_unlock(&pageHeap.pointee.lock)
            if released > 0 { mapped = OSPages.mapAligned(bytes, alignment: alignment) }
        }
        guard let p = mapped else { return nil }
        let start = UInt(bitPattern: p)
        if pointee.config.hugePages { OSPages.adviseHugePages(start, bytes, true) }
        guard let span = internalPointer.newSpan() else {
            OSPages.unmap(p, bytes)
            return nil
        }
        span.pointee.start = start
        span.pointee.pageCount = pages
        span.pointee.state = .huge
        span.pointee.requested = n
        span.pointee.mappedBytes = bytes
        span.pointee.site = site
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        let map = pageMapPointer
        if !map.pointee.reserve(from: start, to: start &+ pageSize) {
            swm_unlock(&pageHeap.pointee.lock)
            internalPointer.deleteSpan(span)
            OSPages.unmap(p, bytes)
            return nil
        }
        _ = map.pointee.set(page: start, to: span)
        pointee.hugeCount &+= 1
        pointee.hugeBytes &+= bytes
        pointee.hugeRequested &+= n
        noteHeld()
        swm_unlock(&pageHeap.pointee.lock)
        if pointee.config.check { fillCanary(start, from: n, to: bytes) }
        if pointee.config.tracking { noteRequested(Int(bitPattern: n)) }
        pointee.profiler?.recordAllocation(site: site, cls: 0, size: n, held: bytes, heap: self)
        return p
    }

    func freeLarge(_ span: UnsafeMutablePointer<Span>) {
        let site = span.pointee.site, requested = span.pointee.requested
        let held = span.pointee.pageCount << pageShift
        // Its pages go back to the page heap, where small spans may be carved from them.
        if pointee.config.hugePages { OSPages.adviseHugePages(span.pointee.start, held, false) }
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        let map = pageMapPointer
        _ = map.pointee.set(page: span.pointee.start, to: nil)
        _ = map.pointee.set(page: span.pointee.end &- pageSize, to: nil)
        pointee.largeCount &-= 1
        pointee.largePages &-= span.pointee.pageCount
        pointee.largeRequested &-= span.pointee.requested
        if pointee.config.tracking { noteRequested(0 &- Int(bitPattern: span.pointee.requested)) }
        pageHeap.release(span, heap: self)
        swm_unlock(&pageHeap.pointee.lock)
        pointee.profiler?.recordFree(site: site, cls: 0, size: requested, held: held, heap: self)
    }

    func freeHuge(_ span: UnsafeMutablePointer<Span>) {
        let start = span.pointee.start
        let bytes = span.pointee.mappedBytes
        let site = span.pointee.site, requested = span.pointee.requested
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        _ = pageMapPointer.pointee.set(page: start, to: nil)
        pointee.hugeCount &-= 1
        pointee.hugeBytes &-= bytes
        pointee.hugeRequested &-= span.pointee.requested
        pointee.hugeUnmappedBytes &+= bytes
        if pointee.config.tracking { noteRequested(0 &- Int(bitPattern: span.pointee.requested)) }
        swm_unlock(&pageHeap.pointee.lock)
        internalPointer.deleteSpan(span)
        OSPages.unmap(UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped, bytes)
        pointee.profiler?.recordFree(site: site, cls: 0, size: requested, held: bytes, heap: self)
    }

    // ---- validation --------------------------------------------------------------------------
    /// The span owning block `p`, or a report and abort when `p` is not a live block.
    func validatedSpan(_ p: UInt, call: StaticString) -> UnsafeMutablePointer<Span> {
        guard let span = pageMapPointer.pointee.span(at: p) else {
            reportBadPointer(call, p, liesInsideBlock(p) ? .insideBlock : .notOurs)
        }
        switch span.pointee.state {
        case .small:
            if span.pointee.blockIndex(of: p) == nil { reportBadPointer(call, p, .insideBlock) }
            if freeMark(p) == pointee.freeKey { reportBadPointer(call, p, .doubleFree) }
        case .large, .huge:
            if p != span.pointee.start { reportBadPointer(call, p, .insideBlock) }
            if pointee.config.check {
                checkCanary(call, p, requested: span.pointee.requested, to: span.pointee.pageCount << pageShift)
            }
        case .mixed:
            if mixedClass(of: p, span: span) == 0 {
                // A free range starting there: the block was freed and has merged.
                var merged = false
                if let gi = dataGranule(p, span) { merged = rangeStarts(span, gi) }
                reportBadPointer(call, p, merged ? .doubleFree : .insideBlock)
            }
            if freeMark(p) == pointee.freeKey { reportBadPointer(call, p, .doubleFree) }
        case .freeRun:
            reportBadPointer(call, p, .notOurs)
        }
        return span
    }

    /// Whether `p`, on a page the page map does not know, lies inside a large or
    /// huge block: the map knows such a block's first page, so the pages below `p`
    /// are looked up one by one (at most 2^20 of them), for a bad-pointer report only.
    @inline(never)
    func liesInsideBlock(_ p: UInt) -> Bool {
        let map = pageMapPointer
        var page = p & ~pageMask
        var steps = 0
        while page >= pageSize && steps < 1 << 20 {
            page &-= pageSize
            steps &+= 1
            if let span = map.pointee.span(at: page) {
                let state = span.pointee.state
                let end = max(span.pointee.end, span.pointee.start &+ span.pointee.mappedBytes)
                return (state == .large || state == .huge) && span.pointee.start <= p && p < end
            }
        }
        return false
    }

    // ---- overflow canaries (SWIFTMALLOC_CHECK=1) ---------------------------------------
    /// The byte written after a block's requested size in check mode.
    @inline(__always) var canaryByte: UInt8 { UInt8(truncatingIfNeeded: pointee.freeKey >> 24) | 0x81 }

    /// Fills [block+from, block+to) with the canary, at most 4 KiB of it.
    func fillCanary(_ block: UInt, from: UInt, to: UInt) {
        let end = min(to, from &+ 4096)
        if end <= from { return }
        UnsafeMutableRawPointer(bitPattern: block &+ from).unsafelyUnwrapped
            .initializeMemory(as: UInt8.self, repeating: canaryByte, count: Int(end &- from))
    }

    /// Aborts with a report when the canary after a block's requested size changed.
    func checkCanary(_ call: StaticString, _ block: UInt, requested: UInt, to: UInt) {
        let end = min(to, requested &+ 4096)
        let c = canaryByte
        var i = requested
        while i < end {
            if UnsafePointer<UInt8>(bitPattern: block &+ i).unsafelyUnwrapped.pointee != c {
                reportOverflow(call, block, requested: requested, at: i)
            }
            i &+= 1
        }
    }

    func free(_ p: UInt, call: StaticString) {
        let span = validatedSpan(p, call: call)
        switch span.pointee.state {
        case .small: freeSmall(p, span: span, call: call)
        case .mixed: freeMixed(p, span: span)
        case .large: freeLarge(span)
        case .huge: freeHuge(span)
        case .freeRun: break
        }
    }

    /// Bytes of block `p` (validated) of `span`.
    func usableSize(_ p: UInt, _ span: UnsafeMutablePointer<Span>) -> UInt {
        switch span.pointee.state {
        case .small: return UInt(span.pointee.blockSize)
        case .mixed: return UInt(pointee.classTable[mixedClass(of: p, span: span)].size)
        default: return span.pointee.pageCount << pageShift
        }
    }

    /// malloc_usable_size: in check mode only the requested size, so a program that
    /// uses the slack does not trip the overflow canary.
    func usableSize(of p: UInt, span: UnsafeMutablePointer<Span>) -> UInt {
        // Tracking modes: a small block's record is live exactly while it is
        // allocated (allocateDirect, popTracked), whatever its bytes now hold (a
        // freed block in a tracked bin, or one the program overwrote, carries no
        // free key).
        if pointee.config.tracking && span.pointee.state == .small && !span.pointee.forSampling,
           let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p), !info[index].isLive {
            reportBadPointer("malloc_usable_size()", p, .doubleFree)
        }
        guard pointee.config.check else { return usableSize(p, span) }
        if span.pointee.state == .large || span.pointee.state == .huge { return span.pointee.requested }
        if span.pointee.state != .small { return usableSize(p, span) }
        if let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p), info[index].isLive {
            return UInt(info[index].requested)
        }
        return usableSize(p, span)
    }

    /// Check mode's test of free_sized and free_aligned_sized: `p` must be a live
    /// block (else the usual bad-pointer report) requested with `size` bytes, at an
    /// address aligned to `alignment`.
    @inline(never)
    func checkSizedFree(_ p: UInt, size: UInt, alignment: UInt, call: StaticString) {
        let span = validatedSpan(p, call: call)
        let requested: UInt
        switch span.pointee.state {
        case .small:
            guard let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p), info[index].isLive else {
                reportBadPointer(call, p, .doubleFree)
            }
            requested = UInt(info[index].requested)
        case .large, .huge: requested = span.pointee.requested
        default: return
        }
        let effective = effectiveAlignment(alignment)
        let misaligned = effective == nil || p & (effective.unsafelyUnwrapped &- 1) != 0
        if requested != size || misaligned {
            reportSizedFreeMismatch(call, p, requested: requested, size: size, alignment: misaligned ? alignment : 0)
        }
    }

    // ---- allocation entry points used by the C API ---------------------------------------------
    /// A block of `n` bytes; when the system refuses memory (an address-space
    /// limit, overcommit refused), once more after giving back everything free
    /// (`trim`): blocks cached by this thread and empty spans kept for reuse may
    /// hold the pages the request needs.
    func allocate(_ n: UInt, site: UInt32? = nil) -> UnsafeMutableRawPointer? {
        if let p = allocateOnce(n, site: site) { return p }
        return n <= maxRequest ? allocateAfterTrim(n, site: site, alignment: 16) : nil
    }

    @inline(never)
    private func allocateAfterTrim(_ n: UInt, site: UInt32?, alignment: UInt) -> UnsafeMutableRawPointer? {
        let error = swm_get_errno()
        _ = trim()
        retireFlatPageMap(self)
        swm_set_errno(error)
        return alignment <= 16 ? allocateOnce(n, site: site) : allocateAlignedOnce(n, alignment: alignment)
    }

    /// Bytes a block of `n` requested bytes must have: in check mode one more, so
    /// that every block has slack after its requested size for the overflow canary.
    /// (A request past maxRequest is refused as it is.)
    @inline(__always) func sizing(_ n: UInt) -> UInt { pointee.config.check && n < maxRequest ? n &+ 1 : n }

    private func allocateOnce(_ n: UInt, site: UInt32?) -> UnsafeMutableRawPointer? {
        if sizing(n) <= maxSmallSize {
            return UnsafeMutableRawPointer(bitPattern: allocateSmall(SizeClasses.index(for: sizing(n)), requested: n, site: site))
        }
        return allocatePages(n, alignment: pageSize, site: site)
    }

    /// `alignment` is a power of two.
    func allocateAligned(_ n: UInt, alignment: UInt) -> UnsafeMutableRawPointer? {
        if alignment <= 16 { return allocate(n) }
        if n > maxRequest { return nil }
        if let p = allocateAlignedOnce(n, alignment: alignment) { return p }
        return allocateAfterTrim(n, site: nil, alignment: alignment)
    }

    private func allocateAlignedOnce(_ n: UInt, alignment: UInt) -> UnsafeMutableRawPointer? {
        if alignment <= pageSize && sizing(n) <= maxSmallSize {
            var cls = SizeClasses.index(for: sizing(n))
            while cls < smallClassCount && UInt(pointee.classTable[cls].size) & (alignment &- 1) != 0 { cls &+= 1 }
            if cls < smallClassCount {
                // Mixed spans align blocks to their granule only: a larger alignment
                // takes a block of a one-class span, aligned to its size.
                if alignment > mixedGranule && refillsMixed(cls) {
                    return UnsafeMutableRawPointer(bitPattern: allocateDirect(cls, requested: n))
                }
                return UnsafeMutableRawPointer(bitPattern: allocateSmall(cls, requested: n))
            }
        }
        return allocatePages(n, alignment: max(alignment, pageSize))
    }

    func reallocate(_ p: UInt, _ n: UInt) -> UnsafeMutableRawPointer? {
        let span = validatedSpan(p, call: "realloc()")
        if n > maxRequest { return nil }
        // The block's new life is charged to the realloc's caller.
        let site = pointee.profiler?.capture(size: n)
        switch span.pointee.state {
        case .small:
            let size = UInt(span.pointee.blockSize)
            if sizing(n) <= size && n &* 2 >= size && resizedSmallInPlace(p, span: span, n, site: site ?? 0) {
                return UnsafeMutableRawPointer(bitPattern: p)
            }
        case .large:
            if n > maxSmallSize && n < pointee.config.hugeThreshold, let q = resizeLarge(span, n, site: site ?? 0) { return q }
        case .huge:
            if n >= pointee.config.hugeThreshold, let q = resizeHuge(span, n, site: site ?? 0) { return q }
        case .mixed:
            // Never a sampled block; a sampled realloc moves it to a span for samples.
            let size = usableSize(p, span)
            if n <= size && n &* 2 >= size && (site ?? 0) == 0 { return UnsafeMutableRawPointer(bitPattern: p) }
        case .freeRun:
            break
        }
        guard let q = allocate(n, site: site) else { return nil }
        let old = usableSize(p, span)
        q.copyMemory(from: UnsafeRawPointer(bitPattern: p).unsafelyUnwrapped, byteCount: Int(min(old, n)))
        free(p, call: "realloc()")
        return q
    }

    /// A small block resized where it is, told to whatever follows its size: the
    /// tracked record, or the sampling profiler's. A block in a span for samples
    /// gets this realloc's record (its sample if the realloc is sampled, else
    /// none), its old sample freed. false when the block must move instead: an
    /// ordinary block whose realloc is sampled, so that the sampled block lies in a
    /// span for samples, whose frees the profiler hears of.
    private func resizedSmallInPlace(_ p: UInt, span: UnsafeMutablePointer<Span>, _ n: UInt, site: UInt32) -> Bool {
        if pointee.config.tracking {
            retrack(p, span: span, n, site: site)
            return true
        }
        guard let profiler = pointee.profiler else { return true }
        if !span.pointee.forSampling { return site == 0 }
        let central = lockOwner(of: span)
        var before = BlockInfo()
        if let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p) {
            before = info[index]
            // Live either way: a span for samples tells a free block by its bitmap.
            info[index] = BlockInfo(requested: UInt32(truncatingIfNeeded: n), site: site)
        }
        swm_unlock(&central.pointee.lock)
        let cls = Int(span.pointee.sizeClass), held = UInt(span.pointee.blockSize)
        if before.isLive { profiler.recordFree(site: before.site, cls: cls, size: UInt(before.requested), held: held, heap: self) }
        if site != 0 { profiler.recordAllocation(site: site, cls: cls, size: n, held: held, heap: self) }
        return true
    }

    /// Updates a small block's tracked requested size after an in-place realloc.
    private func retrack(_ p: UInt, span: UnsafeMutablePointer<Span>, _ n: UInt, site: UInt32) {
        guard pointee.config.tracking else { return }
        let central = lockOwner(of: span)
        var before = BlockInfo()
        if let info = span.pointee.blockInfo, let index = span.pointee.blockIndex(of: p), info[index].isLive {
            before = info[index]
            let old = UInt(before.requested)
            if pointee.config.check {
                checkCanary("realloc()", p, requested: old, to: UInt(span.pointee.blockSize))
                fillCanary(p, from: n, to: UInt(span.pointee.blockSize))
            }
            noteClassRequested(central, n &- old)
            info[index] = BlockInfo(requested: UInt32(truncatingIfNeeded: n), site: site)
            noteRequested(Int(bitPattern: n) &- Int(bitPattern: old))
        }
        swm_unlock(&central.pointee.lock)
        if before.isLive, let profiler = pointee.profiler {
            let held = UInt(span.pointee.blockSize)
            profiler.recordFree(site: before.site, cls: Int(span.pointee.sizeClass), size: UInt(before.requested), held: held, heap: self)
            profiler.recordAllocation(site: site, cls: Int(span.pointee.sizeClass), size: n, held: held, heap: self)
        }
    }

    /// A large or huge block resized in place: the profiler sees a free and an allocation.
    private func reprofile(_ span: UnsafeMutablePointer<Span>, oldSize: UInt, oldHeld: UInt, site: UInt32) {
        if pointee.config.check {
            fillCanary(span.pointee.start, from: span.pointee.requested, to: span.pointee.pageCount << pageShift)
        }
        guard let profiler = pointee.profiler else { return }
        profiler.recordFree(site: span.pointee.site, cls: 0, size: oldSize, held: oldHeld, heap: self)
        span.pointee.site = site
        profiler.recordAllocation(site: site, cls: 0, size: span.pointee.requested, held: span.pointee.pageCount << pageShift, heap: self)
    }

    /// In-place resize of a large block: same page count, shrink, or growth into a free
    /// neighbour. nil when it must move.
    private func resizeLarge(_ span: UnsafeMutablePointer<Span>, _ n: UInt, site: UInt32) -> UnsafeMutableRawPointer? {
        let pages = pagesFor(bytes: sizing(n))
        let have = span.pointee.pageCount
        let oldSize = span.pointee.requested
        if pages < have && pointee.config.hugePages {
            // The huge pages from the one holding the new end onwards leave the block.
            let from = max((span.pointee.start &+ (pages << pageShift)) & ~(OSPages.hugePageBytes &- 1), span.pointee.start)
            OSPages.adviseHugePages(from, span.pointee.end &- from, false)
        }
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        var ok = true
        if pages < have {
            pageHeap.shrink(span, by: have &- pages, heap: self)
        } else if pages > have {
            ok = pageHeap.extend(span, by: pages &- have, heap: self)
        }
        if ok {
            pointee.largePages = pointee.largePages &- have &+ span.pointee.pageCount
            pointee.largeRequested = pointee.largeRequested &- span.pointee.requested &+ n
            if pointee.config.tracking { noteRequested(Int(bitPattern: n) &- Int(bitPattern: span.pointee.requested)) }
            span.pointee.requested = n
            noteHeld()
        }
        swm_unlock(&pageHeap.pointee.lock)
        if ok { reprofile(span, oldSize: oldSize, oldHeld: have << pageShift, site: site) }
        return ok ? UnsafeMutableRawPointer(bitPattern: span.pointee.start) : nil
    }

    /// Resizes a huge block with mremap (the kernel moves page tables, not bytes).
    private func resizeHuge(_ span: UnsafeMutablePointer<Span>, _ n: UInt, site: UInt32) -> UnsafeMutableRawPointer? {
        let pages = pagesFor(bytes: sizing(n))
        let bytes = pages << pageShift
        if bytes > maxRequest { return nil }
        let oldStart = span.pointee.start
        let oldSize = span.pointee.requested, oldHeld = span.pointee.mappedBytes
        let old = UnsafeMutableRawPointer(bitPattern: oldStart)
        // Same size, a shrink, or growth the kernel can do where the block is.
        if bytes == oldHeld || swm_os_remap_in_place(old, Int(bitPattern: oldHeld), Int(bitPattern: bytes)) != nil {
            retrackHuge(span, n, bytes)
            reprofile(span, oldSize: oldSize, oldHeld: oldHeld, site: site)
            return old
        }
        // A move: first a destination of our own with its page-map leaf, so nothing
        // can fail once the pages have moved; then the kernel moves the page tables.
        guard let destination = OSPages.map(bytes) else { return nil }
        let target = UInt(bitPattern: destination)
        let pageHeap = pageHeapPointer
        let map = pageMapPointer
        swm_lock(&pageHeap.pointee.lock)
        let reserved = map.pointee.reserve(from: target, to: target &+ pageSize)
        if reserved { _ = map.pointee.set(page: oldStart, to: nil) }
        swm_unlock(&pageHeap.pointee.lock)
        if !reserved {
            OSPages.unmap(destination, bytes)
            return nil
        }
        let moved = swm_os_remap_to(old, Int(bitPattern: oldHeld), Int(bitPattern: bytes), destination)
        swm_lock(&pageHeap.pointee.lock)
        _ = map.pointee.set(page: moved != nil ? target : oldStart, to: span)
        swm_unlock(&pageHeap.pointee.lock)
        guard moved != nil else {
            OSPages.unmap(destination, bytes)
            return nil
        }
        span.pointee.start = target
        retrackHuge(span, n, bytes)
        reprofile(span, oldSize: oldSize, oldHeld: oldHeld, site: site)
        return destination
    }

    private func retrackHuge(_ span: UnsafeMutablePointer<Span>, _ n: UInt, _ bytes: UInt) {
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        pointee.hugeBytes = pointee.hugeBytes &- span.pointee.mappedBytes &+ bytes
        pointee.hugeRequested = pointee.hugeRequested &- span.pointee.requested &+ n
        if pointee.config.tracking { noteRequested(Int(bitPattern: n) &- Int(bitPattern: span.pointee.requested)) }
        span.pointee.mappedBytes = bytes
        span.pointee.pageCount = bytes >> pageShift
        span.pointee.requested = n
        noteHeld()
        swm_unlock(&pageHeap.pointee.lock)
    }

    // ---- peaks ------------------------------------------------------------------------------
    /// Records a new peak of bytes held in blocks' pages. Caller holds the page heap lock.
    @inline(__always) func noteHeld() {
        let held = (pageHeapPointer.pointee.usedPages << pageShift) &+ pointee.hugeBytes
        if held > pointee.peakHeldBytes { pointee.peakHeldBytes = held }
    }

    /// Adds `delta` to the live requested bytes counted by `central` (tracking only;
    /// the profiler does it when `config.requestedByProfiler`). A class's count is
    /// the sum over its shards: a block may be counted in by one and out by another.
    @inline(__always) func noteClassRequested(_ central: UnsafeMutablePointer<Central>, _ delta: UInt) {
        if pointee.config.requestedByProfiler { return }
        _ = swm_fetch_add(&central.pointee.requestedLive, delta)
    }

    /// The profiler that keeps the requested totals: in full mode exactly, under its
    /// lock (`config.requestedByProfiler`); in sampled mode without tracking as
    /// estimates from the samples (nothing else knows them then).
    @inline(__always) var requestedKeeper: UnsafeMutablePointer<Profiler>? {
        guard let profiler = pointee.profiler else { return nil }
        if pointee.config.requestedByProfiler { return profiler }
        return !pointee.config.tracking && profiler.pointee.sampleMean != 0 ? profiler : nil
    }

    /// The live requested total and its peak: the profiler's (requestedKeeper), else
    /// the heap's own (tracking only; see noteRequested).
    var requestedNow: (live: UInt, peak: UInt) {
        if let profiler = requestedKeeper {
            return (atLeastZero(swm_load_relaxed(&profiler.pointee.liveRequested)), swm_load_relaxed(&profiler.pointee.peakRequested))
        }
        return (swm_load_relaxed(&pointee.requestedTotal), swm_load_relaxed(&pointee.peakRequestedBytes))
    }

    /// Class `cls`'s live requested bytes: the profiler's count (requestedKeeper),
    /// else its Central's (tracking only; see noteClassRequested).
    func classRequestedNow(_ cls: Int) -> UInt {
        if let profiler = requestedKeeper, let counts = profiler.pointee.classRequested {
            return atLeastZero(swm_load_relaxed(counts + cls))
        }
        var sum: UInt = 0
        var shard = 0
        while shard < pointee.shardCount {
            sum &+= swm_load_relaxed(&central(cls, shard: shard).pointee.requestedLive)
            shard &+= 1
        }
        return sum
    }

    /// Adds `delta` to the live requested total (tracking only) and records its peak
    /// (the profiler keeps both when `config.requestedByProfiler`).
    func noteRequested(_ delta: Int) {
        if pointee.config.requestedByProfiler { return }
        let now = swm_fetch_add(&pointee.requestedTotal, UInt(bitPattern: delta)) &+ UInt(bitPattern: delta)
        var peak = swm_load_relaxed(&pointee.peakRequestedBytes)
        while now > peak && swm_cas(&pointee.peakRequestedBytes, peak, now) == 0 {
            peak = swm_load_relaxed(&pointee.peakRequestedBytes)
        }
    }
}
