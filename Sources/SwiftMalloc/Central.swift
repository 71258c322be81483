// Layer 2c: the central lists of one size class in one shard. Thread caches refill
// from their shard's list and flush each block back to the list that owns its span;
// a span that becomes empty goes straight back to the page heap, where any class
// (or a large block) can reuse its pages at once (or, while the page heap's lock is
// contended, to the shard's stash: SpanStash.swift; check mode keeps a few on the
// list: checkQuarantine). Shards exist so that threads
// running at once take different locks: one lock per class, shared by every
// producer/consumer pair, stopped throughput growing past 4 threads.
//
// Invariants (under `lock`): `partial` lists exactly the spans of this class and
// shard (Span.shard) with live < capacity; spans become partial at the head when a
// block comes back to a full span (nearly full spans are refilled first, so sparse
// ones can drain and be returned); `liveBlocks` is the sum of the spans' `live`.
import SwiftMallocShims

/// Spans of another shard's partial list that a steal compares.
let stealScan = 8
/// The most new spans a list takes between two searches for one to steal.
let maxStealWait: UInt16 = 64
/// A list is idle, and may be robbed, when no thread has refilled from it for this
/// many ticks of `stealClock` (about 17 ms).
let stealIdleTicks: UInt32 = 16

/// The coarse monotonic clock in ticks of 2^20 ns (about 1 ms), wrapping.
@inline(__always) func stealClock() -> UInt32 {
    UInt32(truncatingIfNeeded: swm_now_ns() >> 20)
}

struct Central {
    var lock: Int32 = 0
    /// When a thread last refilled from this list, in ticks of `stealClock` (with
    /// more than one shard). Written under the lock, read by other shards' steals
    /// without it (a hint): a list refilled from within `stealIdleTicks` is in use,
    /// and its spans are not taken.
    var refilledAt: UInt32 = 0
    var partial: UnsafeMutablePointer<Span>? = nil
    /// Partial spans reserved for blocks the sampling profiler follows (see
    /// Span.forSampling); kept apart so ordinary blocks never share their spans.
    var samplingPartial: UnsafeMutablePointer<Span>? = nil
    var spanCount: UInt32 = 0
    var peakSpans: UInt32 = 0
    var liveBlocks: UInt = 0
    /// Requested bytes of live tracked blocks (tracking without full profiling,
    /// whose profiler counts them itself: Heap.classRequestedNow).
    var requestedLive: UInt = 0
    /// Spans given back to the page heap, cumulative.
    var spansReleased: UInt = 0
    /// New spans still to take before the next steal (see steal): each search of the
    /// other shards that finds nothing doubles the wait, up to `maxStealWait`, so a
    /// shard whose neighbours are all busy stops looking at their lists.
    var stealWait: UInt16 = 0
    var stealBackoff: UInt16 = 0
    /// Check mode: empty spans kept on `partial` (see checkQuarantine).
    var emptyKept: UInt32 = 0
    // 64 bytes: one list per cache line (Heap checks the stride).
}

/// Check mode keeps up to this many emptied spans per list on its partial list
/// instead of giving them back, their freed blocks still filled, so that a write
/// into a block freed with the rest of its span is caught when a block is taken
/// from it again (Central.take), as one into a span that holds other blocks is.
/// A span emptied past that is checked block by block as it goes back.
let checkQuarantine: UInt32 = 4

/// A batch of free blocks linked through their first word. `count` includes a
/// *pending* run: `pendingCount` never-used blocks from `pendingStart`, `pendingSize`
/// bytes apart, taken from their span but not yet written (linkPending links them,
/// each with its second-word mark, outside the class lock: fresh blocks are often
/// on pages not yet faulted in).
struct BlockList {
    var head: UInt = 0
    var tail: UInt = 0
    var count: UInt = 0
    var pendingStart: UInt = 0
    var pendingCount: UInt = 0
    var pendingSize: UInt = 0
    var pendingMark: UInt = 0
    var pendingMarkStep: UInt = 0

    @inline(__always) mutating func push(_ block: UInt) {
        setNextFree(block, head)
        if head == 0 { tail = block }
        head = block
        count &+= 1
    }

    /// Links the pending run on top of the list, in address order (the highest
    /// block ends up at the head), as if each had been pushed; `count` is unchanged.
    mutating func linkPending() {
        var block = pendingStart
        var mark = pendingMark
        var i: UInt = 0
        while i < pendingCount {
            setFreeMark(block, mark)
            setNextFree(block, head)
            if head == 0 { tail = block }
            head = block
            block &+= pendingSize
            mark &+= pendingMarkStep
            i &+= 1
        }
        pendingCount = 0
    }
}

