// Layer 2d: mixed spans. Blocks of the classes from 256 B to 2 KiB (mixedMinClass
// ... mixedMaxClass) are carved, side by side whatever their class, from 64 KiB
// spans whose free space merges: a freed block joins its free neighbours into one
// range, and a refill carves best-fit from the ranges. A span of one class is
// pinned by any one live block; here the space between live blocks serves any of
// these classes, which is what keeps memory in use when a program frees most of
// its blocks of some sizes and then allocates other sizes (the seed's utilization
// criterion; benchmarks/workloads/frag.c).
//
// Layout: a mixed span is `mixedSpanPages` pages of 64-byte granules. Its first
// `mixedHeaderGranules` granules are its header (so free needs no per-block
// header): the granule map, one byte per granule, which is the class index c
// (mixedMinClass...mixedMaxClass) at the first granule of a block of class c that
// the arena has handed out (to a thread cache or a program) and 0 at every other
// granule; then two bitmaps, one bit per granule: the first granules of free
// ranges, and the last granules of free ranges of two granules or more. The free
// fast path puts a mixed span's blocks on the thread's unsorted bin without
// reading the map; ThreadCache.sortUnsorted reads it later and reports a pointer
// whose granule starts no handed-out block.
// A free range keeps its links in its own memory: words 0-2 of its first granule
// hold its length in granules and the addresses of the next and previous ranges of
// its bin, word 3 the purger's pass (Heap.purgePass) when it last grew, or
// `cleanRange` once the whole pages inside it have been given back to the system;
// word 7 of its last granule holds its start (the footer its right-hand neighbour
// reads when it merges leftwards). Only those words are ever read from free
// memory, and none of them lies in a page strictly inside the range, so the
// purger can drop those pages (purgeRanges) and they come back zero-filled.
//
// Invariants (under the arena's `lock`): every granule of a span's data area is in
// exactly one handed-out block or one free range; two free ranges are never
// adjacent (a free merges both sides); `bin(b)` lists exactly the ranges of the
// arena's spans whose length maps to b (binIndex), and bit b of `nonEmpty` is set
// iff that list is not empty; Span.live counts the span's blocks that are not in
// a range (handed out, or given back and waiting on a ReturnStack); a span
// with live == 0 is one free range over its whole data area and is either the
// arena's `spare` or already back in the page heap. Spans never move between
// arenas (Span.shard is fixed), so a block's arena is known without a lock.
// Used with SWIFTMALLOC_MIXED=1 (Config.mixed), and only while requested sizes
// are not tracked and the profiler is off: per-block records are indexed by a
// block's position in a one-class span.
// Lock order: class locks, return-stack locks, arena locks, then stash locks and
// the page heap lock.
import SwiftMallocShims

let mixedGranuleShift: UInt = 6
let mixedGranule: UInt = 1 << mixedGranuleShift
let mixedSpanPages: UInt = 16
let mixedSpanGranules = Int((mixedSpanPages << pageShift) >> mixedGranuleShift)   // 1024
/// Bytes of the granule map, and where the range bitmaps start and end.
let mixedMapBytes = mixedSpanGranules                                              // 1024
let mixedStartBitsOffset = mixedMapBytes
let mixedEndBitsOffset = mixedStartBitsOffset + mixedSpanGranules / 8
let mixedHeaderBytes = mixedEndBitsOffset + mixedSpanGranules / 8                   // 1280
let mixedHeaderGranules = mixedHeaderBytes >> Int(mixedGranuleShift)              // 20
let mixedDataGranules = mixedSpanGranules &- mixedHeaderGranules
/// The classes served from mixed spans: 256 B to 2 KiB, every one a multiple of
/// the granule. Blocks of these classes are 64-byte aligned (not size-aligned).
let mixedMinClass = 12
let mixedMaxClass = 28
/// Range bins: one per length of 1...32 granules (bin length - 1), then one per
/// doubling above (33-64, ..., 513 and longer).
let mixedBinCount = 37
let mixedExactBins = 32
/// Word 3 of a range whose inner pages are not resident.
let cleanRange = UInt.max
/// The purger gives back the inner pages of ranges unchanged for this many passes
/// (a second), when they hold a whole page: those in the bins from this one up
/// (more than 64 granules).
let rangePurgePasses: UInt = 4
let firstPurgedBin = mixedExactBins + 1
/// Ranges one purger pass gives back per arena (it holds the arena's lock
/// meanwhile); the rest wait for the next pass.
let rangePurgesPerPass = 1024

