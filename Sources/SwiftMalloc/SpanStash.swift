// Layer 2c': each shard's stash of empty small spans. A span that empties goes here
// rather than to the page heap while the stash has room, and the shard's next new
// span (of any class with the same page count) comes from here, so spans that turn
// over quickly — a producer's blocks freed by its consumer — never take the page
// heap's lock, which all shards share. Eight producer/consumer pairs on 16 cores
// spent most of their time waiting for that lock.
//
// Invariants (under `lock`): `head` links, through Span.next, `count` <= stashSpans
// spans of `pages` <= stashPages pages in all; each is in state small, with
// carved == live == fastLimit == 0 (so a stale free into it is an invalid pointer)
// and no BlockInfo array; the page map still points its pages at it, and the page
// heap counts them used. `touched` is set by every use; the purger gives the spans
// of a stash untouched for a whole interval back to the page heap (drainStashes),
// and malloc_trim all of them.
// A stash fills only while its shard finds the page heap busy (`busy`): a span
// kept out of the page heap cannot merge with its free neighbours, and stashing
// every span kept a single-threaded realloc workload's peak 2.2 MiB higher.
// Lock order: a class lock, then a stash lock, then the page heap lock.
import SwiftMallocShims

struct SpanStash {
    var lock: Int32 = 0
    var count: UInt32 = 0
    var pages: UInt32 = 0
    var touched: UInt32 = 0
    var head: UnsafeMutablePointer<Span>? = nil
    /// Set (racily: a hint) when one of the shard's class lists found the page heap's
    /// lock taken; cleared by the purger's next wake. While set, every emptied span
    /// of the shard tries the stash first.
    var busy: UInt32 = 0
}

/// Bounds of one shard's stash: a few pages per shard that allocates at all.
let stashSpans: UInt32 = 8
let stashPages: UInt32 = 16
/// Bytes between two shards' stashes (one cache line each).
let stashStride = 64

extension UnsafeMutablePointer where Pointee == SpanStash {
    /// Keeps empty span `span` (live 0, already out of its class's lists, records
    /// freed); false when the stash is full.
    func keep(_ span: UnsafeMutablePointer<Span>) -> Bool {
        let pages = UInt32(truncatingIfNeeded: span.pointee.pageCount)
        swm_lock(&pointee.lock)
        if pointee.count >= stashSpans || pointee.pages &+ pages > stashPages {
            swm_unlock(&pointee.lock)
            return false
        }
        span.pointee.carved = 0
        span.pointee.fastLimit = 0
        span.pointee.prev = nil
        span.pointee.next = pointee.head
        pointee.head = span
        pointee.count &+= 1
        pointee.pages &+= pages
        pointee.touched = 1
        swm_unlock(&pointee.lock)
        return true
    }

    /// A stashed span of `pages` pages, or nil.
    func take(pages: UInt) -> UnsafeMutablePointer<Span>? {
        swm_lock(&pointee.lock)
        var prev: UnsafeMutablePointer<Span>? = nil
        var cursor = pointee.head
        while let s = cursor, s.pointee.pageCount != pages {
            prev = s
            cursor = s.pointee.next
        }
        if let s = cursor {
            if let p = prev { p.pointee.next = s.pointee.next } else { pointee.head = s.pointee.next }
            s.pointee.next = nil
            pointee.count &-= 1
            pointee.pages &-= UInt32(truncatingIfNeeded: pages)
            pointee.touched = 1
        }
        swm_unlock(&pointee.lock)
        return cursor
    }

    /// Unlinks and returns every stashed span (a list through Span.next); with
    /// `onlyIdle`, only when the stash was not used since the last call.
    func takeAll(onlyIdle: Bool) -> UnsafeMutablePointer<Span>? {
        swm_lock(&pointee.lock)
        var list: UnsafeMutablePointer<Span>? = nil
        if !onlyIdle || pointee.touched == 0 {
            list = pointee.head
            pointee.head = nil
            pointee.count = 0
            pointee.pages = 0
        }
        pointee.touched = 0
        swm_store_relaxed_u32(&pointee.busy, 0)
        swm_unlock(&pointee.lock)
        return list
    }

    /// Where an emptied span of this shard goes: true when it was kept here; false
    /// when the caller now holds the page heap's lock (`pageLock`) and must give it
    /// back there. Tries the stash first while the shard finds the page heap busy.
    func keepOrLock(_ span: UnsafeMutablePointer<Span>, pageLock: UnsafeMutablePointer<Int32>) -> Bool {
        if swm_load_relaxed_u32(&pointee.busy) == 0 {
            if swm_trylock(pageLock) != 0 { return false }
            swm_store_relaxed_u32(&pointee.busy, 1)
        }
        if keep(span) { return true }
        swm_lock(pageLock)
        return false
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    @inline(__always) func stash(_ shard: Int) -> UnsafeMutablePointer<SpanStash> {
        (UnsafeMutableRawPointer(pointee.stashes.unsafelyUnwrapped) + shard &* stashStride)
            .assumingMemoryBound(to: SpanStash.self)
    }

    /// Gives stashed spans back to the page heap: all of them, or (`onlyIdle`) those
    /// of stashes untouched since the last call. Returns whether any span is still
    /// stashed. Call with no allocator lock held.
    @discardableResult
    func drainStashes(onlyIdle: Bool) -> Bool {
        var remaining = false
        var shard = 0
        while shard < pointee.shardCount {
            let st = stash(shard)
            var cursor = st.takeAll(onlyIdle: onlyIdle)
            if cursor != nil {
                let pageHeap = pageHeapPointer
                swm_lock(&pageHeap.pointee.lock)
                while let s = cursor {
                    cursor = s.pointee.next
                    s.pointee.next = nil
                    pageMapPointer.pointee.setRange(s.pointee.start, pages: s.pointee.pageCount, to: nil)
                    pageHeap.release(s, heap: self)
                }
                swm_unlock(&pageHeap.pointee.lock)
            }
            if swm_load_relaxed_u32(&st.pointee.count) != 0 { remaining = true }
            shard &+= 1
        }
        return remaining
    }

    /// Pages held in stashes (statistics; racy reads are fine).
    func stashedPages() -> UInt {
        var pages: UInt = 0
        var shard = 0
        while shard < pointee.shardCount {
            pages &+= UInt(swm_load_relaxed_u32(&stash(shard).pointee.pages))
            shard &+= 1
        }
        return pages
    }
}
