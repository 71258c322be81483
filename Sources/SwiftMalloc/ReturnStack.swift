// Layer 2d': the return stacks in front of the mixed arenas. A block of a mixed
// span that a thread cache gives back goes onto the stack of its arena and class,
// an array of addresses under a lock of its own, and the next refill of that class
// from that arena takes it from there: a producer's blocks, freed by its consumer,
// go round without a merge and a split each, without the arena's lock (which every
// class of the shard shares), and without a read of block memory under any lock.
// A full stack merges its older half into the arena's ranges; a refill that finds
// no range that fits merges every stack of its arena before taking a new span, so
// blocks waiting here never make the arena grow.
//
// Invariants (under `lock`): entries [0, count) are blocks of class `cls` of mixed
// spans of the stack's arena, each given back (so carrying the free key, its map
// byte still `cls`), none twice; count <= returnStackLimit(cls).
// Lock order: class locks, then return-stack locks (one at a time), then arena locks.
import SwiftMallocShims

struct ReturnStack {
    var lock: Int32 = 0
    var count: UInt32 = 0
    /// Set by every refill that takes from the stack, cleared by the purger, which
    /// merges a stack left untouched for a whole pass (Heap.purgeMixed).
    var touched: UInt32 = 0
    // Followed, `returnStackEntriesOffset` bytes from the start, by
    // `maxReturnStackEntries` block addresses. All zero is an empty stack.
}

let returnStackEntriesOffset = 64
let maxReturnStackEntries = 512
let returnStackStride = returnStackEntriesOffset + maxReturnStackEntries * 8
/// Stacks per shard: one per mixed class.
let returnStacksPerShard = mixedMaxClass - mixedMinClass + 1

/// Entries a stack of class `cls` holds: about 128 KiB of blocks, 32 to 512.
@inline(__always) func returnStackLimit(_ size: UInt) -> UInt32 {
    UInt32(truncatingIfNeeded: min(UInt(maxReturnStackEntries), max(32, (128 << 10) / size)))
}

extension UnsafeMutablePointer where Pointee == ReturnStack {
    @inline(__always) private var entries: UnsafeMutablePointer<UInt> {
        (UnsafeMutableRawPointer(self) + returnStackEntriesOffset).assumingMemoryBound(to: UInt.self)
    }

    /// Pushes given-back block `p` of class `cls`; a full stack first merges its
    /// older half into `arena` (its arena). Caller holds `lock`.
    func push(_ p: UInt, _ cls: Int, arena: UnsafeMutablePointer<MixedArena>, heap: UnsafeMutablePointer<Heap>) {
        let size = UInt(heap.pointee.classTable[cls].size)
        if pointee.count >= returnStackLimit(size) { mergeOlder(pointee.count / 2, cls, arena: arena, heap: heap) }
        entries[Int(pointee.count)] = p
        pointee.count &+= 1
    }

    /// Moves up to `want` - list.count of the newest blocks into `list` (their free
    /// key is in place). Caller holds `lock`.
    func pop(into list: inout BlockList, want: UInt) {
        var n = pointee.count
        while n > 0 && list.count < want {
            n &-= 1
            list.push(entries[Int(n)])
        }
        pointee.count = n
    }

