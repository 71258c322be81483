// The process-wide allocator state: one Heap, mapped at first use and published
// through `swm_heap`. It ties the layers together: page map → page heap → size
// classes (central lists, in shards) → thread caches. Lock order, outermost first:
// threadsLock → class locks (ascending in memory: shard by shard, class by class;
// no path but the fork handlers waits for a second while holding one; a steal
// only tries one: Central.steal) → return-stack locks → mixed arena locks
// (shard by shard) → stash
// locks (likewise) → page heap lock → internal memory lock.
import SwiftMallocShims

struct Heap {
    var pageMapStorage: UnsafeMutablePointer<PageMap>? = nil
    var pageHeapStorage: UnsafeMutablePointer<PageHeap>? = nil
    var internalStorage: UnsafeMutablePointer<InternalMemory>? = nil
    var classes: UnsafeMutablePointer<SizeClass>? = nil
    var lookup: UnsafeMutablePointer<UInt8>? = nil
    /// `maxShards` rows of `smallClassCount` central lists; the first `shardCount`
    /// rows are used. A thread refills from its own row (ThreadCache.shard); a block
    /// goes back to the row of its span (Span.shard).
    var centrals: UnsafeMutablePointer<Central>? = nil
    var shardCount = 1
    /// `maxShards` SpanStashes, `stashStride` bytes apart (Heap.stash).
    var stashes: UnsafeMutableRawPointer? = nil
    /// `maxShards` MixedArenas, `mixedArenaStride` bytes apart (Heap.mixedArena).
    var mixedArenas: UnsafeMutableRawPointer? = nil
    /// `maxShards` rows of `returnStacksPerShard` ReturnStacks (Heap.returnStack).
    var returnStacks: UnsafeMutableRawPointer? = nil
    /// Live thread caches per shard (`maxShards` counters, under threadsLock): a new
    /// thread takes the least loaded shard.
    var shardThreads: UnsafeMutablePointer<UInt32>? = nil
    /// Written into the second word of every free small block (see Span.swift).
    var freeKey: UInt = 0
    var config = Config()
    /// Thread caches of live threads, and recycled cache memory.
    var threadsLock: Int32 = 0
    var threads: UnsafeMutablePointer<ThreadCache>? = nil
    var spareCaches: UnsafeMutablePointer<ThreadCache>? = nil
    var threadCount: UInt = 0
    var threadsCreated: UInt = 0
    /// Partial spans moved from one shard's list to another's (Central.steal),
    /// cumulative, updated atomically.
    var spansStolen: UInt = 0
    /// Huge blocks (own mappings), under the page heap lock.
    var hugeCount: UInt = 0
    var hugeBytes: UInt = 0
    var hugeRequested: UInt = 0
    var hugeUnmappedBytes: UInt = 0
    /// Large blocks (page runs), under the page heap lock.
    var largeCount: UInt = 0
    var largePages: UInt = 0
    var largeRequested: UInt = 0
    var peakHeldBytes: UInt = 0
    var peakRequestedBytes: UInt = 0
    /// Live requested bytes over all blocks (tracking without full profiling, whose
    /// profiler keeps the total and its peak itself: Heap.requestedNow), updated
    /// atomically.
    var requestedTotal: UInt = 0
    var forkCount: UInt = 0
    /// Where exit reports go: a duplicate of stderr taken at start-up when one is due.
    var reportFD: Int32 = 2
    /// SWIFTMALLOC_STATS_FILE: the exit statistics go to this file instead (empty: to reportFD).
    var statsTemplate = PathTemplate()
    /// The heap profiler, when SWIFTMALLOC_PROFILE or SWIFTMALLOC_PROFILE_SAMPLE is set.
    var profiler: UnsafeMutablePointer<Profiler>? = nil
    /// The library's constructor has run (threads may be created from now on).
    var loaded = false
    /// Background purger (Purger.swift), under the page heap lock.
    var purgerState: PurgerState = .idle
    /// Interval reports' thread (IntervalReport.swift), under the profiler's reportLock.
    var reporterState: ReporterState = .off
    /// The purger's passes so far (written by it alone, read relaxed): the clock of
    /// the mixed arenas' free ranges (MixedArena.purgeRanges).
    var purgePass: UInt = 0

    @inline(__always) var classTable: UnsafeMutablePointer<SizeClass> { classes.unsafelyUnwrapped }
}

