// Layer 3: the thread cache. Each thread keeps, per size class, a short LIFO stack of
// free blocks linked through their first word, so a common malloc or free is a
// pop or a push with no lock and no atomic instruction. The cache holds a copy of
// what the fast paths need (size lookup table of bin offsets, free key) so they
// touch nothing but this memory, the span descriptor and the block itself.
//
// Invariants: bin[c] holds `count` = limit − room blocks of class c, count <=
// limit; every block in a bin is counted live by its span and central list (it has
// been taken from them), or by its mixed arena, and carries the free key in its
// second word. Bin 0 is the unsorted bin: granule-aligned addresses in mixed
// spans that the free fast path took (with mixed spans on; limit 0 otherwise),
// each checked and moved to its class's bin by sortUnsorted. limit is 0
// for every class while tracking is on, so all calls then take the slow path; the
// slow path then caches blocks in a second set of bins, the tracked bins, which
// the fast paths never look at. A thread without a cache points at the static
// empty cache: zero except its bins' rooms, set far below zero when the heap is
// created, so every lookup gives bin 0, every bin is empty and none has room, and
// the fast paths never test for "no cache". Threads without a cache write two
// kinds of word there, racily: the rooms (free takes a slot, then gives it back)
// and the sampling countdown (the sampled malloc charges before it tests); neither
// value can make a block enter or leave the empty cache.
import SwiftMallocShims

struct CacheBin {
    var head: UInt = 0
    /// Free slots: limit − blocks held. The free fast path subtracts one first and
    /// takes the slow path when the result is negative, which adds it back (one
    /// subtract on memory whose sign flag is the test). In the static empty cache
    /// every room is set far below zero when the heap is created, so the racy
    /// subtracts of threads without a cache can never bring it to zero.
    var room: Int32 = 0
    var limitStorage: UInt16 = 0
    /// Set by a flush that found the bin full, cleared by the next refill: a refill
    /// that finds it set means the bin went from full to empty, its class's working
    /// set does not fit, and the limit grows (see refill).
    var flushedSinceRefill: UInt8 = 0
    /// Refills so far, saturating: the first two take the class's firstRefill blocks
    /// (8, fewer above 512 B: one 4 KiB block) and every second one after that
    /// doubles (8, 8, 16, 16, 32, ...), up to the class's batch, so a
    /// thread that uses a class lightly does not pull in (and keep resident) a full
    /// batch of it. With 16 threads each using 16 classes lightly, doubling from the
    /// second refill on held 564 KiB at the peak; this holds 428 KiB.
    var refills: UInt8 = 0

    var limit: UInt32 { UInt32(limitStorage) }

    /// Blocks held.
    var count: UInt32 {
        get { limit &- UInt32(bitPattern: room) }
        set { room = Int32(bitPattern: limit &- newValue) }
    }

    /// Changes the limit (at most 65535), keeping the blocks held.
    mutating func setLimit(_ newLimit: UInt32) {
        let held = count
        limitStorage = UInt16(truncatingIfNeeded: min(newLimit, 0xFFFF))
        count = held
    }
}


/// Blocks a full bin gives back to its central list at a time (its newest ones).
let flushBatch: UInt32 = 8

/// Blocks of mixed spans the unsorted bin (bin 0) holds before they are sorted.
let unsortedLimit: UInt32 = 64

/// Room of every bin of the static empty cache (see CacheBin.room).
let emptyCacheRoom = Int32.min / 2

struct ThreadCache {
    var freeKey: UInt = 0
    var next: UnsafeMutablePointer<ThreadCache>? = nil
    var prev: UnsafeMutablePointer<ThreadCache>? = nil
    /// Sampling profiler: bytes this thread may still allocate before the next sample.
    var sampleCountdown: Int = 0
    /// The row of central lists this thread refills from (Heap.centrals): the shard
    /// with the fewest live threads when the cache was made, the lowest such. Threads
    /// that run at once take different class locks, and a thread that replaces one
    /// that exited takes its shard, where the blocks freed back to that thread's
    /// spans are (a shard no live thread refills from would keep them idle).
    var shard: UInt = 0
    // Followed in memory by the size lookup table (lookupEntries bytes: bin offsets
    // in 8-byte units, padded to lookupTableBytes) and by `smallClassCount`
    // CacheBins: see lookupOffset and binsOffset.
}

