// Layer 1b: the page heap. Holds every page-heap chunk mapped from the OS and hands
// out page runs — to size classes as spans, and to large blocks — best-fit, split
// on allocation and coalesced with free neighbours on release (the seed's "large
// blocks ... the address range is coalesced"). Free pages are "dirty" (possibly
// resident) until purged with MADV_DONTNEED; the purge policy keeps a small dirty
// reserve and lets older dirty runs decay back to the system. The heap grows
// below its free runs where the address space allows, so it stays compact.
//
// Invariants (under `lock`):
// - every free run is on exactly one bin: bin k (1...128) holds runs of k pages,
//   bin 0 holds longer ones; `binMask` has bit k set iff bin k is non-empty;
// - no two free runs are adjacent (they are merged on release);
// - every page of a free run that may be resident lies in its dirty hull, and
//   0 < dirtyPages <= the hull's length iff the hull is not empty (Span);
// - a free run with dirtyPages > 0 is on the dirty list, newest at the head;
// - dirtyPagesTotal and freePagesTotal are the sums over free runs.
import SwiftMallocShims

let binCount = 129
let exactBinMax: UInt = 128
let pageHeapChunkBytes: UInt = 4 << 20
/// Blocks of this many pages or more get resident pages moved in (gather).
let gatherMinPages: UInt = 64
/// Pages one residency query covers (its answer takes one byte a page).
let residencyPages: UInt = 16384
/// Moves between two counts of the process's mappings (a power of two).
let gatherMappingCheckInterval: UInt = 256
/// The fewest pages one move takes.
let gatherMinMovePages: UInt = 64
/// With the purger running, dirty pages may exceed the recent peak's free part by
/// the peak shifted right this much (a half).
let churnMarginShift: UInt = 1
/// A free run unused this long is purged (1 s).
let decayNanoseconds: UInt64 = 1_000_000_000

struct PageHeap {
    var lock: Int32 = 0
    /// Hardened mode's check (PageHeapCheck.swift): free runs the last walk met,
    /// and the operations' credit towards the next walk.
    var checkedRuns: UInt = 0
    var checkCredit: UInt = 0
    var bins: UnsafeMutablePointer<UnsafeMutablePointer<Span>?>? = nil
    var binMask: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var dirtyHead: UnsafeMutablePointer<Span>? = nil
    var dirtyTail: UnsafeMutablePointer<Span>? = nil
    var dirtyPagesTotal: UInt = 0
    var freePagesTotal: UInt = 0
    /// Pages mapped from the OS for page-heap chunks (never unmapped; purged instead).
    var mappedPages: UInt = 0
    /// Pages moved from free runs into new blocks (gather), cumulative; gathering
    /// stops for good after a move fails (a kernel without MREMAP_DONTUNMAP).
    var gatheredPagesTotal: UInt = 0
    var gatherOff = false
    var gatherMoves: UInt = 0
    /// Mappings the process may have before gathering stops (0: not read yet;
    /// SWIFTMALLOC_GATHER_MAPPINGS sets it, and 0 there turns gathering off).
    var mappingLimit: UInt = 0
    /// mincore's answer for up to `residencyPages` pages (mapped on first use).
    var residency: UnsafeMutablePointer<UInt8>? = nil
    /// Pages given back with MADV_DONTNEED, cumulative.
    var purgedPagesTotal: UInt = 0
    /// Pages in spans handed out (small spans and large blocks).
    var usedPages: UInt = 0
    /// The dirty reserve: dirty free pages always allowed (M_TRIM_THRESHOLD).
    var dirtyLimitPages: UInt = 1024
    var lastDecayCheck: UInt64 = 0
    /// Most pages in use during the current and the previous decay window.
    var windowPeakPages: UInt = 0
    var previousWindowPeakPages: UInt = 0
    var windowStart: UInt64 = 0
    /// Every chunk mapped: (start, pages) pairs, for walks over the whole heap.
    var chunks: UnsafeMutablePointer<UInt>? = nil
    var chunkCount: Int = 0
}

/// Chunks recorded for heap walks (4096 chunks of at least 4 MiB: 16 GiB).
let chunkRecordCapacity = 4096

extension UnsafeMutablePointer where Pointee == PageHeap {
    // ---- bins ----------------------------------------------------------------------
    @inline(__always) func binIndex(_ pages: UInt) -> Int {
        pages <= exactBinMax ? Int(truncatingIfNeeded: pages) : 0
    }

    private func setMask(_ bin: Int, _ on: Bool) {
        withUnsafeMutableBytes(of: &pointee.binMask) { raw in
            let words = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
            let bit = UInt64(1) << UInt64(bin & 63)
            if on { words[bin >> 6] |= bit } else { words[bin >> 6] &= ~bit }
        }
    }

