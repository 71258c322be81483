// Statistics: the seed's utilization (requested ÷ held) per size class and in total,
// the glibc introspection calls (mallinfo2, mallinfo, malloc_stats, malloc_info,
// malloc_trim, mallopt), and the report printed at exit with SWIFTMALLOC_STATS=1.
import SwiftMallocShims

/// A consistent-enough snapshot of one size class.
struct ClassSnapshot {
    var spans: UInt = 0
    var liveBlocks: UInt = 0     // taken from the class's spans (includes thread caches)
    var mixedBlocks: UInt = 0    // handed out by the mixed arenas (includes thread caches)
    var returnedBlocks: UInt = 0 // given back to the mixed arenas' return stacks, not merged yet
    var cachedBlocks: UInt = 0   // sitting in thread caches
    var requested: UInt = 0
    var peakSpans: UInt = 0
    var spansReleased: UInt = 0
}

extension ClassSnapshot {
    /// Blocks the program holds, free blocks (never handed out or back in the
    /// class's spans, and in thread caches) and, of those, the ones in thread caches.
    func blockCounts(_ info: SizeClass) -> (inUse: UInt, free: UInt, cached: UInt) {
        let handedOut = liveBlocks &+ mixedBlocks
        let cached = min(cachedBlocks, handedOut)
        let inUse = handedOut &- cached
        return (inUse, spans &* UInt(info.capacity) &- liveBlocks &+ cached, cached)
    }
}

/// Process totals derived from the snapshots and the page heap.
struct Totals {
    var smallHeld: UInt = 0
    var smallInUse: UInt = 0      // blocks held by the program
    var smallFreeBytes: UInt = 0  // free blocks inside spans and caches
    var smallFreeBlocks: UInt = 0
    var mixed = MixedSnapshot()
    var requested: UInt = 0
    var largeBytes: UInt = 0
    var largeCount: UInt = 0
    var hugeBytes: UInt = 0
    var hugeCount: UInt = 0
    var mappedBytes: UInt = 0
    var freePageBytes: UInt = 0
    var dirtyBytes: UInt = 0
    var purgedBytes: UInt = 0
    var gatheredBytes: UInt = 0
    var gatherMoves: UInt = 0
    var freeRuns: UInt = 0
}

/// The mixed arenas' spans and free ranges, summed over shards.
struct MixedSnapshot {
    var spans: UInt = 0
    var peakSpans: UInt = 0
    var spansReleased: UInt = 0
    var freeGranules: UInt = 0
    var ranges: UInt = 0
    var returnedBytes: UInt = 0
}

extension UnsafeMutablePointer where Pointee == Heap {
    func mixedSnapshot() -> MixedSnapshot {
        var m = MixedSnapshot()
        var shard = 0
        while shard < pointee.shardCount {
            let a = mixedArena(shard)
            swm_lock(&a.pointee.lock)
            m.spans &+= a.pointee.spanCount
            m.peakSpans &+= a.pointee.peakSpans
            m.spansReleased &+= a.pointee.spansReleased
            m.freeGranules &+= a.pointee.freeGranules
            m.ranges &+= a.pointee.rangeCount
            swm_unlock(&a.pointee.lock)
            shard &+= 1
        }
        return m
    }

    func snapshot(_ cls: Int) -> ClassSnapshot {
        var s = ClassSnapshot()
        var shard = 0
        while shard < pointee.shardCount {
            let c = central(cls, shard: shard)
            swm_lock(&c.pointee.lock)
            s.spans &+= UInt(c.pointee.spanCount)
            s.liveBlocks &+= c.pointee.liveBlocks
            // The sum of the shards' peaks: a bound on the class's peak, exact with one shard.
            s.peakSpans &+= UInt(c.pointee.peakSpans)
            s.spansReleased &+= c.pointee.spansReleased
            swm_unlock(&c.pointee.lock)
            if isMixedClass(cls) {
                // Carved and not merged back, less those waiting on the return stack.
                let carved = UInt(swm_load_relaxed_u32(mixedArena(shard).classLive + cls))
                let waiting = UInt(swm_load_relaxed_u32(&returnStack(shard, cls).pointee.count))
                s.mixedBlocks &+= carved &- min(waiting, carved)
                s.returnedBlocks &+= waiting
            }
            shard &+= 1
        }
        s.requested = classRequestedNow(cls)
        swm_lock(&pointee.threadsLock)
        var tc = pointee.threads
        while let t = tc {
            s.cachedBlocks &+= UInt(t.bin(cls).pointee.count) &+ UInt(t.trackedBin(cls).pointee.count)
            tc = t.pointee.next
        }
        swm_unlock(&pointee.threadsLock)
        return s
    }