/// Layout of a cache's memory: header, lookup table, bins.
@inline(__always) var lookupOffset: Int { MemoryLayout<ThreadCache>.stride }
@inline(__always) var lookupTableBytes: Int { (lookupEntries + 7) & ~7 }
@inline(__always) var binsOffset: Int { lookupOffset + lookupTableBytes }
@inline(__always) var trackedBinsOffset: Int { binsOffset + smallClassCount * MemoryLayout<CacheBin>.stride }
@inline(__always) var siteCacheOffset: Int { trackedBinsOffset + smallClassCount * MemoryLayout<CacheBin>.stride }
/// The walk memo (swm_walk_cached, stackwalk.h): maxProfileDepth return addresses, which are also
/// the thread's frame scratch, then as many frame rules, then maxProfileDepth + 1 steps and
/// the rule generation it was made in.
@inline(__always) var framesOffset: Int { siteCacheOffset + siteCacheEntries * MemoryLayout<SiteCacheEntry>.stride }
/// Full profiling's per-thread counts (ProfileTally.swift), on a cache line of their own.
@inline(__always) var tallyOffset: Int { (framesOffset + (maxProfileDepth * 3 + 2) * MemoryLayout<UInt>.stride + 63) & ~63 }
@inline(__always) var threadCacheBytes: Int { tallyOffset + profileTallyBytes }
/// Without a profiler a cache ends before the site memo: the profiler's parts
/// (site memo, walk memo, tally) are 22.6 KiB of the 25.6, and every thread's
/// cache would otherwise keep them resident, interleaved with the next cache's bins.
/// The tally is full profiling's alone: a sampling profiler's caches end before it.
@inline(__always) func threadCacheBytes(profiling: Bool, full: Bool = true) -> Int {
    profiling ? (full ? threadCacheBytes : tallyOffset) : siteCacheOffset
}

/// The profiler's per-thread memo of recent stacks: hash and depth → site id, so a
/// repeated stack finds its site without the profile lock.
struct SiteCacheEntry {
    var hash: UInt64 = 0
    var site: UInt32 = 0
    var depth: UInt32 = 0
}
/// Direct-mapped: with 128 entries, 23% of the lookups of a program with 65 hot
/// stacks missed (two hashes in one slot), each miss taking the profile lock and
/// comparing a stored stack.
let siteCacheEntries = 512

extension UnsafeMutablePointer where Pointee == ThreadCache {
    /// The bin for a request of `n <= lookupMaxSize` bytes (the static empty cache
    /// answers bin 0, which is always empty with limit 0).
    @inline(__always) func bin(forSmall n: UInt) -> UnsafeMutablePointer<CacheBin> {
        let table = (UnsafeMutableRawPointer(self) + lookupOffset).assumingMemoryBound(to: UInt8.self)
        return bin(atOffset: UInt(table[Int(truncatingIfNeeded: n)]) << 3)
    }

    /// The bin for a request of lookupMaxSize < n <= maxSmallSize bytes, by the size
    /// class formula (the static empty cache's bins are all empty with limit 0).
    @inline(__always) func bin(forMedium n: UInt) -> UnsafeMutablePointer<CacheBin> {
        bin(SizeClasses.index(overLookup: n))
    }

    @inline(__always) func bin(atOffset offset: UInt) -> UnsafeMutablePointer<CacheBin> {
        (UnsafeMutableRawPointer(self) + binsOffset + Int(bitPattern: offset)).assumingMemoryBound(to: CacheBin.self)
    }

    @inline(__always) func bin(_ cls: Int) -> UnsafeMutablePointer<CacheBin> {
        (UnsafeMutableRawPointer(self) + binsOffset).assumingMemoryBound(to: CacheBin.self) + cls
    }