    /// The first non-empty exact bin >= `from`, or -1.
    private func firstBin(from: Int) -> Int {
        var result = -1
        withUnsafeMutableBytes(of: &pointee.binMask) { raw in
            let words = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
            var w = from >> 6
            var mask = ~UInt64(0) << UInt64(from & 63)
            while w < 3 {
                let bits = words[w] & mask
                if bits != 0 {
                    result = w &* 64 &+ bits.trailingZeroBitCount
                    return
                }
                w &+= 1
                mask = ~UInt64(0)
            }
        }
        return result < binCount ? result : -1
    }

    private func insertFree(_ run: UnsafeMutablePointer<Span>) {
        let b = binIndex(run.pointee.pageCount)
        let bins = pointee.bins.unsafelyUnwrapped
        run.pointee.prev = nil
        run.pointee.next = bins[b]
        bins[b]?.pointee.prev = run
        bins[b] = run
        setMask(b, true)
        pointee.freePagesTotal &+= run.pointee.pageCount
        if run.pointee.dirtyPages > 0 {
            run.pointee.dirtyPrev = nil
            run.pointee.dirtyNext = pointee.dirtyHead
            if let h = pointee.dirtyHead { h.pointee.dirtyPrev = run } else { pointee.dirtyTail = run }
            pointee.dirtyHead = run
            pointee.dirtyPagesTotal &+= run.pointee.dirtyPages
        }
    }

    private func removeFree(_ run: UnsafeMutablePointer<Span>) {
        let b = binIndex(run.pointee.pageCount)
        let bins = pointee.bins.unsafelyUnwrapped
        if let p = run.pointee.prev { p.pointee.next = run.pointee.next } else { bins[b] = run.pointee.next }
        run.pointee.next?.pointee.prev = run.pointee.prev
        if bins[b] == nil { setMask(b, false) }
        pointee.freePagesTotal &-= run.pointee.pageCount
        if run.pointee.dirtyPages > 0 { unlinkDirty(run) }
        run.pointee.next = nil
        run.pointee.prev = nil
    }

    private func unlinkDirty(_ run: UnsafeMutablePointer<Span>) {
        if let p = run.pointee.dirtyPrev { p.pointee.dirtyNext = run.pointee.dirtyNext } else { pointee.dirtyHead = run.pointee.dirtyNext }
        if let n = run.pointee.dirtyNext { n.pointee.dirtyPrev = run.pointee.dirtyPrev } else { pointee.dirtyTail = run.pointee.dirtyPrev }
        run.pointee.dirtyNext = nil
        run.pointee.dirtyPrev = nil
        pointee.dirtyPagesTotal &-= run.pointee.dirtyPages
    }

    /// Marks a free run's boundary pages in the page map.
    private func mapEnds(_ run: UnsafeMutablePointer<Span>, _ map: UnsafeMutablePointer<PageMap>) {
        _ = map.pointee.set(page: run.pointee.start, to: run)
        _ = map.pointee.set(page: run.pointee.end &- pageSize, to: run)
    }