    func totals() -> Totals {
        settleProfileTallies()
        var t = Totals()
        t.mixed = mixedSnapshot()
        var cls = 1
        while cls < smallClassCount {
            let s = snapshot(cls)
            let info = pointee.classTable[cls]
            t.smallHeld &+= s.spans &* UInt(info.pages) << pageShift
            let (inUse, freeBlocks, _) = s.blockCounts(info)
            t.smallInUse &+= inUse &* UInt(info.size)
            t.smallFreeBlocks &+= freeBlocks
            t.smallFreeBytes &+= freeBlocks &* UInt(info.size)
            t.requested &+= s.requested
            t.mixed.returnedBytes &+= s.returnedBlocks &* UInt(info.size)
            cls &+= 1
        }
        // Mixed spans: their free ranges are free bytes, not blocks.
        t.smallHeld &+= t.mixed.spans &* (mixedSpanPages << pageShift)
        t.smallFreeBytes &+= (t.mixed.freeGranules << mixedGranuleShift) &+ t.mixed.returnedBytes
        // Empty spans in the shards' stashes: held for small blocks, all free.
        let stashed = stashedPages() << pageShift
        t.smallHeld &+= stashed
        t.smallFreeBytes &+= stashed
        let ph = pageHeapPointer
        swm_lock(&ph.pointee.lock)
        t.largeBytes = pointee.largePages << pageShift
        t.largeCount = pointee.largeCount
        t.requested &+= pointee.config.tracking || requestedKeeper != nil ? pointee.largeRequested &+ pointee.hugeRequested : 0
        t.hugeBytes = pointee.hugeBytes
        t.hugeCount = pointee.hugeCount
        t.mappedBytes = ph.pointee.mappedPages << pageShift
        t.freePageBytes = ph.pointee.freePagesTotal << pageShift
        t.dirtyBytes = ph.pointee.dirtyPagesTotal << pageShift
        t.purgedBytes = ph.pointee.purgedPagesTotal << pageShift
        t.gatheredBytes = ph.pointee.gatheredPagesTotal << pageShift
        t.gatherMoves = ph.pointee.gatherMoves
        var b = 0
        while b < binCount {
            var r = ph.pointee.bins.unsafelyUnwrapped[b]
            while let run = r { t.freeRuns &+= 1; r = run.pointee.next }
            b &+= 1
        }
        swm_unlock(&ph.pointee.lock)
        return t
    }

    /// The exit statistics into this process's SWIFTMALLOC_STATS_FILE; one that
    /// cannot be written is named, with the reason, on the reports' stream.
    func writeStatsFile() {
        withStackBytes256 { raw in
            let path = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            pointee.statsTemplate.expand(fallback: "", into: path, capacity: raw.count)
            let (fd, room) = openMakingRoom { swm_open_write(path) }
            var error: Int32 = fd < 0 ? swm_get_errno() : 0
            if fd >= 0 {
                let xfsz = swm_xfsz_hold()
                printStats(fd: fd)
                if swm_close(fd) != 0 { error = swm_get_errno() }
                swm_xfsz_release(xfsz)
            }
            restoreRoom(room)
            if fd >= 0 && error == 0 { return }
            withLine(fd: pointee.reportFD) { out in writeFailureLine(&out, "statistics", path: path, error: error) }
        }
    }

