// Layer 2b: the span, a run of whole pages with one purpose, described out of band
// (the 4.3BSD kmemusage entry, grown up). Blocks carry no header: everything free
// and realloc need is found from the page map entry, which points here.
import SwiftMallocShims

enum SpanState: UInt8 {
    case freeRun = 1    // in the page heap, available for any use
    case small = 2      // cut into blocks of one size class
    case large = 3      // one block: a page run from the page heap
    case huge = 4       // one block: its own mapping from the OS
}

/// Descriptor of one span. Invariants:
/// - `start` is page-aligned; the span covers `pageCount` pages.
/// - small: 0 <= live <= carved <= capacity; blocks [carved, capacity) were never
///   handed out; `freeList` links exactly `carved - live` blocks through their first
///   word; the span is on its class's partial list iff live < capacity.
/// - large/huge: `requested` is the caller's size; `pageCount` pages are held
///   (huge: `mappedBytes` were mapped for it).
/// - freeRun: `dirtyPages` of its pages may be resident; it sits in the page heap's
///   bins and, when dirty, on the dirty list.
/// Owned by the lock of whoever holds it: a class lock for small spans, the page
/// heap lock for free runs and for every page-map write.
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
    var blockSize: UInt32 = 0
    var divInverse: UInt64 = 0
    /// What the free fast path compares a block index with: `carved` for ordinary
    /// small spans; 0 for spans reserved for sampled blocks (their frees must reach
    /// the slow path) and for every non-small span.
    var fastLimit: UInt = 0
    /// Small spans: byte offset of the class's bin among a thread cache's bins.
    var binOffset: UInt32 = 0
    /// Large and huge blocks: the profiler's call-site id of the one block.
    var site: UInt32 = 0
    var freeList: UInt = 0
    /// Links on the class's partial list, or on a page-heap bin.
    var next: UnsafeMutablePointer<Span>? = nil
    var prev: UnsafeMutablePointer<Span>? = nil
    /// Free runs: links on the page heap's dirty list (oldest at the tail).
    var dirtyNext: UnsafeMutablePointer<Span>? = nil
    var dirtyPrev: UnsafeMutablePointer<Span>? = nil
    var dirtyPages: UInt = 0
    var freedAt: UInt64 = 0
    /// Large and huge blocks: bytes asked for; huge: bytes mapped.
    var requested: UInt = 0
    var mappedBytes: UInt = 0
    /// When tracking is on: one BlockInfo per block of a small span (nil until the
    /// first tracked allocation in it). Room for the profiler's call-site id.
    var blockInfo: UnsafeMutablePointer<BlockInfo>? = nil

    @inline(__always) var end: UInt { start &+ (pageCount << pageShift) }

    /// Block index of `address` if it is the start of a block handed out from this
    /// small span, else nil.
    @inline(__always) func blockIndex(of address: UInt) -> Int? {
        let index = BlockDivisor.quotient(address &- start, inverse: divInverse, shift: divShift)
        if index >= UInt(carved) { return nil }
        return Int(truncatingIfNeeded: index)
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
/// is already free.
@inline(__always) func freeMark(_ block: UInt) -> UInt {
    UnsafeMutablePointer<UInt>(bitPattern: block &+ 8).unsafelyUnwrapped.pointee
}
@inline(__always) func setFreeMark(_ block: UInt, _ key: UInt) {
    UnsafeMutablePointer<UInt>(bitPattern: block &+ 8).unsafelyUnwrapped.pointee = key
}