    // ---- allocation --------------------------------------------------------------------
    /// A run of `pages` pages whose start is aligned to `alignPages` pages (a power of
    /// two), or nil when the system is out of memory. The returned descriptor has
    /// state .freeRun and no page-map entries: the caller claims it. Caller holds `lock`.
    func allocate(pages: UInt, alignPages: UInt, heap: UnsafeMutablePointer<Heap>) -> UnsafeMutablePointer<Span>? {
        let need = pages &+ alignPages &- 1
        var run = findFit(need)
        if run == nil {
            if !grow(need, heap: heap) { return nil }
            run = findFit(need)
        }
        guard let r = run else { return nil }
        removeFree(r)
        let map = heap.pageMapPointer
        _ = map.pointee.set(page: r.pointee.start, to: nil)
        _ = map.pointee.set(page: r.pointee.end &- pageSize, to: nil)
        // Place the block where the run's pages are resident: at the dirty hull's start,
        // or, when the block cannot start there, ending at the run's end (it then still
        // covers the hull's end). The lead and the tail go back as free runs, each with
        // its part of the hull.
        let alignBytes = alignPages << pageShift
        let bytes = pages << pageShift
        let lo = r.dirtyLow, hi = r.dirtyHigh, count = r.pointee.dirtyPages
        var alignedStart = (r.pointee.start &+ alignBytes &- 1) & ~(alignBytes &- 1)
        if hi > lo {
            let atHull = (lo &+ alignBytes &- 1) & ~(alignBytes &- 1)
            if atHull &+ bytes <= r.pointee.end {
                alignedStart = atHull
            } else {
                let atEnd = (r.pointee.end &- bytes) & ~(alignBytes &- 1)
                if atEnd > alignedStart { alignedStart = atEnd }
            }
        }
        let blockEnd = alignedStart &+ bytes
        var leadRun: UnsafeMutablePointer<Span>? = nil, tailRun: UnsafeMutablePointer<Span>? = nil
        if alignedStart > r.pointee.start {
            if let lead = heap.internalPointer.newSpan() {
                leadRun = lead
                lead.pointee.start = r.pointee.start
                lead.pointee.pageCount = (alignedStart &- r.pointee.start) >> pageShift
                lead.setDirty(lo, hi, count: count)
                lead.pointee.freedAt = r.pointee.freedAt
                insertFree(lead)
                mapEnds(lead, map)
            }
            // Without a descriptor the lead's pages stay unused until the chunk's
            // neighbours are freed around them; correctness is unaffected.
        }
        if blockEnd < r.pointee.end {
            if let tail = heap.internalPointer.newSpan() {
                tailRun = tail
                tail.pointee.start = blockEnd
                tail.pointee.pageCount = (r.pointee.end &- blockEnd) >> pageShift
                tail.setDirty(lo, hi, count: count)
                tail.pointee.freedAt = r.pointee.freedAt
                insertFree(tail)
                mapEnds(tail, map)
            }
        }
        r.pointee.start = alignedStart
        r.pointee.pageCount = pages
        r.setClean()
        r.pointee.next = nil
        r.pointee.prev = nil
        pointee.usedPages &+= pages
        notePagesInUse()
        if pages >= gatherMinPages, let inBlock = gather(block: alignedStart, blockEnd, hull: lo, hi, heap: heap) {
            // The lead and the tail each took the whole run's count as their bound;
            // the pages found resident in the block are not theirs.
            let rest = count > inBlock ? count &- inBlock : 0
            if let l = leadRun { lowerDirtyCount(l, to: rest) }
            if let t = tailRun { lowerDirtyCount(t, to: rest) }
        }
        if heap.pointee.config.check { verify(heap: heap) }
        return r
    }

    // ---- gathering resident pages into a new block ---------------------------------
    // A large block placed on a free run usually covers pages that are not resident
    // (outside the run's dirty hull, or holes in it), while other free runs hold
    // resident pages that the dirty limit will soon purge. Faulting the first in and
    // purging the second costs a fault and a zeroed page per 4 KiB; instead the
    // kernel moves the second's page-table entries onto the first (mremap with
    // MREMAP_DONTUNMAP: the donor range stays mapped and reads as zero afterwards,
    // exactly as after a purge). Only free runs' pages move, never a block's, and a
    // block's non-resident pages hold nothing, so no data is lost; the block gets
    // stale heap bytes, as on any reused page. Each move splits the destination's
    // mapping: gathering stops for good if the process's mapping count grows past an
    // eighth of the system's limit, or if a move fails for another reason than a
    // donor range spanning two mappings (kernels before 5.7 reject the flag).

    /// Fills the non-resident pages of [start, end) (a block just taken from a run
    /// whose dirty hull was [lo, hi)) with resident pages of other free runs.
    /// Returns how many of the block's pages were resident before, when it asked
    /// the kernel about all of them (nil otherwise). Caller holds `lock`.
    private func gather(block start: UInt, _ end: UInt, hull lo: UInt, _ hi: UInt,
                        heap: UnsafeMutablePointer<Heap>) -> UInt? {
        if pointee.gatherOff || heap.pointee.config.hugePages || pointee.dirtyPagesTotal < gatherMinMovePages { return nil }
        if hi <= lo {
            gather(into: start, end)
            return nil
        }
        // The hull may have clean holes: ask the kernel which pages are resident.
        if pointee.residency == nil {
            pointee.residency = OSPages.map(residencyPages)?.assumingMemoryBound(to: UInt8.self)
        }
        guard let vec = pointee.residency else { return nil }
        var a = start
        var resident: UInt = 0
        while a < end {
            let b = min(end, a &+ (residencyPages << pageShift))
            if swm_os_residency(UnsafeMutableRawPointer(bitPattern: a).unsafelyUnwrapped, Int(bitPattern: b &- a), vec) != 0 { return nil }
            let n = Int(truncatingIfNeeded: (b &- a) >> pageShift)
            var i = 0
            while i < n {
                if vec[i] & 1 != 0 { resident &+= 1; i &+= 1; continue }
                var j = i &+ 1
                while j < n && vec[j] & 1 == 0 { j &+= 1 }
                if UInt(j &- i) >= gatherMinMovePages && !pointee.gatherOff && pointee.dirtyTail != nil {
                    gather(into: a &+ (UInt(i) << pageShift), a &+ (UInt(j) << pageShift))
                }
                i = j
            }
            a = b
        }
        return resident
    }