    /// The statistics table; `fd` is usually stderr.
    func printStats(fd: Int32) {
        settleProfileTallies()
        var storage = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                       UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &storage) { raw in
            var out = TextBuffer(base: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), capacity: raw.count, fd: fd)
            writeStats(&out)
            out.flush()
        }
    }

    private func writeStats(_ out: inout TextBuffer) {
        let tracking = pointee.config.tracking
        out.text("swiftmalloc: statistics for pid ")
        out.decimal(UInt(swm_getpid()))
        out.text(tracking ? " (requested sizes tracked)\n" : " (requested sizes not tracked: set SWIFTMALLOC_STATS=1)\n")
        out.text(" class    size  pages/span   spans  live blocks     in use       held   requested   util  peak spans  pages returned\n")
        var cls = 1
        while cls < smallClassCount {
            let s = snapshot(cls)
            let info = pointee.classTable[cls]
            if s.spans != 0 || s.spansReleased != 0 || s.peakSpans != 0 || s.mixedBlocks != 0 {
                let held = s.spans &* UInt(info.pages) << pageShift
                let handedOut = s.liveBlocks &+ s.mixedBlocks
                let live = handedOut &- min(s.cachedBlocks, handedOut)
                out.decimal(UInt(cls), width: 6)
                out.decimal(UInt(info.size), width: 8)
                out.decimal(UInt(info.pages), width: 12)
                out.decimal(s.spans, width: 8)
                out.decimal(live, width: 13)
                out.decimal(live &* UInt(info.size), width: 11)
                out.decimal(held, width: 11)
                if tracking {
                    out.decimal(s.requested, width: 12)
                    out.percent(s.requested, of: held, width: 7)
                } else {
                    out.text("           -      -")
                }
                out.decimal(s.peakSpans, width: 12)
                out.decimal(s.spansReleased &* UInt(info.pages), width: 16)
                out.byte(10)
            }
            cls &+= 1
        }
        let t = totals()
        let held = t.smallHeld &+ t.largeBytes &+ t.hugeBytes
        out.text("small: held "); out.bytes(t.smallHeld)
        out.text(", in use "); out.bytes(t.smallInUse)
        out.text(", free blocks "); out.decimal(t.smallFreeBlocks); out.byte(10)
        if t.mixed.peakSpans != 0 {
            out.text("mixed spans (classes 256 B to 2 KiB): ")
            out.decimal(t.mixed.spans); out.text(" of "); out.bytes(mixedSpanPages << pageShift)
            out.text(", free "); out.bytes(t.mixed.freeGranules << mixedGranuleShift)
            out.text(" in "); out.decimal(t.mixed.ranges); out.text(" ranges and ")
            out.bytes(t.mixed.returnedBytes); out.text(" in blocks not yet merged, peak spans ")
            out.decimal(t.mixed.peakSpans); out.text(", pages returned ")
            out.decimal(t.mixed.spansReleased &* mixedSpanPages); out.byte(10)
        }
        out.text("large: "); out.decimal(t.largeCount); out.text(" blocks, "); out.bytes(t.largeBytes)
        out.text("; huge: "); out.decimal(t.hugeCount); out.text(" blocks, "); out.bytes(t.hugeBytes)
        out.text(" (unmapped so far "); out.bytes(pointee.hugeUnmappedBytes); out.text(")\n")
        out.text("page heap: mapped "); out.bytes(t.mappedBytes)
        out.text(", free "); out.bytes(t.freePageBytes)
        out.text(" in "); out.decimal(t.freeRuns); out.text(" runs, dirty "); out.bytes(t.dirtyBytes)
        out.text(", returned to the system so far "); out.bytes(t.purgedBytes)
        out.text(", moved into new blocks so far "); out.bytes(t.gatheredBytes)
        out.text(" in "); out.decimal(t.gatherMoves); out.text(" moves\n")
        out.text("total: held "); out.bytes(held)
        if tracking {
            out.text(", requested "); out.bytes(t.requested)
            out.text(", utilization "); out.percent(t.requested, of: held)
        }
        out.text("; peak held "); out.bytes(pointee.peakHeldBytes)
        if tracking { out.text(", peak requested "); out.bytes(requestedNow.peak) }
        out.byte(10)
        out.text("threads: "); out.decimal(pointee.threadCount); out.text(" live, ")
        out.decimal(pointee.threadsCreated); out.text(" caches created, ")
        out.decimal(UInt(pointee.shardCount)); out.text(" shards, ")
        out.decimal(swm_load_relaxed(&pointee.spansStolen)); out.text(" spans moved between shards, ")
        out.decimal(pointee.forkCount); out.text(" forks in this process's ancestry; internal metadata ")
        out.bytes(internalPointer.pointee.mappedBytes); out.byte(10)
    }
}