/// Hardened mode (SWIFTMALLOC_CHECK=1) writes this pattern into the first word of
/// every block it returns to its span, and checks it (and the free key in the
/// second word) when the block is handed out again: a write after free is caught
/// before the block is reused.
@inline(__always) func freedPattern(_ block: UInt, heap: UnsafeMutablePointer<Heap>) -> UInt {
    heap.pointee.freeKey ^ (block >> 4) ^ 0x5A5A_5A5A_5A5A_5A5A
}

/// Hardened mode also fills a freed block's bytes after those two words, up to
/// 4 KiB, with a per-process byte, checked with them: a write anywhere in that
/// range is caught too.
let freedFillLimit: UInt = 4096
@inline(__always) func freedFillByte(_ heap: UnsafeMutablePointer<Heap>) -> UInt8 {
    UInt8(truncatingIfNeeded: heap.pointee.freeKey >> 40) | 0x42
}

/// Fills bytes [16, min(size, 16 + freedFillLimit)) of freed block `block`.
@inline(never) func fillFreed(_ block: UInt, size: UInt, heap: UnsafeMutablePointer<Heap>) {
    let end = min(size, 16 &+ freedFillLimit)
    if end <= 16 { return }
    UnsafeMutableRawPointer(bitPattern: block &+ 16).unsafelyUnwrapped
        .initializeMemory(as: UInt8.self, repeating: freedFillByte(heap), count: Int(end &- 16))
}

/// Check mode: reports a write into freed block `block` since its free (its first
/// word's pattern, its free key, its fill).
@inline(__always) func verifyFreed(_ block: UInt, size: UInt, heap: UnsafeMutablePointer<Heap>) {
    if nextFree(block) != freedPattern(block, heap: heap) { reportCorruption(block, at: 0) }
    if freeMark(block) != heap.pointee.freeKey { reportCorruption(block, at: 8) }
    if let at = damagedFill(block, size: size, heap: heap) { reportCorruption(block, at: at) }
}

/// The offset of the first byte of freed block `block`'s fill that changed, or nil.
@inline(never) func damagedFill(_ block: UInt, size: UInt, heap: UnsafeMutablePointer<Heap>) -> UInt? {
    let end = min(size, 16 &+ freedFillLimit)
    let b = freedFillByte(heap)
    let word = UInt(b) &* 0x0101_0101_0101_0101
    var i: UInt = 16
    while i &+ 8 <= end {
        if UnsafePointer<UInt>(bitPattern: block &+ i).unsafelyUnwrapped.pointee != word { break }
        i &+= 8
    }
    while i < end {
        if UnsafePointer<UInt8>(bitPattern: block &+ i).unsafelyUnwrapped.pointee != b { return i }
        i &+= 1
    }
    return nil
}

extension UnsafeMutablePointer where Pointee == Central {
    /// The head of the partial list a span belongs on.
    @inline(__always) private func partialHead(_ sampling: Bool) -> UnsafeMutablePointer<Span>? {
        sampling ? pointee.samplingPartial : pointee.partial
    }

    @inline(__always) private func setPartialHead(_ sampling: Bool, _ span: UnsafeMutablePointer<Span>?) {
        if sampling { pointee.samplingPartial = span } else { pointee.partial = span }
    }

    private func linkPartial(_ span: UnsafeMutablePointer<Span>) {
        let sampling = span.pointee.forSampling
        span.pointee.prev = nil
        span.pointee.next = partialHead(sampling)
        partialHead(sampling)?.pointee.prev = span
        setPartialHead(sampling, span)
    }

    private func unlinkPartial(_ span: UnsafeMutablePointer<Span>) {
        if let p = span.pointee.prev { p.pointee.next = span.pointee.next } else { setPartialHead(span.pointee.forSampling, span.pointee.next) }
        span.pointee.next?.pointee.prev = span.pointee.prev
        span.pointee.next = nil
        span.pointee.prev = nil
    }

