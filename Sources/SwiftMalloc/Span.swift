// Layer 2b: the span, a run of whole pages with one purpose, described out of band
// (the 4.3BSD kmemusage entry, grown up). Blocks carry no header: everything free
// and realloc need is found from the page map entry, which points here.
import SwiftMallocShims

enum SpanState: UInt8 {
    case freeRun = 1    // in the page heap, available for any use
    case small = 2      // cut into blocks of one size class
    case large = 3      // one block: a page run from the page heap
    case huge = 4       // one block: its own mapping from the OS
    case mixed = 5      // blocks of several classes whose free neighbours merge (MixedArena.swift)
}

/// Descriptor of one span. Invariants:
/// - `start` is page-aligned; the span covers `pageCount` pages.
/// - small: 0 <= live <= carved <= capacity <= 256; blocks [carved, capacity) were
///   never handed out; the free bitmap has exactly `carved - live` bits set, one per
///   free carved block (bit i: block i), none at or above `carved`; the span is on
///   its class's partial list iff live < capacity. Free blocks carry no links: the
///   span's free state lives only in its descriptor.
/// - large/huge: `requested` is the caller's size; `pageCount` pages are held
///   (huge: `mappedBytes` were mapped for it).
/// - freeRun: only pages inside its dirty hull may be resident; it sits in the page
///   heap's bins and, when the hull is not empty, on the dirty list.
/// - mixed: `mixedSpanPages` pages whose header holds its granule map and range
///   bitmaps; `live` counts its blocks not in a free range (MixedArena.swift).
/// Owned by the lock of whoever holds it: its shard's class lock for small spans,
/// its shard's mixed arena lock for mixed spans, the page heap lock for free runs
/// and for every page-map write.
struct Span {
    var start: UInt = 0
    var pageCount: UInt = 0
    var state: SpanState = .freeRun
    var sizeClass: UInt8 = 0
    var live: UInt16 = 0
    var carved: UInt16 = 0
    var capacity: UInt16 = 0
    /// Exact division by blockSize (see BlockDivisor); both 0 outside small spans.
    var divShift: UInt8 = 0
    /// Reserved for blocks the sampling profiler follows.
    var forSampling = false
    /// Small spans: the central-list shard whose lock owns the span (Heap.central(of:)).
    var shard: UInt8 = 0
    var blockSize: UInt32 = 0
    var divInverse: UInt64 = 0
    /// What the free fast path compares a block index with: `carved` for ordinary
    /// small spans; the granule count for mixed spans (whose divisor is the
    /// granule); 0 for spans reserved for sampled blocks (their frees must reach
    /// the slow path) and for every other span.
    var fastLimit: UInt = 0
    /// Byte offset among a thread cache's bins of the bin the free fast path puts
    /// this span's blocks on: its class's for a small span, bin 0 (the unsorted
    /// bin, ThreadCache.sortUnsorted) for a mixed span.
    var binOffset: UInt32 = 0
    /// Large and huge blocks: the profiler's call-site id of the one block.
    var site: UInt32 = 0
    /// When tracking is on: one BlockInfo per block of a small span (nil until the
    /// first tracked allocation in it). Room for the profiler's call-site id.
    /// In the descriptor's first cache line, with every field free reads.
    var blockInfo: UnsafeMutablePointer<BlockInfo>? = nil
    /// Small spans: the free bitmap, 256 bits (see the invariants above). Free runs
    /// keep their dirty-list state in the same four words (dirtyNext, dirtyPrev,
    /// dirtyPages, freedAt below): a span is never both, and each state sets its
    /// words when a span enters it (PageHeap.release, Central.newSpan).
    var freeBits0: UInt64 = 0
    var freeBits1: UInt64 = 0
    var freeBits2: UInt64 = 0
    var freeBits3: UInt64 = 0
    /// Links on the class's partial list, or on a page-heap bin.
    var next: UnsafeMutablePointer<Span>? = nil
    var prev: UnsafeMutablePointer<Span>? = nil
    /// Free runs: links on the page heap's dirty list (oldest at the tail), dirty
    /// page count and time of freeing, stored in the small-span bitmap's words.
    var dirtyNext: UnsafeMutablePointer<Span>? {
        get { UnsafeMutablePointer<Span>(bitPattern: UInt(truncatingIfNeeded: freeBits0)) }
        set { freeBits0 = UInt64(UInt(bitPattern: newValue)) }
    }
    var dirtyPrev: UnsafeMutablePointer<Span>? {
        get { UnsafeMutablePointer<Span>(bitPattern: UInt(truncatingIfNeeded: freeBits1)) }
        set { freeBits1 = UInt64(UInt(bitPattern: newValue)) }
    }
    /// Free runs: the pages that may be resident lie in the *dirty hull*, `dirtyHullPages`
    /// pages from `dirtyOffset` pages after `start` (packed in one word: offset high,
    /// length low). A hull may include clean pages; `dirtyPages` (at most the hull's
    /// length, 0 iff the hull is empty) is the count the purge policy works with —
    /// exact while runs only merge, an upper bound once they are split.
    var dirtyHullPages: UInt { UInt(truncatingIfNeeded: freeBits2 & 0xffff_ffff) }
    var dirtyOffset: UInt { UInt(truncatingIfNeeded: freeBits2 >> 32) }
    var dirtyPages: UInt { mappedBytes }
    var freedAt: UInt64 {
        get { freeBits3 }
        set { freeBits3 = newValue }
    }
    /// Large and huge blocks: bytes asked for; huge: bytes mapped (free runs: their
    /// dirty page count, see `dirtyPages`).
    var requested: UInt = 0
    var mappedBytes: UInt = 0