@_cdecl("swiftmalloc_stats_print")
public func swiftmalloc_stats_print() {
    guard let heap = currentHeap() else { return }
    heap.printStats(fd: 2)
}

@_cdecl("swiftmalloc_mallinfo2")
public func swiftmalloc_mallinfo2() -> mallinfo2 {
    var m = mallinfo2.init()
    guard let heap = currentHeap() else { return m }
    let t = heap.totals()
    m.arena = Int(bitPattern: t.mappedBytes)
    m.ordblks = Int(bitPattern: t.freeRuns)
    m.smblks = Int(bitPattern: t.smallFreeBlocks)
    m.hblks = Int(bitPattern: t.hugeCount)
    m.hblkhd = Int(bitPattern: t.hugeBytes)
    m.usmblks = Int(bitPattern: heap.pointee.peakHeldBytes)
    m.fsmblks = Int(bitPattern: t.smallFreeBytes)
    m.uordblks = Int(bitPattern: t.smallInUse &+ t.largeBytes &+ t.hugeBytes)
    m.fordblks = Int(bitPattern: t.freePageBytes &+ t.smallFreeBytes)
    m.keepcost = Int(bitPattern: t.dirtyBytes)
    return m
}

@_cdecl("swiftmalloc_mallinfo")
public func swiftmalloc_mallinfo() -> mallinfo {
    let m2 = swiftmalloc_mallinfo2()
    var m = mallinfo.init()
    m.arena = Int32(truncatingIfNeeded: m2.arena)
    m.ordblks = Int32(truncatingIfNeeded: m2.ordblks)
    m.smblks = Int32(truncatingIfNeeded: m2.smblks)
    m.hblks = Int32(truncatingIfNeeded: m2.hblks)
    m.hblkhd = Int32(truncatingIfNeeded: m2.hblkhd)
    m.usmblks = Int32(truncatingIfNeeded: m2.usmblks)
    m.fsmblks = Int32(truncatingIfNeeded: m2.fsmblks)
    m.uordblks = Int32(truncatingIfNeeded: m2.uordblks)
    m.fordblks = Int32(truncatingIfNeeded: m2.fordblks)
    m.keepcost = Int32(truncatingIfNeeded: m2.keepcost)
    return m
}

@_cdecl("swiftmalloc_malloc_stats")
public func swiftmalloc_malloc_stats() {
    guard let heap = currentHeap() else { return }
    let t = heap.totals()
    let system = t.mappedBytes &+ t.hugeBytes
    let inUse = t.smallInUse &+ t.largeBytes &+ t.hugeBytes
    withLine { out in
        out.text("Arena 0:\nsystem bytes     = "); out.decimal(t.mappedBytes, width: 10)
        out.text("\nin use bytes     = "); out.decimal(t.smallInUse &+ t.largeBytes, width: 10)
        out.text("\nTotal (incl. mmap):\nsystem bytes     = "); out.decimal(system, width: 10)
        out.text("\nin use bytes     = "); out.decimal(inUse, width: 10)
        out.text("\nmax mmap regions = "); out.decimal(t.hugeCount, width: 10)
        out.text("\nmax mmap bytes   = "); out.decimal(t.hugeBytes, width: 10)
        out.byte(10)
    }
}