    @inline(__always) func siteCache(_ hash: UInt64) -> UnsafeMutablePointer<SiteCacheEntry> {
        (UnsafeMutableRawPointer(self) + siteCacheOffset).assumingMemoryBound(to: SiteCacheEntry.self)
            + Int(truncatingIfNeeded: hash >> 7) & (siteCacheEntries &- 1)
    }

    /// Full profiling's counts of this thread not yet merged (ProfileTally.swift).
    @inline(__always) var tally: UnsafeMutablePointer<ProfileTally> {
        (UnsafeMutableRawPointer(self) + tallyOffset).assumingMemoryBound(to: ProfileTally.self)
    }

    /// Scratch for one captured stack (maxProfileDepth frames): the walk memo's
    /// addresses, so whoever writes frames here other than the cached walk makes
    /// the memo forget their rules (swm_walk_memo_forget).
    @inline(__always) var frames: UnsafeMutablePointer<UInt> {
        (UnsafeMutableRawPointer(self) + framesOffset).assumingMemoryBound(to: UInt.self)
    }

    @inline(__always) func trackedBin(_ cls: Int) -> UnsafeMutablePointer<CacheBin> {
        (UnsafeMutableRawPointer(self) + trackedBinsOffset).assumingMemoryBound(to: CacheBin.self) + cls
    }

    /// The malloc fast path: a block for a request of `n` bytes from its bin, or 0
    /// when `n` is not a small size or the bin is empty. Small sizes use the lookup
    /// table, medium ones the class formula; each branch pops on its own.
    @inline(__always) func pop(forRequest n: UInt) -> UInt {
        if n <= lookupMaxSize { return pop(bin(forSmall: n)) }
        if n <= maxSmallSize { return pop(bin(forMedium: n)) }
        return 0
    }

    /// Pops a block of class `cls`, or 0 when the bin is empty.
    @inline(__always) func pop(_ cls: Int) -> UInt { pop(bin(cls)) }

    @inline(__always) func pop(_ b: UnsafeMutablePointer<CacheBin>) -> UInt {
        let p = b.pointee.head
        if p != 0 {
            b.pointee.head = nextFree(p)
            b.pointee.room &+= 1
            setFreeMark(p, 0)
        }
        return p
    }

    /// Refills bin `cls` from its central list and pops one block (0: out of memory).
    @inline(never)
    func refill(_ cls: Int, heap: UnsafeMutablePointer<Heap>) -> UInt { refill(bin(cls), cls, heap: heap) }

    /// Refills bin `b` (of class `cls`) from its central list and pops one block.
    func refill(_ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, heap: UnsafeMutablePointer<Heap>) -> UInt {
        refillBin(b, cls, heap: heap) ? pop(b) : 0
    }

    /// Moves a batch of blocks of class `cls` from its central list to bin `b`;
    /// false when none could be had (out of memory).
    func refillBin(_ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, heap: UnsafeMutablePointer<Heap>) -> Bool {
        let mixed = heap.refillsMixed(cls)
        // A block of this class just freed may be waiting in the unsorted bin.
        if mixed && bin(0).pointee.head != 0 {
            sortUnsorted(heap: heap)
            if b.pointee.head != 0 { return true }
        }
        let central = heap.central(cls, shard: Int(truncatingIfNeeded: pointee.shard))
        let info = heap.pointee.classTable[cls]
        // Full to empty since the last refill: the bin thrashes between the central
        // lists' lock and its limit; a quarter more room lets the class's working
        // set settle in the cache.
        if b.pointee.flushedSinceRefill != 0 {
            b.pointee.flushedSinceRefill = 0
            let grown = b.pointee.limit &+ max(b.pointee.limit / 4, 1)
            if b.pointee.limit != 0 && grown <= info.growthLimit { b.pointee.setLimit(grown) }
        }
        let want = min(UInt(max(info.refillBatch, 1)), UInt(info.firstRefill) << UInt(b.pointee.refills &>> 1))
        if b.pointee.refills < 8 { b.pointee.refills &+= 1 }
        var list = BlockList()
        if mixed {
            _ = heap.takeMixed(want, cls, shard: Int(truncatingIfNeeded: pointee.shard), into: &list)
        } else {
            swm_lock(&central.pointee.lock)
            _ = central.take(want, cls, into: &list, heap: heap, deferCarve: true)
            swm_unlock(&central.pointee.lock)
        }
        if list.count == 0 { return false }
        // Fresh blocks are written here, outside the lock: their first touch may
        // fault the page in, and the class's other threads (a consumer flushing
        // blocks back) would wait for it.
        list.linkPending()
        // The blocks already carry the free key, or for a tracked bin the address of
        // their BlockInfo entries (Central.take), as every binned block must.
        setNextFree(list.tail, b.pointee.head)
        b.pointee.head = list.head
        b.pointee.count &+= UInt32(truncatingIfNeeded: list.count)
        return true
    }