    /// One block for a sampled allocation, from a span reserved for them (0: out of
    /// memory). Caller holds `lock`.
    func takeForSampling(_ cls: Int, heap: UnsafeMutablePointer<Heap>) -> UInt {
        var span = pointee.samplingPartial
        if span == nil { span = newSpan(cls, heap: heap, forSampling: true) }
        guard let s = span else { return 0 }
        var list = BlockList()
        _ = take(1, from: s, into: &list, heap: heap)
        if s.pointee.live == s.pointee.capacity { unlinkPartial(s) }
        pointee.liveBlocks &+= 1
        setFreeMark(list.head, 0)
        return list.head
    }

    /// Moves up to `want` blocks of span `s` into `list` and counts them live: free
    /// carved blocks first, lowest first (which keeps live blocks packed; no block
    /// memory is read except in hardened mode, which checks that each was not
    /// written since it was freed), then never-used blocks, carved in one loop and
    /// marked free until a thread cache hands them out. With tracking and thread
    /// caches, blocks go to tracked bins, and each carries the address of its
    /// BlockInfo entry instead of the free key (the span's array is made here);
    /// false when that array cannot be had. `deferCarve`: never-used blocks are left
    /// pending in `list` (BlockList.linkPending), for the caller to write after
    /// releasing the lock; when `list` already has a pending run, none are taken.
    /// Caller holds `lock`.
    @inline(__always) private func take(_ want: UInt, from s: UnsafeMutablePointer<Span>, into list: inout BlockList,
                                        heap: UnsafeMutablePointer<Heap>, deferCarve: Bool = false) -> Bool {
        var slots: UnsafeMutablePointer<BlockInfo>? = nil
        if heap.pointee.config.tracking && !heap.pointee.config.direct && !s.pointee.forSampling {
            if s.pointee.blockInfo == nil { s.pointee.blockInfo = heap.internalPointer.newInfo(count: Int(s.pointee.capacity)) }
            guard let info = s.pointee.blockInfo else { return false }
            slots = info
        }
        let stop = list.count &+ want
        // The bitmap has exactly carved - live bits set.
        while list.count < stop && s.pointee.live < s.pointee.carved {
            let index = Int(s.takeFreeIndex())
            let block = s.pointee.start &+ UInt(index) &* UInt(s.pointee.blockSize)
            if heap.pointee.config.check {
                verifyFreed(block, size: UInt(s.pointee.blockSize), heap: heap)
                if s.pointee.live == 0 { pointee.emptyKept &-= 1 }
            }
            if let info = slots { setFreeMark(block, UInt(bitPattern: info + index)) }
            s.pointee.live &+= 1
            list.push(block)
        }
        let n = min(stop &- list.count, UInt(s.pointee.capacity &- s.pointee.carved))
        if n == 0 { return true }
        let size = UInt(s.pointee.blockSize)
        var block = s.pointee.start &+ UInt(s.pointee.carved) &* size
        // Each block's second word: the free key, or the address of its BlockInfo entry.
        var mark = slots == nil ? heap.pointee.freeKey : UInt(bitPattern: slots.unsafelyUnwrapped + Int(s.pointee.carved))
        let markStep: UInt = slots == nil ? 0 : UInt(MemoryLayout<BlockInfo>.stride)
        if deferCarve {
            // A second run would be written under the lock: it waits for the next refill.
            if list.pendingCount != 0 { return true }
            list.pendingStart = block
            list.pendingCount = n
            list.pendingSize = size
            list.pendingMark = mark
            list.pendingMarkStep = markStep
            list.count &+= n
        } else {
            var i: UInt = 0
            while i < n {
                setFreeMark(block, mark)
                list.push(block)
                block &+= size
                mark &+= markStep
                i &+= 1
            }
        }
        let carved = s.pointee.carved &+ UInt16(truncatingIfNeeded: n)
        s.pointee.carved = carved
        s.pointee.live = carved
        // Tracking sends every free to the slow path, which keeps the block's record.
        if !s.pointee.forSampling && !heap.pointee.config.tracking { s.pointee.fastLimit = UInt(carved) }
        return true
    }

    /// A new span for class `cls` from the shard's stash or the page heap, on the
    /// partial list. Caller holds `lock`.
    private func newSpan(_ cls: Int, heap: UnsafeMutablePointer<Heap>, forSampling: Bool = false) -> UnsafeMutablePointer<Span>? {
        let info = heap.pointee.classTable[cls]
        let shard = heap.shard(of: self)
        // A stashed span is still mapped to itself and counted used by the page heap.
        if let s = heap.stash(shard).take(pages: UInt(info.pages)) {
            s.setUp(cls, info, shard: shard, forSampling: forSampling)
            adopt(s)
            return s
        }
        let pageHeap = heap.pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        let span = pageHeap.allocate(pages: UInt(info.pages), alignPages: 1, heap: heap)
        if let s = span {
            s.setUp(cls, info, shard: shard, forSampling: forSampling)
            heap.pageMapPointer.pointee.setRange(s.pointee.start, pages: s.pointee.pageCount, to: s)
            heap.noteHeld()
        }
        swm_unlock(&pageHeap.pointee.lock)
        if let s = span { adopt(s) }
        return span
    }