@inline(__always) func isMixedClass(_ c: Int) -> Bool { c >= mixedMinClass && c <= mixedMaxClass }

struct MixedArena {
    var lock: Int32 = 0
    /// Bit b set iff bin b is not empty.
    var nonEmpty: UInt64 = 0
    /// An empty span kept for the next refill, so a class whose last block comes
    /// and goes does not map and unmap a span each time.
    var spare: UnsafeMutablePointer<Span>? = nil
    var spanCount: UInt = 0
    var peakSpans: UInt = 0
    var spansReleased: UInt = 0
    /// Granules in free ranges, and their number.
    var freeGranules: UInt = 0
    var rangeCount: UInt = 0
    // Followed by the bin heads and tails (mixedBinCount range addresses each, 0
    // for none) at `mixedBinsOffset` and `mixedTailsOffset`, and by the blocks handed out per class (smallClassCount
    // UInt32; those on ReturnStacks are not counted) at `mixedLiveOffset`. All
    // zero is an empty arena: rows of shards never used are never written.
}

/// The header above fits in these bytes (initializeHeap checks).
let mixedBinsOffset = 128
let mixedTailsOffset = mixedBinsOffset + mixedBinCount * 8
let mixedLiveOffset = mixedTailsOffset + mixedBinCount * 8
/// Bytes between two shards' arenas.
let mixedArenaStride = (mixedLiveOffset + smallClassCount * 4 + 63) & ~63

/// The bin of a free range of `g` granules.
@inline(__always) func mixedBinIndex(_ g: UInt) -> Int {
    if g <= UInt(mixedExactBins) { return Int(truncatingIfNeeded: g) &- 1 }
    let lg = Int(swm_log2(UInt64(g &- 1)))          // 5 for 33...64
    return min(mixedExactBins &+ lg &- 5, mixedBinCount &- 1)
}

/// A mixed span's granule map.
@inline(__always) func granuleMap(_ span: UnsafeMutablePointer<Span>) -> UnsafeMutablePointer<UInt8> {
    UnsafeMutablePointer<UInt8>(bitPattern: span.pointee.start).unsafelyUnwrapped
}

/// Bit `gi` of the bitmap `offset` bytes into mixed span `span`.
@inline(__always) private func testBit(_ span: UnsafeMutablePointer<Span>, _ offset: Int, _ gi: Int) -> Bool {
    let words = UnsafeMutablePointer<UInt64>(bitPattern: span.pointee.start &+ UInt(offset)).unsafelyUnwrapped
    return words[gi >> 6] & (UInt64(1) << UInt64(gi & 63)) != 0
}

@inline(__always) private func setBit(_ span: UnsafeMutablePointer<Span>, _ offset: Int, _ gi: Int, _ on: Bool) {
    let words = UnsafeMutablePointer<UInt64>(bitPattern: span.pointee.start &+ UInt(offset)).unsafelyUnwrapped
    let bit = UInt64(1) << UInt64(gi & 63)
    if on { words[gi >> 6] |= bit } else { words[gi >> 6] &= ~bit }
}

/// Whether a free range starts at granule `gi` of mixed span `span`.
@inline(__always) func rangeStarts(_ span: UnsafeMutablePointer<Span>, _ gi: Int) -> Bool {
    testBit(span, mixedStartBitsOffset, gi)
}