    /// Pushes a free block on bin `b`, first giving back the newest `flushBatch`
    /// blocks of a full bin.
    @inline(__always) func push(_ p: UInt, _ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, heap: UnsafeMutablePointer<Heap>) {
        push(p, b, cls, mark: pointee.freeKey, heap: heap)
    }

    /// Pushes a free block on tracked bin `b`, as `push` does, with the address of
    /// its BlockInfo entry where other bins' blocks carry the free key: the
    /// tracked allocation writes its record there without finding the span.
    @inline(__always) func pushTracked(_ p: UInt, _ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, slot: UnsafeMutablePointer<BlockInfo>,
                                       heap: UnsafeMutablePointer<Heap>) {
        push(p, b, cls, mark: UInt(bitPattern: slot), heap: heap)
    }

    /// `p` on bin `b` with `mark` in its second word.
    @inline(__always) private func push(_ p: UInt, _ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, mark: UInt,
                                        heap: UnsafeMutablePointer<Heap>) {
        let limit = max(b.pointee.limit, 1)
        if b.pointee.count >= limit {
            b.pointee.flushedSinceRefill = 1
            giveBack(b, cls, newest: min(limit, flushBatch), heap: heap)
        }
        setNextFree(p, b.pointee.head)
        setFreeMark(p, mark)
        b.pointee.head = p
        b.pointee.count &+= 1
    }

    /// Sorts the unsorted bin (bin 0): the blocks the free fast path took from mixed
    /// spans without reading their class. Each must be the start of a block the
    /// arena handed out (its granule map byte is a class), or it is reported as a
    /// bad free here (the free fast path only checked that it is granule-aligned
    /// and does not carry the free key); each then goes on its class's bin.
    @inline(never)
    func sortUnsorted(heap: UnsafeMutablePointer<Heap>) {
        let b = bin(0)
        var block = b.pointee.head
        b.pointee.head = 0
        b.pointee.count = 0
        let map = heap.pageMapPointer
        while block != 0 {
            let next = nextFree(block)
            guard let span = map.pointee.span(at: block), span.pointee.state == .mixed else {
                reportBadPointer("free()", block, .notOurs)
            }
            let cls = heap.mixedClass(of: block, span: span)
            if cls == 0 { reportBadPointer("free()", block, .insideBlock) }
            push(block, bin(cls), cls, heap: heap)
            block = next
        }
    }

    /// Gives the `n` newest blocks of bin `b` (of class `cls`), or all of them, back
    /// to the central list. The newest were freed last, so their lines are the
    /// likeliest to be in cache for the walk to the cut and for Central.put's walk;
    /// the older blocks stay binned until malloc pops them.
    func giveBack(_ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, newest n: UInt32, heap: UnsafeMutablePointer<Heap>) {
        let take = min(n, b.pointee.count)
        if take == 0 { return }
        var list = BlockList()
        list.head = b.pointee.head
        if take == b.pointee.count {
            b.pointee.head = 0
        } else {
            var last = b.pointee.head
            var i: UInt32 = 1
            while i < take { last = nextFree(last); i &+= 1 }
            b.pointee.head = nextFree(last)
            setNextFree(last, 0)
        }
        list.count = UInt(take)
        b.pointee.count &-= take
        heap.put(list)
    }