    /// A partial span of class `cls` moved here from another shard's list, or nil.
    /// Without it, blocks freed back to the spans of a shard whose threads no longer
    /// allocate the class (they exited, or the blocks were made by a thread that only
    /// fills tables for others) would sit idle while this shard takes new pages.
    /// Only idle lists are robbed (see `refilledAt`): taking spans from lists in use
    /// made their blocks' frees take the robber's lock, and eight producer/consumer
    /// pairs on 16 cores ran three times slower with it.
    /// Of the first `stealScan` spans on a list, the one with the most free blocks
    /// among those whose blocks have all been handed out once: a span still being
    /// carved is its shard's current one (taking it would make two threads that
    /// allocate at once share a span and a lock, which shards exist to avoid), and
    /// its never-used blocks hold no resident pages.
    /// Only tries the other locks: the caller holds this list's, and no path waits
    /// for a class lock while holding another. A span changes shard only under the
    /// lock of the list it leaves (see Heap.holdOwner). Caller holds `lock`.
    private func steal(_ cls: Int, heap: UnsafeMutablePointer<Heap>) -> UnsafeMutablePointer<Span>? {
        let count = heap.pointee.shardCount
        if count == 1 { return nil }
        if pointee.stealWait != 0 {
            pointee.stealWait &-= 1
            return nil
        }
        let mine = heap.shard(of: self)
        let now = stealClock()
        var k = 1
        while k < count {
            var j = mine &+ k
            if j >= count { j &-= count }
            k &+= 1
            let other = heap.central(cls, shard: j)
            // A hint read without the lock: most lists of most shards are empty.
            let hint = withUnsafeMutablePointer(to: &other.pointee.partial) {
                swm_load_relaxed(UnsafeMutableRawPointer($0).assumingMemoryBound(to: UInt.self))
            }
            if hint == 0 || now &- swm_load_relaxed_u32(&other.pointee.refilledAt) < stealIdleTicks { continue }
            if swm_trylock(&other.pointee.lock) == 0 { continue }
            var best: UnsafeMutablePointer<Span>? = nil
            var s = other.pointee.partial
            var scanned = 0
            while let c = s, scanned < stealScan {
                // An empty span is one check mode keeps (emptyKept counts it here).
                if c.pointee.carved == c.pointee.capacity && c.pointee.live > 0 &&
                    (best == nil || c.pointee.live < best.unsafelyUnwrapped.pointee.live) { best = c }
                s = c.pointee.next
                scanned &+= 1
            }
            if let b = best {
                other.unlinkPartial(b)
                other.pointee.spanCount &-= 1
                other.pointee.liveBlocks &-= UInt(b.pointee.live)
                b.pointee.shard = UInt8(truncatingIfNeeded: mine)
                swm_unlock(&other.pointee.lock)
                pointee.liveBlocks &+= UInt(b.pointee.live)
                adopt(b)
                pointee.stealBackoff = 0
                _ = swm_fetch_add(&heap.pointee.spansStolen, 1)
                return b
            }
            swm_unlock(&other.pointee.lock)
        }
        pointee.stealBackoff = min(max(pointee.stealBackoff &* 2, 1), maxStealWait)
        pointee.stealWait = pointee.stealBackoff
        return nil
    }

    /// Counts new span `s` as this list's and puts it on the partial list.
    private func adopt(_ s: UnsafeMutablePointer<Span>) {
        pointee.spanCount &+= 1
        if pointee.spanCount > pointee.peakSpans { pointee.peakSpans = pointee.spanCount }
        linkPartial(s)
    }