/// Settings read from the environment at start-up.
struct Config {
    /// SWIFTMALLOC_STATS=1: track requested sizes and print statistics at exit.
    var statsAtExit = false
    /// SWIFTMALLOC_CHECK=1: verify every free against the span's free list.
    var check = false
    /// Requested sizes are recorded per block (stats or profiling).
    var tracking = false
    /// Thread caches are bypassed: every call goes to the central lists (check mode).
    var direct = false
    /// Full profiling: the live requested totals (per class and overall) and their
    /// peak are kept by the profiler under its lock, which every tracked allocation
    /// and free takes anyway, instead of with atomic adds of their own.
    var requestedByProfiler = false
    /// SWIFTMALLOC_THP=1: large blocks ask for transparent huge pages, and the page
    /// heap's chunks ask for none (OSPages.adviseHugePages).
    var hugePages = false
    /// SWIFTMALLOC_MIXED=1: thread caches refill the classes from 256 B to 2 KiB
    /// from mixed spans (MixedArena.swift); not while requested sizes are tracked
    /// or the profiler runs.
    var mixed = false
    /// Blocks of at least this many bytes get their own mapping.
    var hugeThreshold: UInt = 64 << 20
}

extension UnsafeMutablePointer where Pointee == Heap {
    @inline(__always) var pageMapPointer: UnsafeMutablePointer<PageMap> { pointee.pageMapStorage.unsafelyUnwrapped }
    @inline(__always) var pageHeapPointer: UnsafeMutablePointer<PageHeap> { pointee.pageHeapStorage.unsafelyUnwrapped }
    @inline(__always) var internalPointer: UnsafeMutablePointer<InternalMemory> { pointee.internalStorage.unsafelyUnwrapped }

    /// Class `cls`'s central list in shard `shard` (< shardCount).
    @inline(__always) func central(_ cls: Int, shard: Int) -> UnsafeMutablePointer<Central> {
        pointee.centrals.unsafelyUnwrapped + (shard &* smallClassCount &+ cls)
    }

    /// The central list that owns small span `span`.
    @inline(__always) func central(of span: UnsafeMutablePointer<Span>) -> UnsafeMutablePointer<Central> {
        central(Int(span.pointee.sizeClass), shard: Int(span.pointee.shard))
    }

    /// The shard of central list `c`.
    @inline(__always) func shard(of c: UnsafeMutablePointer<Central>) -> Int {
        (c - pointee.centrals.unsafelyUnwrapped) / smallClassCount
    }

    /// The calling thread's shard: its cache's, or for a thread without one its
    /// cacheless row.
    @inline(__always) var currentShard: Int {
        if let raw = swm_tls_cache_get(), raw != swm_empty_cache_get() {
            return Int(truncatingIfNeeded: raw.assumingMemoryBound(to: ThreadCache.self).pointee.shard)
        }
        return cachelessShard()
    }

    /// The row of a thread that allocates without a cache (hardened mode bypasses
    /// caches): at its first such allocation it takes the row with the fewest live
    /// threads, as a cache does, and keeps it in its TLS; the thread key's
    /// destructor gives it back at exit (swm_thread_exit), so a thread that
    /// replaces one that exited takes its row. A thread whose cache was torn down
    /// at exit (other keys' destructors still allocating) uses row 0. Rows never
    /// go away and shardCount is fixed at start-up, so a dealt row stays valid (in
    /// a forked child too).
    @inline(never)
    func cachelessShard() -> Int {
        let dealt = swm_tls_shard_get()
        if dealt != 0 { return Int(truncatingIfNeeded: dealt &- 1) }
        if swm_tls_state_get() != 0 { return 0 }
        swm_lock(&pointee.threadsLock)
        let shard = takeLeastLoadedShard()
        swm_unlock(&pointee.threadsLock)
        swm_tls_shard_set(UInt32(truncatingIfNeeded: shard &+ 1))
        // An odd key value: a row to give back, not a cache.
        swm_thread_key_set(UnsafeMutableRawPointer(bitPattern: UInt(shard) << 1 | 1))
        return shard
    }

    /// A cacheless thread's row, given back when the thread exits or makes a cache.
    func releaseCachelessShard() {
        let dealt = swm_tls_shard_get()
        if dealt == 0 { return }
        swm_lock(&pointee.threadsLock)
        pointee.shardThreads.unsafelyUnwrapped[Int(truncatingIfNeeded: dealt &- 1)] &-= 1
        swm_unlock(&pointee.threadsLock)
        swm_tls_shard_set(0)
    }
}

/// Rows of central lists mapped (Heap.centrals); SWIFTMALLOC_SHARDS or the CPU count
/// picks how many are used, at most this many.
let maxShards = 16

/// The heap, initialising it on first use; nil only when the system refuses memory.
@inline(__always) func currentHeap() -> UnsafeMutablePointer<Heap>? {
    if let h = swm_heap_get() { return h.assumingMemoryBound(to: Heap.self) }
    return initializeHeap()
}

private nonisolated(unsafe) var initLock: Int32 = 0