    /// Returns the blocks of bin `b` of a thread that fork() left behind to their
    /// spans. That thread may have stopped between two stores of a push, pop,
    /// refill or flush, so the bin's count may disagree with its list by a block or
    /// a batch. The list is followed while each block is a carved, live block of a
    /// span of this class carrying the free key (in a tracked bin: its record's
    /// address), for at most the bin's limit plus
    /// one refill batch; the first block that fails ends the salvage, and what is
    /// left in the list stays allocated (a bounded leak, in the child only).
    func salvage(_ b: UnsafeMutablePointer<CacheBin>, _ cls: Int, tracked: Bool, heap: UnsafeMutablePointer<Heap>) {
        var block = b.pointee.head
        b.pointee.head = 0
        b.pointee.count = 0
        var budget = UInt(b.pointee.limit) &+ UInt(heap.pointee.classTable[cls].refillBatch) &+ 1
        // Only the forking thread runs in the child: the spans' fields can be read
        // before their central's lock is taken.
        var held: UnsafeMutablePointer<Central>? = nil
        while block != 0 && budget > 0 {
            if block & 15 == 0, let span = spanOwning(block), span.pointee.state == .mixed {
                // Bin 0, the unsorted bin, holds blocks of every mixed class.
                let blockClass = heap.mixedClass(of: block, span: span)
                guard !tracked, blockClass != 0, cls == 0 || blockClass == cls, freeMark(block) == heap.pointee.freeKey else { break }
                let next = nextFree(block)
                heap.returnMixed(block, blockClass, span: span)
                block = next
                budget &-= 1
                continue
            }
            guard block & 15 == 0, let span = spanOwning(block), span.pointee.state == .small,
                  Int(span.pointee.sizeClass) == cls, let index = span.pointee.blockIndex(of: block),
                  !span.isFree(index) else { break }
            // A binned block carries the free key, or in a tracked bin its record's address.
            if tracked {
                guard let info = span.pointee.blockInfo, freeMark(block) == UInt(bitPattern: info + index) else { break }
            } else if freeMark(block) != heap.pointee.freeKey {
                break
            }
            let next = nextFree(block)
            let central = heap.holdOwner(of: span, releasing: &held)
            central.put(block, span: span, heap: heap, marked: true)
            block = next
            budget &-= 1
        }
        if let h = held { swm_unlock(&h.pointee.lock) }
    }

    func flushAll(heap: UnsafeMutablePointer<Heap>) {
        if bin(0).pointee.head != 0 { sortUnsorted(heap: heap) }
        var cls = 1
        while cls < smallClassCount {
            giveBack(bin(cls), cls, newest: .max, heap: heap)
            giveBack(trackedBin(cls), cls, newest: .max, heap: heap)
            cls &+= 1
        }
    }