    @inline(__always) var end: UInt { start &+ (pageCount << pageShift) }

    /// Block index of `address` if it is the start of a block handed out from this
    /// small span, else nil.
    @inline(__always) func blockIndex(of address: UInt) -> Int? {
        let index = BlockDivisor.quotient(address &- start, inverse: divInverse, shift: divShift)
        if index >= UInt(carved) { return nil }
        return Int(truncatingIfNeeded: index)
    }
}

extension UnsafeMutablePointer where Pointee == Span {
    /// Free runs: the dirty hull as addresses [low, high); low == high when clean.
    @inline(__always) var dirtyLow: UInt { pointee.start &+ (pointee.dirtyOffset << pageShift) }
    @inline(__always) var dirtyHigh: UInt { dirtyLow &+ (pointee.dirtyHullPages << pageShift) }

    /// Sets the dirty hull to [low, high) clipped to the run, with at most `count`
    /// dirty pages in it (fewer when the clipped hull is shorter).
    @inline(__always) func setDirty(_ low: UInt, _ high: UInt, count: UInt) {
        let lo = max(low, pointee.start), hi = min(high, pointee.end)
        let hullPages = hi > lo ? (hi &- lo) >> pageShift : 0
        let n = min(count, hullPages)
        if n == 0 {
            setClean()
        } else {
            let offset = UInt64((lo &- pointee.start) >> pageShift)
            pointee.freeBits2 = offset << 32 | UInt64(hullPages)
            pointee.mappedBytes = n
        }
    }

    @inline(__always) func setClean() {
        pointee.freeBits2 = 0
        pointee.mappedBytes = 0
    }
}

/// The smallest range covering two ranges [a0, a1) and [b0, b1), either possibly empty.
@inline(__always) func hull(_ a0: UInt, _ a1: UInt, _ b0: UInt, _ b1: UInt) -> (UInt, UInt) {
    if a1 <= a0 { return (b0, b1) }
    if b1 <= b0 { return (a0, a1) }
    return (min(a0, b0), max(a1, b1))
}

/// Maximum blocks per small span: the free bitmap's size.
let maxSpanBlocks = 256

extension UnsafeMutablePointer where Pointee == Span {
    @inline(__always) func freeWord(_ w: Int) -> UInt64 {
        switch w {
        case 0: return pointee.freeBits0
        case 1: return pointee.freeBits1
        case 2: return pointee.freeBits2
        default: return pointee.freeBits3
        }
    }