/// Flushes the calling thread's cache and gives every free page back to the system.
@_cdecl("swiftmalloc_trim")
public func swiftmalloc_trim(_ pad: Int) -> Int32 {
    guard let heap = currentHeap() else { return 0 }
    return heap.trim() > 0 ? 1 : 0
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// Gives back what can be given back: the calling thread's cached blocks to
    /// their spans, the shards' stashed empty spans and the mixed arenas' spare
    /// spans to the page heap, and every free page to the system (whole free
    /// chunks unmapped). Returns the pages purged or unmapped. Call with no
    /// allocator lock held.
    func trim() -> UInt {
        if let raw = swm_tls_cache_get(), raw != swm_empty_cache_get() {
            raw.assumingMemoryBound(to: ThreadCache.self).flushAll(heap: self)
        }
        drainStashes(onlyIdle: false)
        _ = purgeMixed(all: true)
        var shard = 0
        while shard < pointee.shardCount {
            let arena = mixedArena(shard)
            swm_lock(&arena.pointee.lock)
            arena.releaseSpare(heap: self)
            swm_unlock(&arena.pointee.lock)
            shard &+= 1
        }
        let ph = pageHeapPointer
        swm_lock(&ph.pointee.lock)
        let pages = ph.purgeAll() &+ ph.releaseFreeChunks(heap: self)
        swm_unlock(&ph.pointee.lock)
        return pages
    }
}

/// malloc_info: glibc's XML layout, one heap. `<sizes>` lists the free blocks of
/// each size class (`from` the size after the previous class's, `to` the class's
/// size), in thread caches and in spans, and the free ranges of mixed spans as
/// `<unsorted>`; "fast" totals are the blocks in thread caches, "rest" the other
/// free blocks, free ranges and free page runs; "mmap" the blocks with a mapping of
/// their own; "system" the bytes mapped now and, as "max", at least the most ever
/// held in blocks' pages. Snapshots are
/// taken lock by lock and the text is written with no lock held (fwrite may
/// allocate): consistent per line, not across the document.
@_cdecl("swiftmalloc_info")
public func swiftmalloc_info(_ options: Int32, _ stream: UnsafeMutableRawPointer?) -> Int32 {
    // As glibc: EINVAL returned, errno left as it was.
    guard options == 0, let stream = stream else { return EINVAL }
    var failed = false
    withStackBytes256 { raw in
        var out = TextBuffer(base: raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self),
                             capacity: raw.count, stream: stream)
        out.text("<malloc version=\"1\">\n")
        if let heap = currentHeap() { heap.writeInfo(&out) }
        out.text("</malloc>\n")
        out.flush()
        failed = out.failed
    }
    return failed ? -1 : 0
}