    /// Sets every bin's limit from the class table (0 for all while tracking is on),
    /// and the unsorted bin's (0 without mixed spans).
    func applyLimits(heap: UnsafeMutablePointer<Heap>) {
        bin(0).pointee.setLimit(heap.pointee.config.mixed ? unsortedLimit : 0)
        let slowOnly = heap.pointee.config.tracking || heap.pointee.config.direct
        var cls = 1
        while cls < smallClassCount {
            let limit = heap.pointee.classTable[cls].cacheLimit
            bin(cls).pointee.setLimit(slowOnly ? 0 : limit)
            trackedBin(cls).pointee.setLimit(limit)
            cls &+= 1
        }
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// A cache for the calling thread, registered for flushing at thread exit.
    @inline(never)
    func createThreadCache() -> UnsafeMutablePointer<ThreadCache>? {
        // The profiler is configured with the heap, before any cache, so every cache
        // (spare ones included) has the same size.
        let bytes = threadCacheBytes(profiling: pointee.profiler != nil, full: pointee.profiler?.pointee.sampleMean == 0)
        // The first sampling gap is drawn before the threads lock: the profile lock
        // is outermost (the fork handlers take it first), so it is never taken
        // under an allocator lock.
        var gap = 0
        if let profiler = pointee.profiler, profiler.pointee.sampleMean != 0 { gap = profiler.nextGap() }
        swm_lock(&pointee.threadsLock)
        var tc = pointee.spareCaches
        if let t = tc {
            pointee.spareCaches = t.pointee.next
        } else {
            let meta = internalPointer
            swm_lock(&meta.pointee.lock)
            tc = meta.pointee.bump(UInt(bytes))?.bindMemory(to: ThreadCache.self, capacity: 1)
            swm_unlock(&meta.pointee.lock)
        }
        guard let t = tc else {
            swm_unlock(&pointee.threadsLock)
            return nil
        }
        UnsafeMutableRawPointer(t).initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        t.initialize(to: ThreadCache())
        t.pointee.freeKey = pointee.freeKey
        let table = (UnsafeMutableRawPointer(t) + lookupOffset).assumingMemoryBound(to: UInt8.self)
        table.update(from: pointee.lookup.unsafelyUnwrapped, count: lookupEntries)
        t.applyLimits(heap: self)
        t.pointee.sampleCountdown = gap
        t.pointee.shard = UInt(takeLeastLoadedShard())
        t.pointee.next = pointee.threads
        pointee.threads?.pointee.prev = t
        pointee.threads = t
        pointee.threadCount &+= 1
        pointee.threadsCreated &+= 1
        swm_unlock(&pointee.threadsLock)
        releaseCachelessShard()   // a thread that allocated without a cache before (out of memory then)
        swm_tls_cache_set(UnsafeMutableRawPointer(t))
        swm_tls_state_set(1)
        swm_thread_key_set(UnsafeMutableRawPointer(t))
        return t
    }

    /// The used shard with the fewest live threads, the lowest of them, counted as
    /// one more thread's. Caller holds threadsLock.
    func takeLeastLoadedShard() -> Int {
        let load = pointee.shardThreads.unsafelyUnwrapped
        var best = 0
        var i = 1
        while i < pointee.shardCount {
            if load[i] < load[best] { best = i }
            i &+= 1
        }
        load[best] &+= 1
        return best
    }

    /// Flushes a cache and recycles its memory; `tc` must belong to no running thread.
    /// `interrupted`: the cache belonged to a thread that fork() left behind, which
    /// may have stopped in the middle of a push or pop, so its bins are salvaged
    /// block by block rather than trusted (see salvage).
    func retireThreadCache(_ tc: UnsafeMutablePointer<ThreadCache>, interrupted: Bool = false) {
        // Its counts first, under the profile lock, which is taken before any other.
        if let profiler = pointee.profiler, profiler.countsInTallies {
            swm_lock(&profiler.pointee.lock)
            profiler.merge(tc.tally, owned: true, heap: self)
            swm_unlock(&profiler.pointee.lock)
        }
        if interrupted {
            tc.salvage(tc.bin(0), 0, tracked: false, heap: self)
            var cls = 1
            while cls < smallClassCount {
                tc.salvage(tc.bin(cls), cls, tracked: false, heap: self)
                tc.salvage(tc.trackedBin(cls), cls, tracked: true, heap: self)
                cls &+= 1
            }
        } else {
            tc.flushAll(heap: self)
        }
        swm_lock(&pointee.threadsLock)
        if let p = tc.pointee.prev { p.pointee.next = tc.pointee.next } else { pointee.threads = tc.pointee.next }
        tc.pointee.next?.pointee.prev = tc.pointee.prev
        pointee.threadCount &-= 1
        pointee.shardThreads.unsafelyUnwrapped[Int(tc.pointee.shard)] &-= 1
        tc.pointee.prev = nil
        tc.pointee.next = pointee.spareCaches
        pointee.spareCaches = tc
        swm_unlock(&pointee.threadsLock)
    }
}