    @inline(__always) func setFreeWord(_ w: Int, _ v: UInt64) {
        switch w {
        case 0: pointee.freeBits0 = v
        case 1: pointee.freeBits1 = v
        case 2: pointee.freeBits2 = v
        default: pointee.freeBits3 = v
        }
    }

    /// Clears the bitmap (a span being cut into blocks).
    @inline(__always) func clearFreeBits() {
        pointee.freeBits0 = 0
        pointee.freeBits1 = 0
        pointee.freeBits2 = 0
        pointee.freeBits3 = 0
    }

    /// Takes the lowest free carved block's index off the bitmap, or -1.
    @inline(__always) func takeFreeIndex() -> Int {
        var w = 0
        while w < maxSpanBlocks / 64 {
            let bits = freeWord(w)
            if bits != 0 {
                setFreeWord(w, bits & (bits &- 1))
                return w &* 64 &+ bits.trailingZeroBitCount
            }
            w &+= 1
        }
        return -1
    }

    /// Whether block `index` is free.
    @inline(__always) func isFree(_ index: Int) -> Bool {
        freeWord(index >> 6) & (UInt64(1) << UInt64(index & 63)) != 0
    }

    /// Marks block `index` free; false when it already was (a double free).
    @inline(__always) func markFree(_ index: Int) -> Bool {
        let w = index >> 6
        let bit = UInt64(1) << UInt64(index & 63)
        let bits = freeWord(w)
        if bits & bit != 0 { return false }
        setFreeWord(w, bits | bit)
        return true
    }
}

/// Per-block record kept beside a span while tracking is on: whether the block is
/// live and tracked, its requested size (malloc(0) is a live block of 0 bytes), and
/// the call-site id the profiler assigns.
struct BlockInfo {
    /// Bit 31: live and tracked; bits 0–30: the requested size.
    private var word: UInt32 = 0
    var site: UInt32 = 0

    init() {}

    /// A live block of `requested` bytes (< 2^31; larger sizes are clamped).
    init(requested: UInt32, site: UInt32) {
        word = min(requested, 0x7fff_ffff) | 0x8000_0000
        self.site = site
    }

    @inline(__always) var isLive: Bool { word & 0x8000_0000 != 0 }
    @inline(__always) var requested: UInt32 { word & 0x7fff_ffff }
}

/// Intrusive singly linked lists through the first word of free blocks.
@inline(__always) func nextFree(_ block: UInt) -> UInt {
    UnsafeMutablePointer<UInt>(bitPattern: block).unsafelyUnwrapped.pointee
}
@inline(__always) func setNextFree(_ block: UInt, _ next: UInt) {
    UnsafeMutablePointer<UInt>(bitPattern: block).unsafelyUnwrapped.pointee = next
}
/// The second word of a free small block holds the process's free key; live blocks
/// never carry it (it is cleared on hand-out), so finding it on free means the block
/// is already free. The word is stored mixed with the block's address (mark XOR
/// address): a program that copies a block's uninitialized bytes — a realloc from a
/// large block whose pages once held free small blocks, a memcpy of such bytes —
/// carries a stale mark to another address, where it no longer reads as the key
/// (stored plainly, such a copy made the next free of the copy report a double
/// free that was none).
@inline(__always) func freeMark(_ block: UInt) -> UInt {
    UnsafeMutablePointer<UInt>(bitPattern: block &+ 8).unsafelyUnwrapped.pointee ^ block
}
@inline(__always) func setFreeMark(_ block: UInt, _ key: UInt) {
    UnsafeMutablePointer<UInt>(bitPattern: block &+ 8).unsafelyUnwrapped.pointee = key ^ block
}
/// The stored word itself, for the free fast path, which compares it with `key ^ block`
/// computed once and stores that same value.
@inline(__always) func freeMarkWord(_ block: UInt) -> UInt {
    UnsafeMutablePointer<UInt>(bitPattern: block &+ 8).unsafelyUnwrapped.pointee
}
@inline(__always) func setFreeMarkWord(_ block: UInt, _ word: UInt) {
    UnsafeMutablePointer<UInt>(bitPattern: block &+ 8).unsafelyUnwrapped.pointee = word
}