@inline(never)
func initializeHeap() -> UnsafeMutablePointer<Heap>? {
    // The static empty cache stands in for a thread's cache until it has one. The
    // profiler's parts are never reached through it (every use checks for it first).
    if MemoryLayout<Central>.stride != 64 { internalFailure("central list not one cache line", UInt(MemoryLayout<Central>.stride)) }
    if MemoryLayout<MixedArena>.size > mixedBinsOffset { internalFailure("mixed arena header too large", UInt(MemoryLayout<MixedArena>.size)) }
    let stand = threadCacheBytes(profiling: false)
    if stand > Int(SWM_EMPTY_CACHE_BYTES) { internalFailure("thread cache larger than the empty cache", UInt(stand)) }
    swm_lock(&initLock)
    defer { swm_unlock(&initLock) }
    if let h = swm_heap_get() { return h.assumingMemoryBound(to: Heap.self) }
    let heapBytes = (UInt(MemoryLayout<Heap>.stride) &+ 63) & ~UInt(63)
    let mapBytes = (UInt(MemoryLayout<PageMap>.stride) &+ 63) & ~UInt(63)
    let pageHeapBytes = (UInt(MemoryLayout<PageHeap>.stride) &+ 63) & ~UInt(63)
    let internalBytes = (UInt(MemoryLayout<InternalMemory>.stride) &+ 63) & ~UInt(63)
    let stashBytes = UInt(stashStride &* maxShards)
    let arenaBytes = UInt(mixedArenaStride &* maxShards)
    let returnStackBytes = UInt(returnStackStride &* returnStacksPerShard &* maxShards)
    let shardThreadsBytes = UInt(MemoryLayout<UInt32>.stride &* maxShards)
    let classBytes = UInt(MemoryLayout<SizeClass>.stride &* smallClassCount)
    let centralBytes = (UInt(MemoryLayout<Central>.stride &* smallClassCount &* maxShards) &+ 63) & ~UInt(63)
    let binBytes = UInt(MemoryLayout<UnsafeMutablePointer<Span>?>.stride &* binCount)
    let total = heapBytes &+ mapBytes &+ pageHeapBytes &+ internalBytes &+ centralBytes &+ stashBytes &+ arenaBytes &+ returnStackBytes &+ shardThreadsBytes &+ classBytes &+ binBytes &+ UInt(lookupEntries)
    guard let raw = OSPages.map(total) else { return nil }
    reserveFlatPageMap(around: UInt(bitPattern: raw))
    let heap = raw.bindMemory(to: Heap.self, capacity: 1)
    heap.initialize(to: Heap())
    var cursor = raw + Int(heapBytes)
    let pageMap = cursor.bindMemory(to: PageMap.self, capacity: 1)
    pageMap.initialize(to: PageMap())
    cursor += Int(mapBytes)
    let pageHeap = cursor.bindMemory(to: PageHeap.self, capacity: 1)
    pageHeap.initialize(to: PageHeap())
    cursor += Int(pageHeapBytes)
    let meta = cursor.bindMemory(to: InternalMemory.self, capacity: 1)
    meta.initialize(to: InternalMemory())
    cursor += Int(internalBytes)
    heap.pointee.pageMapStorage = pageMap
    heap.pointee.pageHeapStorage = pageHeap
    heap.pointee.internalStorage = meta
    // A Central's initial value is all zero bits, as fresh mapped memory is: rows
    // of shards never used are never written, and cost no resident page.
    let centrals = cursor.bindMemory(to: Central.self, capacity: smallClassCount &* maxShards)
    cursor += Int(centralBytes)
    // Likewise a SpanStash's.
    heap.pointee.stashes = cursor
    cursor += Int(stashBytes)
    // Likewise a MixedArena's.
    heap.pointee.mixedArenas = cursor
    cursor += Int(arenaBytes)
    heap.pointee.returnStacks = cursor
    cursor += Int(returnStackBytes)
    heap.pointee.shardThreads = cursor.bindMemory(to: UInt32.self, capacity: maxShards)
    cursor += Int(shardThreadsBytes)
    let classes = cursor.bindMemory(to: SizeClass.self, capacity: smallClassCount)
    cursor += Int(classBytes)
    let bins = cursor.bindMemory(to: UnsafeMutablePointer<Span>?.self, capacity: binCount)
    cursor += Int(binBytes)
    let lookup = cursor.bindMemory(to: UInt8.self, capacity: lookupEntries)
    SizeClasses.build(table: classes, lookup: lookup)
    heap.pointee.centrals = centrals
    heap.pointee.classes = classes
    heap.pointee.lookup = lookup
    pageHeap.pointee.bins = bins
    heap.pointee.freeKey = UInt(swm_random_seed()) | 1
    // No block is ours before the heap is published, so no free has used the
    // empty cache's rooms yet (see CacheBin.room).
    let empty = swm_empty_cache_get().unsafelyUnwrapped.assumingMemoryBound(to: ThreadCache.self)
    var b = 0
    while b < smallClassCount {
        empty.bin(b).pointee.room = emptyCacheRoom
        empty.trackedBin(b).pointee.room = emptyCacheRoom
        b &+= 1
    }
    heap.readEnvironment()
    _ = swm_thread_key_create()
    swm_heap_publish(heap)
    return heap
}