/// Words of a free range (see the file comment).
@inline(__always) private func word(_ address: UInt, _ i: UInt) -> UnsafeMutablePointer<UInt> {
    UnsafeMutablePointer<UInt>(bitPattern: address &+ i &* 8).unsafelyUnwrapped
}

extension UnsafeMutablePointer where Pointee == MixedArena {
    @inline(__always) private var bins: UnsafeMutablePointer<UInt> {
        (UnsafeMutableRawPointer(self) + mixedBinsOffset).assumingMemoryBound(to: UInt.self)
    }

    /// The last range of each bin: a range enters at the head, and a purged one
    /// moves to the tail, so each bin is its unpurged ranges, newest first, then its
    /// purged ones.
    @inline(__always) private var tails: UnsafeMutablePointer<UInt> {
        (UnsafeMutableRawPointer(self) + mixedTailsOffset).assumingMemoryBound(to: UInt.self)
    }

    /// Blocks of each class carved and not merged back: handed out (in thread caches
    /// or live) or waiting on a ReturnStack.
    @inline(__always) var classLive: UnsafeMutablePointer<UInt32> {
        (UnsafeMutableRawPointer(self) + mixedLiveOffset).assumingMemoryBound(to: UInt32.self)
    }

    /// Makes [start, start + count granules) of `span` a free range in its bin,
    /// writing its bits, links, footer and `since` (a purger pass, or cleanRange).
    /// Its map bytes must already be 0. Caller holds `lock`.
    private func insertRange(_ start: UInt, _ count: UInt, _ span: UnsafeMutablePointer<Span>, since: UInt) {
        let b = mixedBinIndex(count)
        word(start, 0).pointee = count
        word(start, 3).pointee = since
        if since == cleanRange && tails[b] != 0 && bins[b] != 0 {
            // Purged ranges go last (see `tails`).
            let tail = tails[b]
            word(start, 1).pointee = 0
            word(start, 2).pointee = tail
            word(tail, 1).pointee = start
            tails[b] = start
        } else {
            let head = bins[b]
            word(start, 1).pointee = head
            word(start, 2).pointee = 0
            if head != 0 { word(head, 2).pointee = start } else { tails[b] = start }
            bins[b] = start
        }
        pointee.nonEmpty |= UInt64(1) << UInt64(b)
        let last = start &+ ((count &- 1) << mixedGranuleShift)
        word(last, 7).pointee = start
        let gi = Int(truncatingIfNeeded: (start &- span.pointee.start) >> mixedGranuleShift)
        setBit(span, mixedStartBitsOffset, gi, true)
        if count > 1 { setBit(span, mixedEndBitsOffset, gi &+ Int(truncatingIfNeeded: count) &- 1, true) }
        pointee.freeGranules &+= count
        pointee.rangeCount &+= 1
    }

    /// Takes the range at `start` of `span` off its bin, clears its bits and returns
    /// its length. Caller holds `lock`.
    private func removeRange(_ start: UInt, _ span: UnsafeMutablePointer<Span>) -> UInt {
        let count = word(start, 0).pointee
        let gi = Int(truncatingIfNeeded: (start &- span.pointee.start) >> mixedGranuleShift)
        setBit(span, mixedStartBitsOffset, gi, false)
        if count > 1 { setBit(span, mixedEndBitsOffset, gi &+ Int(truncatingIfNeeded: count) &- 1, false) }
        let next = word(start, 1).pointee
        let prev = word(start, 2).pointee
        let b = mixedBinIndex(count)
        if prev != 0 {
            word(prev, 1).pointee = next
        } else {
            bins[b] = next
            if next == 0 { pointee.nonEmpty &= ~(UInt64(1) << UInt64(b)) }
        }
        if next != 0 { word(next, 2).pointee = prev } else { tails[b] = prev }
        pointee.freeGranules &-= count
        pointee.rangeCount &-= 1
        return count
    }