    /// Lowers free run `run`'s dirty count to at most `bound` (a tighter upper bound
    /// found for it). Caller holds `lock`.
    private func lowerDirtyCount(_ run: UnsafeMutablePointer<Span>, to bound: UInt) {
        if run.pointee.dirtyPages > bound { shrinkDirty(run, run.dirtyLow, run.dirtyHigh, count: bound) }
    }

    /// Narrows dirty free run `run`'s hull to [lo, hi) and its count to at most
    /// `count`, keeping its place on the dirty list and the total; it leaves the list
    /// when nothing dirty is left. Caller holds `lock`.
    private func shrinkDirty(_ run: UnsafeMutablePointer<Span>, _ lo: UInt, _ hi: UInt, count: UInt) {
        if hi <= lo || count == 0 {
            unlinkDirty(run)
            run.setClean()
            return
        }
        pointee.dirtyPagesTotal &-= run.pointee.dirtyPages
        run.setDirty(lo, hi, count: count)
        pointee.dirtyPagesTotal &+= run.pointee.dirtyPages
    }

    /// Moves the dirty hulls of the oldest dirty free runs (from their ends) onto the
    /// non-resident range [t0, t1), until it is covered or no donor is left. A donor
    /// keeps what remains of its hull and its place on the dirty list. Caller holds
    /// `lock`.
    private func gather(into t0: UInt, _ t1: UInt) {
        var to = t0
        var donor = pointee.dirtyTail
        while to < t1 && !pointee.gatherOff, let d = donor {
            donor = d.pointee.dirtyPrev
            let dlo = d.dirtyLow, dhi = d.dirtyHigh, count = d.pointee.dirtyPages
            if dhi &- dlo < (gatherMinMovePages << pageShift) { continue }
            let bytes = min(dhi &- dlo, t1 &- to)
            if bytes < (gatherMinMovePages << pageShift) { return }
            let err = swm_os_move_pages(UnsafeMutableRawPointer(bitPattern: dhi &- bytes).unsafelyUnwrapped,
                                        UnsafeMutableRawPointer(bitPattern: to).unsafelyUnwrapped, Int(bitPattern: bytes))
            if err != 0 {
                // A donor range that spans two mappings (EFAULT) is skipped; anything
                // else means moves cannot work here.
                if err != EFAULT { pointee.gatherOff = true }
                continue
            }
            shrinkDirty(d, dlo, dhi &- bytes, count: count)
            pointee.gatheredPagesTotal &+= bytes >> pageShift
            pointee.gatherMoves &+= 1
            to &+= bytes
            if pointee.gatherMoves & (gatherMappingCheckInterval &- 1) == 0 { checkMappingCount() }
        }
    }

    /// Stops gathering when the process has more than an eighth of the mappings the
    /// system allows (vm.max_map_count; 65530 by default).
    private func checkMappingCount() {
        if pointee.mappingLimit == 0 {
            let path: StaticString = "/proc/sys/vm/max_map_count"
            let limit: UInt? = withStackBytes256 { raw in
                let text = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
                let n = swm_read_file(UnsafeRawPointer(path.utf8Start).assumingMemoryBound(to: CChar.self), text, 31)
                if n <= 0 { return nil }
                text[n] = 0
                if text[n &- 1] == 10 { text[n &- 1] = 0 }   // the file ends with a newline
                return decimal(text)
            }
            if let l = limit, l > 0 { pointee.mappingLimit = l / 8 } else { pointee.mappingLimit = 8192 }
        }
        let maps: StaticString = "/proc/self/maps"
        let n = swm_count_lines(UnsafeRawPointer(maps.utf8Start).assumingMemoryBound(to: CChar.self))
        if n < 0 || UInt(n) > pointee.mappingLimit { pointee.gatherOff = true }
    }

    /// Best fit among free runs of at least `pages` pages.
    private func findFit(_ pages: UInt) -> UnsafeMutablePointer<Span>? {
        let bins = pointee.bins.unsafelyUnwrapped
        if pages <= exactBinMax {
            let b = firstBin(from: Int(truncatingIfNeeded: pages))
            if b > 0 {
                // Prefer a run whose pages are still resident: reusing it costs no faults.
                var run = bins[b].unsafelyUnwrapped
                var look = 4
                while run.pointee.dirtyPages == 0 && look > 0, let next = run.pointee.next {
                    run = next
                    look &-= 1
                }
                return run.pointee.dirtyPages > 0 ? run : bins[b]
            }
        }
        var best: UnsafeMutablePointer<Span>? = nil
        var bestDirty: UnsafeMutablePointer<Span>? = nil
        var cursor = bins[0]
        while let c = cursor {
            if c.pointee.pageCount >= pages {
                if best == nil || c.pointee.pageCount < best.unsafelyUnwrapped.pointee.pageCount { best = c }
                if c.pointee.dirtyPages >= pages
                    && (bestDirty == nil || c.pointee.pageCount < bestDirty.unsafelyUnwrapped.pointee.pageCount) { bestDirty = c }
            }
            cursor = c.pointee.next
        }
        return bestDirty ?? best
    }