    /// Moves up to `want` free blocks of class `cls` into `list`. Returns false only
    /// when none could be had (out of memory). With `deferCarve`, one run of
    /// never-used blocks may be left pending (the caller links it after unlocking),
    /// and the batch stops short where a second run would be needed.
    /// Caller holds `lock`.
    func take(_ want: UInt, _ cls: Int, into list: inout BlockList, heap: UnsafeMutablePointer<Heap>,
              deferCarve: Bool = false) -> Bool {
        if heap.pointee.shardCount > 1 {
            let now = stealClock()
            if pointee.refilledAt != now { swm_store_relaxed_u32(&pointee.refilledAt, now) }
        }
        while list.count < want {
            var span = pointee.partial
            if span == nil {
                if list.pendingCount != 0 { break }
                span = steal(cls, heap: heap) ?? newSpan(cls, heap: heap)
            }
            guard let s = span, take(want &- list.count, from: s, into: &list, heap: heap, deferCarve: deferCarve) else { break }
            if s.pointee.live == s.pointee.capacity {
                unlinkPartial(s)
            } else if list.count < want {
                break // its never-used blocks wait for the next refill (one pending run)
            }
        }
        if list.count == 0 { return false }
        pointee.liveBlocks &+= list.count
        return true
    }

    /// Returns one block to its span. Caller holds `lock`; `span` owns `block`.
    /// `marked`: the block comes from a thread cache and already carries the free
    /// key (or, from a tracked bin, its record's address, which tracked frees do
    /// not need: they check the record), so its memory need not be touched.
    @inline(__always) func put(_ block: UInt, span: UnsafeMutablePointer<Span>, heap: UnsafeMutablePointer<Heap>, marked: Bool = false) {
        guard let index = span.pointee.blockIndex(of: block), span.markFree(index) else {
            swm_unlock(&pointee.lock)
            reportBadPointer("free()", block, .doubleFree)
        }
        // Every free block carries the free key.
        if !marked { setFreeMark(block, heap.pointee.freeKey) }
        if heap.pointee.config.check {
            setNextFree(block, freedPattern(block, heap: heap))
            fillFreed(block, size: UInt(span.pointee.blockSize), heap: heap)
        }
        let wasFull = span.pointee.live == span.pointee.capacity
        span.pointee.live &-= 1
        pointee.liveBlocks &-= 1
        if span.pointee.live == 0 {
            if heap.pointee.config.check {
                if pointee.emptyKept < checkQuarantine {
                    pointee.emptyKept &+= 1
                    if wasFull { linkPartial(span) }
                    return
                }
                verifyFreedBlocks(of: span, heap: heap)
            }
            if !wasFull { unlinkPartial(span) }
            releaseSpan(span, heap: heap)
        } else if wasFull {
            linkPartial(span)
        }
    }

    /// Check mode: every carved block of empty span `span` still holds the pattern
    /// and fill its free wrote. Caller holds `lock`.
    @inline(never)
    private func verifyFreedBlocks(of span: UnsafeMutablePointer<Span>, heap: UnsafeMutablePointer<Heap>) {
        let size = UInt(span.pointee.blockSize)
        var block = span.pointee.start
        var i: UInt16 = 0
        while i < span.pointee.carved {
            verifyFreed(block, size: size, heap: heap)
            block &+= size
            i &+= 1
        }
    }

    /// An empty span goes back to the page heap, or, while its shard finds the page
    /// heap busy, to the shard's stash if that has room (SpanStash). Caller holds `lock`.
    private func releaseSpan(_ span: UnsafeMutablePointer<Span>, heap: UnsafeMutablePointer<Heap>) {
        pointee.spanCount &-= 1
        pointee.spansReleased &+= 1
        if let info = span.pointee.blockInfo {
            heap.internalPointer.deleteInfo(info, count: Int(span.pointee.capacity))
            span.pointee.blockInfo = nil
        }
        let pageHeap = heap.pageHeapPointer
        if heap.stash(Int(span.pointee.shard)).keepOrLock(span, pageLock: &pageHeap.pointee.lock) { return }
        heap.pageMapPointer.pointee.setRange(span.pointee.start, pages: span.pointee.pageCount, to: nil)
        pageHeap.release(span, heap: heap)
        swm_unlock(&pageHeap.pointee.lock)
    }