    /// Moves range `r` of bin `b` to the bin's tail. Caller holds `lock`.
    private func moveToTail(_ r: UInt, _ b: Int) {
        let next = word(r, 1).pointee
        if next == 0 { return }
        let prev = word(r, 2).pointee
        if prev != 0 { word(prev, 1).pointee = next } else { bins[b] = next }
        word(next, 2).pointee = prev
        let tail = tails[b]
        word(tail, 1).pointee = r
        word(r, 2).pointee = tail
        word(r, 1).pointee = 0
        tails[b] = r
    }

    /// Moves blocks of class `cls` into `list` until it holds `want`, each carrying
    /// the free key as a binned block must, carved from the shortest ranges that
    /// fit (as many from each as it holds), taking new spans (for this arena, of
    /// shard `shard`) only when `newSpans` (the caller first merges the
    /// ReturnStacks). Returns whether `list` is full. Caller holds `lock`.
    func carve(_ want: UInt, _ cls: Int, into list: inout BlockList, newSpans: Bool, shard: Int,
               heap: UnsafeMutablePointer<Heap>) -> Bool {
        let size = UInt(heap.pointee.classTable[cls].size)
        let g = size >> mixedGranuleShift
        let key = heap.pointee.freeKey
        let map = heap.pageMapPointer
        while list.count < want {
            let fits = pointee.nonEmpty & (~UInt64(0) << UInt64(g &- 1))
            if fits == 0 {
                if !newSpans || !newSpan(shard: shard, heap: heap) { break }
                continue
            }
            let range = bins[fits.trailingZeroBitCount]
            let span = map.pointee.span(at: range).unsafelyUnwrapped
            let since = word(range, 3).pointee
            let count = removeRange(range, span)
            let k = min(want &- list.count, count / g)
            let used = k &* g
            let granules = granuleMap(span)
            let gi = Int(truncatingIfNeeded: (range &- span.pointee.start) >> mixedGranuleShift)
            if used < count { insertRange(range &+ (used << mixedGranuleShift), count &- used, span, since: since) }
            // Highest first, so the list's head is the lowest block.
            var j = k
            while j > 0 {
                j &-= 1
                let block = range &+ ((j &* g) << mixedGranuleShift)
                granules[gi &+ Int(truncatingIfNeeded: j &* g)] = UInt8(truncatingIfNeeded: cls)
                setFreeMark(block, key)
                list.push(block)
            }
            if pointee.spare == span { pointee.spare = nil }
            span.pointee.live &+= UInt16(truncatingIfNeeded: k)
            classLive[cls] &+= UInt32(truncatingIfNeeded: k)
        }
        return list.count >= want
    }

    /// Makes block `block` of class `cls` of mixed span `span` (given back, off its
    /// ReturnStack) free space, merged with its free neighbours; a span left empty
    /// becomes the spare or goes back to the page heap. Caller holds `lock`.
    func merge(_ block: UInt, _ cls: Int, span: UnsafeMutablePointer<Span>, heap: UnsafeMutablePointer<Heap>) {
        let granules = granuleMap(span)
        let gi = Int(truncatingIfNeeded: (block &- span.pointee.start) >> mixedGranuleShift)
        let g = UInt(heap.pointee.classTable[cls].size) >> mixedGranuleShift
        granules[gi] = 0
        var start = block
        var count = g
        let after = gi &+ Int(truncatingIfNeeded: g)
        if after < mixedSpanGranules && rangeStarts(span, after) {
            count &+= removeRange(block &+ (g << mixedGranuleShift), span)
        }
        if gi > mixedHeaderGranules {
            // A range of one granule has only its start bit; a longer one ends with its end bit.
            let single = rangeStarts(span, gi &- 1)
            if single || testBit(span, mixedEndBitsOffset, gi &- 1) {
                let before = single ? block &- mixedGranule : word(block &- mixedGranule, 7).pointee
                count &+= removeRange(before, span)
                start = before
            }
        }
        insertRange(start, count, span, since: swm_load_relaxed(&heap.pointee.purgePass))
        span.pointee.live &-= 1
        classLive[cls] &-= 1
        if span.pointee.live == 0 {
            if pointee.spare == nil {
                pointee.spare = span
            } else {
                _ = removeRange(start, span)
                releaseSpan(span, heap: heap)
            }
        }
    }