extension UnsafeMutablePointer where Pointee == Heap {
    fileprivate func writeInfo(_ out: inout TextBuffer) {
        var fastCount: UInt = 0, fastBytes: UInt = 0, restCount: UInt = 0, restBytes: UInt = 0
        out.text("<heap nr=\"0\">\n<sizes>\n")
        var from: UInt = 1
        var cls = 1
        while cls < smallClassCount {
            let info = pointee.classTable[cls]
            let (_, free, cached) = snapshot(cls).blockCounts(info)
            let size = UInt(info.size)
            if free != 0 {
                out.text("  <size from=\""); out.decimal(from); out.text("\" to=\""); out.decimal(size)
                out.text("\" total=\""); out.decimal(free &* size); out.text("\" count=\""); out.decimal(free)
                out.text("\"/>\n")
            }
            fastCount &+= cached
            fastBytes &+= cached &* size
            restCount &+= free &- cached
            restBytes &+= (free &- cached) &* size
            from = size &+ 1
            cls &+= 1
        }
        let t = totals()
        if t.mixed.ranges != 0 {
            let bytes = t.mixed.freeGranules << mixedGranuleShift
            out.text("  <unsorted from=\""); out.decimal(UInt(1) << mixedGranuleShift)
            out.text("\" to=\""); out.decimal(mixedSpanPages << pageShift)
            out.text("\" total=\""); out.decimal(bytes); out.text("\" count=\""); out.decimal(t.mixed.ranges)
            out.text("\"/>\n")
            restCount &+= t.mixed.ranges
            restBytes &+= bytes
        }
        out.text("</sizes>\n")
        restCount &+= t.freeRuns
        restBytes &+= t.freePageBytes
        // The peak counts the bytes of blocks' pages, huge blocks included.
        let peak = pointee.peakHeldBytes
        writeInfoTotals(&out, fastCount, fastBytes, restCount, restBytes, mmap: nil)
        writeInfoSystem(&out, current: t.mappedBytes, max: max(t.mappedBytes, peak))
        out.text("</heap>\n")
        writeInfoTotals(&out, fastCount, fastBytes, restCount, restBytes, mmap: (t.hugeCount, t.hugeBytes))
        writeInfoSystem(&out, current: t.mappedBytes &+ t.hugeBytes, max: max(t.mappedBytes &+ t.hugeBytes, peak))
    }

    private func writeInfoTotals(_ out: inout TextBuffer, _ fastCount: UInt, _ fastBytes: UInt,
                                 _ restCount: UInt, _ restBytes: UInt, mmap: (UInt, UInt)?) {
        out.text("<total type=\"fast\" count=\""); out.decimal(fastCount)
        out.text("\" size=\""); out.decimal(fastBytes); out.text("\"/>\n")
        out.text("<total type=\"rest\" count=\""); out.decimal(restCount)
        out.text("\" size=\""); out.decimal(restBytes); out.text("\"/>\n")
        if let (count, bytes) = mmap {
            out.text("<total type=\"mmap\" count=\""); out.decimal(count)
            out.text("\" size=\""); out.decimal(bytes); out.text("\"/>\n")
        }
    }

    private func writeInfoSystem(_ out: inout TextBuffer, current: UInt, max: UInt) {
        out.text("<system type=\"current\" size=\""); out.decimal(current); out.text("\"/>\n")
        out.text("<system type=\"max\" size=\""); out.decimal(max); out.text("\"/>\n")
        out.text("<aspace type=\"total\" size=\""); out.decimal(current); out.text("\"/>\n")
        out.text("<aspace type=\"mprotect\" size=\""); out.decimal(current); out.text("\"/>\n")
    }
}

@_cdecl("swiftmalloc_mallopt")
public func swiftmalloc_mallopt(_ param: Int32, _ value: Int32) -> Int32 {
    guard let heap = currentHeap() else { return 0 }
    switch param {
    // A negative value is taken as glibc takes it, converted to size_t: for these two
    // thresholds, never (no trimming; no block with a mapping of its own).
    case M_TRIM_THRESHOLD:
        let ph = heap.pageHeapPointer
        swm_lock(&ph.pointee.lock)
        ph.pointee.dirtyLimitPages = UInt(bitPattern: Int(value)) >> pageShift
        ph.enforceDirtyLimit(now: swm_now_ns())
        swm_unlock(&ph.pointee.lock)
        return 1
    case M_MMAP_THRESHOLD:
        heap.pointee.config.hugeThreshold = max(UInt(bitPattern: Int(value)), maxSmallSize &+ 1)
        return 1
    case M_MXFAST:
        // Accepted within glibc's range (0 to 80 × sizeof(size_t) / 4 bytes), as glibc
        // does; no counterpart in this design (see README).
        return value >= 0 && value <= 80 &* Int32(MemoryLayout<Int>.size) / 4 ? 1 : 0
    default:
        // Accepted, as glibc accepts every other parameter, known (M_TOP_PAD,
        // M_MMAP_MAX, M_PERTURB, …) or not; no counterpart in this design (see README).
        return 1
    }
}