    /// True when `block` is free in its span (a definite double free). Caller holds `lock`.
    func isFree(_ block: UInt, span: UnsafeMutablePointer<Span>) -> Bool {
        guard let index = span.pointee.blockIndex(of: block) else { return false }
        return span.isFree(index)
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// Returns every block of `list` (binned blocks of one class, carrying the free
    /// key or their record's address) to its span, under the lock of the span's
    /// shard: its class list's, or for a block of a mixed span its return stack's. A
    /// thread's bin holds blocks of any shard that thread freed; the lock changes
    /// only where the shard or the kind of span does, so one taken for a run of
    /// blocks is released before the next is taken.
    func put(_ list: BlockList) {
        var block = list.head
        var n = list.count
        let map = pageMapPointer
        // The blocks' lines are warm (a bin gives back its newest blocks), their
        // spans' descriptors often not: start loading both lines (fields, free
        // bitmap) of the first 16 blocks' descriptors before the first is needed,
        // so the misses overlap instead of queueing behind each other and the lock.
        do {
            var b = block
            var k = min(n, 16)
            while k > 0 {
                if let span = map.pointee.span(at: b) {
                    swm_prefetch(UInt(bitPattern: span))
                    swm_prefetch(UInt(bitPattern: span) &+ 64)
                }
                b = nextFree(b)
                k &-= 1
            }
        }
        var held: UnsafeMutablePointer<Central>? = nil
        var heldStack: UnsafeMutablePointer<ReturnStack>? = nil
        while n > 0 {
            let next = nextFree(block)
            let span = map.pointee.span(at: block).unsafelyUnwrapped
            if span.pointee.state == .mixed {
                let cls = mixedClass(of: block, span: span)
                if cls == 0 {
                    if let s = heldStack { swm_unlock(&s.pointee.lock) }
                    if let h = held { swm_unlock(&h.pointee.lock) }
                    reportBadPointer("free()", block, .doubleFree)
                }
                let stack = returnStack(Int(span.pointee.shard), cls)
                if stack != heldStack {
                    if let s = heldStack { swm_unlock(&s.pointee.lock) }
                    swm_lock(&stack.pointee.lock)
                    heldStack = stack
                }
                stack.push(block, cls, arena: mixedArena(of: span), heap: self)
            } else {
                // A class lock comes before a return-stack lock.
                if let s = heldStack { swm_unlock(&s.pointee.lock); heldStack = nil }
                let central = holdOwner(of: span, releasing: &held)
                central.put(block, span: span, heap: self, marked: true)
            }
            block = next
            n &-= 1
        }
        if let s = heldStack { swm_unlock(&s.pointee.lock) }
        if let h = held { swm_unlock(&h.pointee.lock) }
    }

    /// Makes the lock of the list that owns small span `span` the one held, first
    /// releasing `held`'s when it is another list's (a walk over blocks of several
    /// shards holds one lock at a time), and returns that list. A span moves to
    /// another shard only under the lock of the list it leaves (Central.steal), so
    /// the owner read again once its lock is held stays the owner while it is held.
    @inline(__always) func holdOwner(of span: UnsafeMutablePointer<Span>,
                                     releasing held: inout UnsafeMutablePointer<Central>?) -> UnsafeMutablePointer<Central> {
        let central = self.central(of: span)
        if central == held { return central }
        if let h = held { swm_unlock(&h.pointee.lock) }
        let owner = lockOwner(of: span)
        held = owner
        return owner
    }

    /// Locks and returns the list that owns small span `span` (see holdOwner).
    @inline(never)
    func lockOwner(of span: UnsafeMutablePointer<Span>) -> UnsafeMutablePointer<Central> {
        while true {
            let central = self.central(of: span)
            swm_lock(&central.pointee.lock)
            if self.central(of: span) == central { return central }
            swm_unlock(&central.pointee.lock)
        }
    }
}

extension UnsafeMutablePointer where Pointee == Span {
    /// Makes this span an empty small span of class `cls` (described by `info`),
    /// owned by the list of shard `shard`.
    func setUp(_ cls: Int, _ info: SizeClass, shard: Int, forSampling: Bool) {
        pointee.state = .small
        pointee.shard = UInt8(truncatingIfNeeded: shard)
        pointee.sizeClass = UInt8(truncatingIfNeeded: cls)
        pointee.blockSize = info.size
        pointee.divInverse = info.divisor.inverse
        pointee.divShift = info.divisor.shift
        pointee.binOffset = UInt32(truncatingIfNeeded: cls &* MemoryLayout<CacheBin>.stride)
        pointee.capacity = UInt16(truncatingIfNeeded: info.capacity)
        pointee.live = 0
        pointee.carved = 0
        pointee.fastLimit = 0
        pointee.forSampling = forSampling
        clearFreeBits()
        pointee.blockInfo = nil
    }
}