    /// A new mixed span from the page heap, all one free range. Caller holds `lock`.
    private func newSpan(shard: Int, heap: UnsafeMutablePointer<Heap>) -> Bool {
        let pageHeap = heap.pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        guard let span = pageHeap.allocate(pages: mixedSpanPages, alignPages: 1, heap: heap) else {
            swm_unlock(&pageHeap.pointee.lock)
            return false
        }
        span.setUpMixed(shard: shard)
        heap.pageMapPointer.pointee.setRange(span.pointee.start, pages: span.pointee.pageCount, to: span)
        heap.noteHeld()
        swm_unlock(&pageHeap.pointee.lock)
        // Pages reused from the page heap may hold old data: the header starts clean.
        UnsafeMutableRawPointer(granuleMap(span)).initializeMemory(as: UInt8.self, repeating: 0, count: mixedHeaderBytes)
        insertRange(span.pointee.start &+ UInt(mixedHeaderBytes), UInt(mixedDataGranules), span,
                    since: swm_load_relaxed(&heap.pointee.purgePass))
        pointee.spanCount &+= 1
        if pointee.spanCount > pointee.peakSpans { pointee.peakSpans = pointee.spanCount }
        return true
    }

    /// Gives empty span `span` (already off the bins) back to the page heap. Caller
    /// holds `lock`.
    private func releaseSpan(_ span: UnsafeMutablePointer<Span>, heap: UnsafeMutablePointer<Heap>) {
        pointee.spanCount &-= 1
        pointee.spansReleased &+= 1
        let pageHeap = heap.pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        heap.pageMapPointer.pointee.setRange(span.pointee.start, pages: span.pointee.pageCount, to: nil)
        pageHeap.release(span, heap: heap)
        swm_unlock(&pageHeap.pointee.lock)
    }

    /// Gives back to the system the whole pages inside every free range long enough
    /// to hold one that has not grown for `rangePurgePasses` purger passes (all of
    /// them when `all`), at most `rangePurgesPerPass` ranges unless `all`, and
    /// returns whether unpurged ranges remain. A bin's unpurged ranges come first
    /// (see `tails`), so the walk stops at its first purged one. Caller holds `lock`.
    func purgeRanges(pass: UInt, all: Bool) -> Bool {
        var pending = false
        var purged = 0
        var b = firstPurgedBin
        while b < mixedBinCount {
            var r = bins[b]
            while r != 0 && word(r, 3).pointee != cleanRange {
                let next = word(r, 1).pointee
                if all || pass &- word(r, 3).pointee >= rangePurgePasses {
                    if purged == rangePurgesPerPass && !all { return true }
                    purged &+= 1
                    // The first granule (links) and the last (footer) stay resident.
                    let end = r &+ (word(r, 0).pointee << mixedGranuleShift)
                    let low = (r &+ mixedGranule &+ pageMask) & ~pageMask
                    let high = (end &- mixedGranule) & ~pageMask
                    if high > low { OSPages.purge(UnsafeMutableRawPointer(bitPattern: low).unsafelyUnwrapped, high &- low) }
                    word(r, 3).pointee = cleanRange
                    moveToTail(r, b)
                } else {
                    pending = true
                }
                r = next
            }
            b &+= 1
        }
        return pending
    }