    /// Merges the `n` oldest entries into `arena`'s ranges and moves the rest down.
    /// Caller holds `lock`; takes the arena's.
    func mergeOlder(_ n: UInt32, _ cls: Int, arena: UnsafeMutablePointer<MixedArena>, heap: UnsafeMutablePointer<Heap>) {
        if n == 0 { return }
        let map = heap.pageMapPointer
        swm_lock(&arena.pointee.lock)
        var i = 0
        while i < Int(n) {
            let p = entries[i]
            arena.merge(p, cls, span: map.pointee.span(at: p).unsafelyUnwrapped, heap: heap)
            i &+= 1
        }
        swm_unlock(&arena.pointee.lock)
        let left = Int(pointee.count &- n)
        entries.update(from: entries + Int(n), count: left)
        pointee.count = UInt32(truncatingIfNeeded: left)
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// The return stack of shard `shard`'s arena for mixed class `cls`.
    @inline(__always) func returnStack(_ shard: Int, _ cls: Int) -> UnsafeMutablePointer<ReturnStack> {
        (UnsafeMutableRawPointer(pointee.returnStacks.unsafelyUnwrapped)
            + (shard &* returnStacksPerShard &+ cls &- mixedMinClass) &* returnStackStride)
            .assumingMemoryBound(to: ReturnStack.self)
    }

    /// The `i`th return stack of all (shard by shard, class by class).
    @inline(__always) func returnStackAt(_ i: Int) -> UnsafeMutablePointer<ReturnStack> {
        returnStack(i / returnStacksPerShard, mixedMinClass &+ i % returnStacksPerShard)
    }

    /// Merges the return stacks of shard `shard` into its arena: all of them, or
    /// (`onlyIdle`) those no refill took from since the last such call, and returns
    /// whether any was left. Takes each stack's lock, then the arena's; the caller
    /// holds neither.
    @discardableResult
    func mergeReturnStacks(_ shard: Int, onlyIdle: Bool = false) -> Bool {
        let arena = mixedArena(shard)
        var left = false
        var cls = mixedMinClass
        while cls <= mixedMaxClass {
            let stack = returnStack(shard, cls)
            if swm_load_relaxed_u32(&stack.pointee.count) != 0 {
                swm_lock(&stack.pointee.lock)
                if !onlyIdle || stack.pointee.touched == 0 {
                    stack.mergeOlder(stack.pointee.count, cls, arena: arena, heap: self)
                } else {
                    left = true
                }
                stack.pointee.touched = 0
                swm_unlock(&stack.pointee.lock)
            }
            cls &+= 1
        }
        return left
    }

    /// The purger's pass over the mixed arenas: merges the return stacks no refill
    /// took from since the last pass (blocks a program stopped reusing would pin
    /// their spans), then gives back the inner pages of ranges left unchanged long
    /// enough (all of them when `all`). Returns whether anything is left to do later.
    func purgeMixed(all: Bool) -> Bool {
        if !pointee.config.mixed { return false }
        let pass = swm_load_relaxed(&pointee.purgePass) &+ 1
        swm_store_release(&pointee.purgePass, pass)
        var pending = false
        var shard = 0
        while shard < pointee.shardCount {
            if mergeReturnStacks(shard, onlyIdle: !all) { pending = true }
            let arena = mixedArena(shard)
            swm_lock(&arena.pointee.lock)
            if arena.purgeRanges(pass: pass, all: all) { pending = true }
            swm_unlock(&arena.pointee.lock)
            shard &+= 1
        }
        return pending
    }

    /// Moves up to `want` blocks of mixed class `cls` into `list` for a thread cache
    /// of shard `shard`: given-back blocks from the class's return stack first, then
    /// blocks carved from the arena, whose return stacks are merged before it takes
    /// a new span. False only when none could be had (out of memory).
    func takeMixed(_ want: UInt, _ cls: Int, shard: Int, into list: inout BlockList) -> Bool {
        let stack = returnStack(shard, cls)
        if swm_load_relaxed_u32(&stack.pointee.count) != 0 {
            swm_lock(&stack.pointee.lock)
            stack.pop(into: &list, want: want)
            stack.pointee.touched = 1
            swm_unlock(&stack.pointee.lock)
            if list.count >= want { return true }
        }
        let arena = mixedArena(shard)
        swm_lock(&arena.pointee.lock)
        let full = arena.carve(want, cls, into: &list, newSpans: false, shard: shard, heap: self)
        swm_unlock(&arena.pointee.lock)
        if full { return true }
        mergeReturnStacks(shard)
        swm_lock(&arena.pointee.lock)
        _ = arena.carve(want, cls, into: &list, newSpans: true, shard: shard, heap: self)
        swm_unlock(&arena.pointee.lock)
        return list.count > 0
    }
}