    /// Maps at least `pages` more pages and adds them as a free run: first by
    /// extending a free run into unmapped address space right below it, so only the
    /// deficit is mapped and the heap stays as compact as a contiguous one; otherwise
    /// as a new chunk.
    private func grow(_ pages: UInt, heap: UnsafeMutablePointer<Heap>) -> Bool {
        // A heap past the dirty reserve wants the purger before its first big free:
        // frees alone cannot start it (see Purger.swift), and until it runs, freed
        // pages beyond the reserve go back at once, and are faulted in again by the
        // next allocations.
        if heap.pointee.purgerState == .idle && pointee.mappedPages &+ pages > pointee.dirtyLimitPages {
            heap.pointee.purgerState = .wanted
        }
        if growDownwards(pages, heap: heap) { return true }
        var bytes = max(pageHeapChunkBytes, pages << pageShift)
        var mapped = OSPages.map(bytes)
        if mapped == nil {
            // Out of address space (ulimit -v) or memory: give back wholly free chunks
            // and try again, first at the size needed, then at that exact size.
            _ = releaseFreeChunks(heap: heap)
            mapped = OSPages.map(bytes)
            if mapped == nil && bytes > pages << pageShift {
                bytes = pages << pageShift
                mapped = OSPages.map(bytes)
            }
        }
        guard let chunk = mapped else { return false }
        return adopt(belowNewLeaf(UInt(bitPattern: chunk), bytes, heap: heap), bytes, heap: heap)
    }

    /// A new chunk at `start` that lies in a GiB of address space with no page-map
    /// leaf yet gets one mapped now, and the kernel puts it right below the chunk,
    /// where the heap would grow next (growDownwards). The empty chunk then moves
    /// below the leaf when its new place needs no other leaf. Returns where the
    /// chunk is. Caller holds `lock`.
    private func belowNewLeaf(_ start: UInt, _ bytes: UInt, heap: UnsafeMutablePointer<Heap>) -> UInt {
        let map = heap.pageMapPointer
        if map.pointee.isReserved(from: start, to: start &+ bytes) || !map.pointee.reserve(from: start, to: start &+ bytes) {
            return start
        }
        guard let again = OSPages.map(bytes) else { return start }
        let moved = UInt(bitPattern: again)
        if moved < start && map.pointee.isReserved(from: moved, to: moved &+ bytes) {
            OSPages.unmap(UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped, bytes)
            return moved
        }
        OSPages.unmap(again, bytes)
        return start
    }

    /// Tries to map the pages missing from a free run directly below it: first the run
    /// at the heap's lowest address (new mappings usually land just below it), then
    /// the longest runs, at most four. Only ever downwards: the main thread's stack
    /// grows down towards the mappings above the heap, and growing upwards could
    /// take the room it needs. Caller holds `lock`.
    private func growDownwards(_ pages: UInt, heap: UnsafeMutablePointer<Heap>) -> Bool {
        let bins = pointee.bins.unsafelyUnwrapped
        if let chunks = pointee.chunks, pointee.chunkCount > 0 {
            var low = UInt.max
            var c = 0
            while c < pointee.chunkCount {
                low = min(low, chunks[c &* 2])
                c &+= 1
            }
            if let r = spanOwning(low), r.pointee.state == .freeRun, r.pointee.start == low,
               r.pointee.pageCount < pages, growBelow(r, pages, heap: heap) {
                return true
            }
        }
        var below = pages   // candidates are shorter than this
        var tries = 0
        while tries < 4 {
            var best: UnsafeMutablePointer<Span>? = nil
            var cursor = bins[0]
            while let c = cursor {
                if c.pointee.pageCount < below && (best == nil || c.pointee.pageCount > best.unsafelyUnwrapped.pointee.pageCount) {
                    best = c
                }
                cursor = c.pointee.next
            }
            guard let r = best else { return false }
            if growBelow(r, pages, heap: heap) { return true }
            below = r.pointee.pageCount
            tries &+= 1
        }
        return false
    }

    /// Maps what free run `r` lacks of `pages` pages right below it and adds it to the
    /// heap (it merges with `r`); false when that address range is taken or the new
    /// pages cannot be adopted. Caller holds `lock`.
    private func growBelow(_ r: UnsafeMutablePointer<Span>, _ pages: UInt, heap: UnsafeMutablePointer<Heap>) -> Bool {
        let bytes = roundedChunkBytes(pages &- r.pointee.pageCount)
        let start = r.pointee.start
        if start <= bytes || OSPages.map(bytes, at: start &- bytes) == nil { return false }
        return adopt(start &- bytes, bytes, heap: heap)
    }