    /// Gives the spare span back to the page heap (malloc_trim). Caller holds `lock`.
    func releaseSpare(heap: UnsafeMutablePointer<Heap>) {
        guard let span = pointee.spare else { return }
        pointee.spare = nil
        _ = removeRange(span.pointee.start &+ UInt(mixedHeaderBytes), span)
        releaseSpan(span, heap: heap)
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// Shard `shard`'s mixed arena.
    @inline(__always) func mixedArena(_ shard: Int) -> UnsafeMutablePointer<MixedArena> {
        (UnsafeMutableRawPointer(pointee.mixedArenas.unsafelyUnwrapped) + shard &* mixedArenaStride)
            .assumingMemoryBound(to: MixedArena.self)
    }

    /// The arena of mixed span `span` (fixed for the span's life).
    @inline(__always) func mixedArena(of span: UnsafeMutablePointer<Span>) -> UnsafeMutablePointer<MixedArena> {
        mixedArena(Int(span.pointee.shard))
    }


    /// Whether a thread cache refills class `cls` from the mixed arenas.
    @inline(__always) func refillsMixed(_ cls: Int) -> Bool { pointee.config.mixed && isMixedClass(cls) }

    /// The class of the block that starts at `p` in mixed span `span`, or 0 when no
    /// handed-out block starts there. Read without the arena's lock: a handed-out
    /// block's map byte changes only when the block itself goes back.
    @inline(__always) func mixedClass(of p: UInt, span: UnsafeMutablePointer<Span>) -> Int {
        guard let gi = dataGranule(p, span) else { return 0 }
        let c = Int(granuleMap(span)[gi])
        return isMixedClass(c) ? c : 0
    }

    /// The granule of mixed span `span` that starts at `p`, if `p` is granule-aligned
    /// and in the span's data area.
    @inline(__always) func dataGranule(_ p: UInt, _ span: UnsafeMutablePointer<Span>) -> Int? {
        let offset = p &- span.pointee.start
        if offset & (mixedGranule &- 1) != 0 || offset < UInt(mixedHeaderBytes) || offset >= (mixedSpanPages << pageShift) {
            return nil
        }
        return Int(truncatingIfNeeded: offset >> mixedGranuleShift)
    }

    /// Puts given-back block `p` of class `cls` of mixed span `span` on its return
    /// stack (a thread without a cache, or the salvage of a cache after fork).
    func returnMixed(_ p: UInt, _ cls: Int, span: UnsafeMutablePointer<Span>) {
        let stack = returnStack(Int(span.pointee.shard), cls)
        swm_lock(&stack.pointee.lock)
        stack.push(p, cls, arena: mixedArena(of: span), heap: self)
        swm_unlock(&stack.pointee.lock)
    }

    /// Frees block `p` of mixed span `span` (validated) on the slow path: onto the
    /// thread's bin, or straight back to its arena for a thread without a cache.
    func freeMixed(_ p: UInt, span: UnsafeMutablePointer<Span>) {
        let cls = mixedClass(of: p, span: span)
        if let tc = currentCache() {
            // Here when the unsorted bin is full (or not in use).
            if tc.bin(0).pointee.head != 0 { tc.sortUnsorted(heap: self) }
            tc.push(p, tc.bin(cls), cls, heap: self)
            return
        }
        returnMixed(p, cls, span: span)
    }
}


extension UnsafeMutablePointer where Pointee == Span {
    /// Makes this span an empty mixed span of arena `shard`. For the free fast
    /// path its "blocks" are its granules (every granule-aligned address passes the
    /// block-start test), and they all go on bin 0, the unsorted bin, where their
    /// class is read from the granule map (ThreadCache.sortUnsorted).
    func setUpMixed(shard: Int) {
        pointee.state = .mixed
        pointee.shard = UInt8(truncatingIfNeeded: shard)
        pointee.sizeClass = 0
        pointee.blockSize = 0
        // BlockDivisor(mixedGranule): a power of two divides by its shift alone.
        pointee.divInverse = 1
        pointee.divShift = UInt8(truncatingIfNeeded: mixedGranuleShift)
        pointee.binOffset = 0
        pointee.capacity = 0
        pointee.live = 0
        pointee.carved = 0
        pointee.fastLimit = UInt(mixedSpanGranules)
        pointee.forSampling = false
        pointee.blockInfo = nil
    }
}