    /// `pages` pages in bytes, rounded up to whole chunk units.
    @inline(__always) private func roundedChunkBytes(_ pages: UInt) -> UInt {
        ((pages << pageShift) &+ pageHeapChunkBytes &- 1) & ~(pageHeapChunkBytes &- 1)
    }

    /// Takes freshly mapped [start, start+bytes) into the heap as a clean free run
    /// (merged with free neighbours). Unmaps it and returns false when the page map or
    /// a descriptor cannot be had. Caller holds `lock`.
    private func adopt(_ start: UInt, _ bytes: UInt, heap: UnsafeMutablePointer<Heap>) -> Bool {
        let map = heap.pageMapPointer
        guard map.pointee.reserve(from: start, to: start &+ bytes),
              let run = heap.internalPointer.newSpan() else {
            OSPages.unmap(UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped, bytes)
            return false
        }
        pointee.mappedPages &+= bytes >> pageShift
        recordChunk(start, pages: bytes >> pageShift)
        // Small spans never sit on a transparent huge page: one would hold 2 MiB resident
        // for a few pages in use. Large blocks opt in (OSPages.adviseHugePages).
        if heap.pointee.config.hugePages { OSPages.adviseHugePages(start, bytes, false) }
        run.pointee.start = start
        run.pointee.pageCount = bytes >> pageShift
        run.setClean()
        pointee.usedPages &+= run.pointee.pageCount   // release() subtracts it again
        release(run, heap: heap, dirty: false)
        return true
    }

    /// Adds [start, start + pages) to the chunk records: one record per mapping, so
    /// that releaseFreeChunks can unmap each one that lies inside a free run. When the
    /// records are full, it extends a record it abuts instead.
    private func recordChunk(_ start: UInt, pages: UInt) {
        if pointee.chunks == nil, let raw = OSPages.map(UInt(chunkRecordCapacity &* 16)) {
            pointee.chunks = raw.bindMemory(to: UInt.self, capacity: chunkRecordCapacity &* 2)
        }
        guard let chunks = pointee.chunks else { return }
        if pointee.chunkCount < chunkRecordCapacity {
            chunks[pointee.chunkCount &* 2] = start
            chunks[pointee.chunkCount &* 2 &+ 1] = pages
            pointee.chunkCount &+= 1
            return
        }
        let end = start &+ (pages << pageShift)
        var c = 0
        while c < pointee.chunkCount {
            let s = chunks[c &* 2], n = chunks[c &* 2 &+ 1]
            if s &+ (n << pageShift) == start {
                chunks[c &* 2 &+ 1] = n &+ pages
                return
            }
            if end == s {
                chunks[c &* 2] = start
                chunks[c &* 2 &+ 1] = n &+ pages
                return
            }
            c &+= 1
        }
    }

    /// Unmaps every chunk that lies wholly inside a free run (splitting the run around
    /// it), so its address space goes back to the system; `cleanOnly`: only inside
    /// runs with no dirty page (purged, so unused for the decay time at least).
    /// Returns the pages unmapped. Caller holds `lock`.
    func releaseFreeChunks(heap: UnsafeMutablePointer<Heap>, cleanOnly: Bool = false) -> UInt {
        guard let chunks = pointee.chunks else { return 0 }
        let map = heap.pageMapPointer
        var released: UInt = 0
        var again = true
        while again {
            again = false
            var b = 0
            while b < binCount && !again {
                var cursor = pointee.bins.unsafelyUnwrapped[b]
                while let run = cursor, !again {
                    cursor = run.pointee.next
                    if cleanOnly && run.pointee.dirtyPages != 0 { continue }
                    var c = 0
                    while c < pointee.chunkCount {
                        let start = chunks[c &* 2], pages = chunks[c &* 2 &+ 1]
                        let end = start &+ (pages << pageShift)
                        if start >= run.pointee.start && end <= run.pointee.end {
                            releaseChunk(c, from: run, map: map, heap: heap)
                            released &+= pages
                            again = true
                            break
                        }
                        c &+= 1
                    }
                }
                b &+= 1
            }
        }
        return released
    }

    /// Unmaps chunk `c`, which lies inside free run `run`; what is left of the run on
    /// either side stays free.
    private func releaseChunk(_ c: Int, from run: UnsafeMutablePointer<Span>, map: UnsafeMutablePointer<PageMap>,
                              heap: UnsafeMutablePointer<Heap>) {
        let chunks = pointee.chunks.unsafelyUnwrapped
        let start = chunks[c &* 2], pages = chunks[c &* 2 &+ 1]
        let end = start &+ (pages << pageShift)
        removeFree(run)
        _ = map.pointee.set(page: run.pointee.start, to: nil)
        _ = map.pointee.set(page: run.pointee.end &- pageSize, to: nil)
        let runStart = run.pointee.start, runEnd = run.pointee.end
        let lo = run.dirtyLow, hi = run.dirtyHigh, count = run.pointee.dirtyPages
        OSPages.unmap(UnsafeMutableRawPointer(bitPattern: start).unsafelyUnwrapped, pages << pageShift)
        pointee.mappedPages &-= pages
        var reused = false
        if start > runStart {
            run.pointee.start = runStart
            run.pointee.pageCount = (start &- runStart) >> pageShift
            run.setDirty(lo, hi, count: count)
            insertFree(run)
            mapEnds(run, map)
            reused = true
        }
        if end < runEnd {
            let right = reused ? heap.internalPointer.newSpan() : run
            if let r = right {
                r.pointee.start = end
                r.pointee.pageCount = (runEnd &- end) >> pageShift
                r.setDirty(lo, hi, count: count)
                r.pointee.state = .freeRun
                insertFree(r)
                mapEnds(r, map)
            }
            reused = true
        }
        if !reused { heap.internalPointer.deleteSpan(run) }
        // Forget the chunk (order does not matter).
        pointee.chunkCount &-= 1
        chunks[c &* 2] = chunks[pointee.chunkCount &* 2]
        chunks[c &* 2 &+ 1] = chunks[pointee.chunkCount &* 2 &+ 1]
    }

    // ---- release -------------------------------------------------------------------------
    /// Returns a run (its page-map entries already cleared by the caller) to the free
    /// runs, merging it with free neighbours. Caller holds `lock`.
    func release(_ run: UnsafeMutablePointer<Span>, heap: UnsafeMutablePointer<Heap>, dirty: Bool = true) {
        let map = heap.pageMapPointer
        pointee.usedPages &-= run.pointee.pageCount
        run.pointee.state = .freeRun
        run.pointee.sizeClass = 0
        run.pointee.carved = 0
        run.pointee.fastLimit = 0  // keeps the free fast path away from non-small spans
        run.pointee.blockSize = 0
        run.pointee.divInverse = 0
        run.pointee.divShift = 0
        run.pointee.binOffset = 0
        var lo = dirty ? run.pointee.start : 0, hi = dirty ? run.pointee.end : 0
        var count = dirty ? run.pointee.pageCount : 0
        run.pointee.freedAt = swm_now_ns()
        if let left = map.pointee.span(at: run.pointee.start &- pageSize), left.pointee.state == .freeRun,
           left.pointee.end == run.pointee.start {
            removeFree(left)
            _ = map.pointee.set(page: left.pointee.end &- pageSize, to: nil)
            _ = map.pointee.set(page: left.pointee.start, to: nil)
            (lo, hi) = hull(lo, hi, left.dirtyLow, left.dirtyHigh)
            count &+= left.pointee.dirtyPages
            run.pointee.start = left.pointee.start
            run.pointee.pageCount &+= left.pointee.pageCount
            heap.internalPointer.deleteSpan(left)
        }
        if let right = map.pointee.span(at: run.pointee.end), right.pointee.state == .freeRun,
           right.pointee.start == run.pointee.end {
            removeFree(right)
            _ = map.pointee.set(page: right.pointee.start, to: nil)
            _ = map.pointee.set(page: right.pointee.end &- pageSize, to: nil)
            (lo, hi) = hull(lo, hi, right.dirtyLow, right.dirtyHigh)
            count &+= right.pointee.dirtyPages
            run.pointee.pageCount &+= right.pointee.pageCount
            heap.internalPointer.deleteSpan(right)
        }
        run.setDirty(lo, hi, count: count)
        insertFree(run)
        mapEnds(run, map)
        enforceDirtyLimit(now: run.pointee.freedAt)
        if run.pointee.dirtyPages > 0 && heap.pointee.purgerState == .idle { heap.pointee.purgerState = .wanted }
        if heap.pointee.config.check { verify(heap: heap) }
    }

    // ---- giving memory back ----------------------------------------------------------------
    private func purge(_ run: UnsafeMutablePointer<Span>) {
        let dirty = run.pointee.dirtyPages
        let lo = run.dirtyLow, hi = run.dirtyHigh
        unlinkDirty(run)
        run.setClean()
        OSPages.purge(UnsafeMutableRawPointer(bitPattern: lo).unsafelyUnwrapped, hi &- lo)
        pointee.purgedPagesTotal &+= dirty
    }

    /// Purges the oldest dirty runs while more than the reserve is dirty, and every
    /// run that has stayed dirty longer than the decay time. Caller holds `lock`.
    func enforceDirtyLimit(now: UInt64) {
        let limit = dirtyAllowance(now: now)
        while pointee.dirtyPagesTotal > limit, let oldest = pointee.dirtyTail {
            purge(oldest)
        }
        if now &- pointee.lastDecayCheck >= decayNanoseconds / 4 { purgeExpired(now: now) }
    }

    /// Raises the current window's peak to the pages in use now. The peak is taken
    /// where pages come into use, not only where they are released: a block taken
    /// and given back between two releases would otherwise leave no trace, and the
    /// next release would purge pages the peak should have allowed. Caller holds `lock`.
    @inline(__always) func notePagesInUse() {
        if pointee.usedPages > pointee.windowPeakPages { pointee.windowPeakPages = pointee.usedPages }
    }

    /// How many dirty pages may be kept now. With the purger running (it returns them
    /// within about a second of disuse), freed pages are kept up to the heap's recent
    /// peak and half of it more, so churn reuses resident pages (gathered under new
    /// blocks where they lie elsewhere) and RSS never exceeds the recent peak of
    /// pages in use by more than the reserve and a half. Without it, the reserve
    /// plus an eighth of the pages in use. Caller holds `lock`.
    func dirtyAllowance(now: UInt64) -> UInt {
        let used = pointee.usedPages
        if now &- pointee.windowStart >= decayNanoseconds {
            pointee.previousWindowPeakPages = pointee.windowPeakPages
            pointee.windowPeakPages = used
            pointee.windowStart = now
        } else if used > pointee.windowPeakPages {
            pointee.windowPeakPages = used
        }
        guard let h = swm_heap_get()?.assumingMemoryBound(to: Heap.self), h.pointee.purgerState == .running else {
            return pointee.dirtyLimitPages &+ used / 8
        }
        let peak = max(pointee.windowPeakPages, pointee.previousWindowPeakPages)
        return pointee.dirtyLimitPages &+ (peak > used ? peak &- used : 0) &+ (peak >> churnMarginShift)
    }

    /// Purges every run that has stayed dirty for the decay time. Caller holds `lock`.
    func purgeExpired(now: UInt64) {
        pointee.lastDecayCheck = now
        while let oldest = pointee.dirtyTail, now &- oldest.pointee.freedAt >= decayNanoseconds {
            purge(oldest)
        }
    }

    /// Purges every dirty free run; returns the number of pages given back.
    func purgeAll() -> UInt {
        var pages: UInt = 0
        while let oldest = pointee.dirtyTail {
            pages &+= oldest.pointee.dirtyPages
            purge(oldest)
        }
        return pages
    }

    /// Takes `extra` pages directly after large span `span` from a free neighbour, if
    /// one is there (in-place growth). Caller holds `lock`.
    func extend(_ span: UnsafeMutablePointer<Span>, by extra: UInt, heap: UnsafeMutablePointer<Heap>) -> Bool {
        let map = heap.pageMapPointer
        guard let right = map.pointee.span(at: span.pointee.end), right.pointee.state == .freeRun,
              right.pointee.start == span.pointee.end, right.pointee.pageCount >= extra else { return false }
        removeFree(right)
        _ = map.pointee.set(page: right.pointee.start, to: nil)
        _ = map.pointee.set(page: right.pointee.end &- pageSize, to: nil)
        let lo = right.dirtyLow, hi = right.dirtyHigh, count = right.pointee.dirtyPages
        if right.pointee.pageCount > extra {
            right.pointee.start &+= extra << pageShift
            right.pointee.pageCount &-= extra
            right.setDirty(lo, hi, count: count)
            insertFree(right)
            mapEnds(right, map)
        } else {
            heap.internalPointer.deleteSpan(right)
        }
        _ = map.pointee.set(page: span.pointee.end &- pageSize, to: nil)
        span.pointee.pageCount &+= extra
        pointee.usedPages &+= extra
        notePagesInUse()
        _ = map.pointee.set(page: span.pointee.end &- pageSize, to: span)
        _ = map.pointee.set(page: span.pointee.start, to: span)
        if heap.pointee.config.check { verify(heap: heap) }
        return true
    }

    /// Gives the last `pages` pages of large span `span` back (in-place shrink).
    func shrink(_ span: UnsafeMutablePointer<Span>, by pages: UInt, heap: UnsafeMutablePointer<Heap>) {
        guard pages > 0, pages < span.pointee.pageCount, let tail = heap.internalPointer.newSpan() else { return }
        let map = heap.pageMapPointer
        _ = map.pointee.set(page: span.pointee.end &- pageSize, to: nil)
        span.pointee.pageCount &-= pages
        _ = map.pointee.set(page: span.pointee.start, to: span)
        _ = map.pointee.set(page: span.pointee.end &- pageSize, to: span)
        tail.pointee.start = span.pointee.end
        tail.pointee.pageCount = pages
        release(tail, heap: heap)
    }
}
